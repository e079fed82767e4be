"""Dead letters: a rejected record, its reason and coordinates, in body and headers.

Headers follow Kafka Connect's ``__connect.errors.*`` convention so existing tooling can read
them; the JSON body (``schemas/dead_letter.json``) keeps the original bytes, base64-encoded.
"""

from __future__ import annotations

import base64
import time

from llmrec_stream.events.codec import Rejected, dumps


def dead_letter(rejected: Rejected, worker_id: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The DLQ record body and headers for one rejected record."""
    src = rejected.source
    body = {
        "schema_version": 1,
        "reason": rejected.reason,
        "detail": rejected.detail[:2000],
        "source_topic": src.topic,
        "source_partition": src.partition,
        "source_offset": src.offset,
        "exception": rejected.exception,
        "key": None if rejected.key is None else base64.b64encode(rejected.key).decode(),
        "value": None if rejected.value is None else base64.b64encode(rejected.value).decode(),
        "worker_id": worker_id,
        "ts": int(time.time() * 1000),
    }
    headers = [
        ("__connect.errors.topic", src.topic.encode()),
        ("__connect.errors.partition", str(src.partition).encode()),
        ("__connect.errors.offset", str(src.offset).encode()),
        ("__connect.errors.exception.class.name", rejected.exception.encode()),
        ("__connect.errors.exception.message", rejected.detail[:500].encode()),
        ("llmrec.reason", rejected.reason.encode()),
    ]
    return dumps(body), headers
