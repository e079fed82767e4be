"""The replay verifier: what Redis must hold, computed from the input events alone.

Kafka is the source of truth. Given every record as the broker stored it (value, partition,
offset), the verifier validates it with the same codec, then derives each user's expected
counters, spend, attributes, bought and recent items (in event-time order), offset
watermarks and decayed vectors (numpy reference of the Lua maths), and the (user, event) pairs
that must have driven a published recommendation. Fault tests and the soak command compare the
live state with it: a lost update or one applied twice shows up as a counter or a watermark
that differs; a recent list in consumption order rather than event time shows up too.

An erasure (``llmrec.users.erase``) removes every event of the user up to its time, as the
profile script refuses them. Limit: an event whose time is after the erasure's but that the
worker applied before it is erased with the rest; the verifier expects it kept, so a test
that erases must produce later events after the erasure was processed.

`expected` derives the expectations, `compare` checks Redis against them; both are re-exported.
"""

from __future__ import annotations

from llmrec_stream.verify.compare import Report, compare, item_vectors
from llmrec_stream.verify.expected import (
    Expected,
    expected_attributes,
    expected_profiles,
    expected_recent,
    missing_recommendations,
    read_log,
)

__all__ = [
    "Expected", "Report", "compare", "expected_attributes", "expected_profiles",
    "expected_recent", "item_vectors", "missing_recommendations", "read_log",
]
