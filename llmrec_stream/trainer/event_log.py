"""The training set from the event log itself: Kafka, from the earliest offsets.

Each user's sequence is the items they clicked, bought or commented on, in time order (the
same events the workers put in the recent-items list), split leave-one-out like the harness's
data sets. Item texts come from the latest record of each item on ``llmrec.items``. Records the
codec rejects (the workers' dead letters) are left out, and so is everything a user did before
they asked for erasure on ``llmrec.users.erase``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from llmrec_stream.eval.data import SeqDataset, from_sequences
from llmrec_stream.events import topics
from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import Campaign, Erasure, Item, Source
from llmrec_stream.kafka_log import read_records
from llmrec_stream.pipeline import RawRecord

log = logging.getLogger(__name__)
ITEM_TOPICS: tuple[str, ...] = (topics.COMMENTS, topics.CLICKS, topics.PURCHASES)
#: No limit on text or timestamps here: the trainer reads history, not live traffic.
_LIMITS = Limits(max_text_bytes=1 << 30, max_future_skew_s=float("inf"))


def dataset_from_records(records: Iterable[RawRecord], name: str = "events") -> SeqDataset:
    """Leave-one-out sequences from raw records of the item, erase and user-event topics."""
    texts: dict[str, str] = {}
    erased_at: dict[str, int] = {}
    events: dict[str, list[tuple[int, str, int, str]]] = defaultdict(list)
    rejected: Counter[str] = Counter()
    for r in records:
        result = decode(r.topic, r.key, r.value, Source(r.topic, r.partition, r.offset), _LIMITS)
        if isinstance(result, Rejected):
            rejected[result.reason] += 1
            continue
        event = result.event
        if isinstance(event, Item):
            texts[event.item_id] = event.text()
        elif isinstance(event, Erasure):
            erased_at[event.user_id] = max(event.ts, erased_at.get(event.user_id, event.ts))
        elif isinstance(event, Campaign):  # not a topic this reads; typing only
            continue
        elif (item := getattr(event, "item_id", None)) is not None:
            events[event.user_id].append((event.ts, r.topic, r.offset, item))
    sequences = {
        user: [item for ts, _, _, item in sorted(seq) if ts > erased_at.get(user, -1)]
        for user, seq in events.items()
    }
    if rejected:
        log.info("left out %d invalid records: %s", sum(rejected.values()), dict(rejected))
    data = from_sequences(name, sequences, item_text=texts or None,
                          item_order=sorted(texts) or None)
    log.info("%s: %d users, %d items from the event log", name, data.n_users, data.n_items)
    return data


def dataset_from_kafka(
    bootstrap: str, name: str = "events", conf: Mapping[str, str] | None = None
) -> SeqDataset:
    """Read the whole log (no consumer group is joined or committed) and build the data set."""
    wanted = (topics.ITEMS, topics.ERASE, *ITEM_TOPICS)
    return dataset_from_records(
        read_records(bootstrap, wanted, group_id="llmrec-trainer", conf=conf), name
    )
