"""The training set from the event log itself: Kafka, from the earliest offsets.

Each user's sequence is the items they clicked, bought or commented on, in time order (the
same events the workers put in the recent-items list), split leave-one-out like the harness's
data sets. Item texts come from the latest record of each item on ``llmrec.items``. Records the
codec rejects (the workers' dead letters) are left out, and so is everything a user did before
they asked for erasure on ``llmrec.users.erase``.

Events of one user on one item within ``collapse_window_ms`` of the first of them are one
interaction (typed by the strongest event, purchase > comment > click), placed where the first
was: a replayed review is a comment *and* a purchase of the same item at the same moment, and
left as two items it makes the next-item target equal the previous item (the trainer then
validated at NDCG@10 0.87 on the Amazon 2018 replay, a figure about echoes, not taste).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from llmrec_stream.config import TrainerSettings
from llmrec_stream.datasets.sequences import SeqDataset, from_sequences
from llmrec_stream.events import topics
from llmrec_stream.events.codec import Limits, Rejected, decode
from llmrec_stream.events.models import Campaign, Erasure, Item, Source
from llmrec_stream.events.records import RawRecord
from llmrec_stream.kafka_log import read_records

log = logging.getLogger(__name__)
ITEM_TOPICS: tuple[str, ...] = (topics.COMMENTS, topics.CLICKS, topics.PURCHASES)
#: Which event type wins when several on one item collapse into one interaction.
STRENGTH: dict[str, int] = {topics.CLICKS: 0, topics.COMMENTS: 1, topics.PURCHASES: 2}
#: The default of ``Settings.trainer.collapse_window_ms`` (the section's own: one default).
DEFAULT_COLLAPSE_WINDOW_MS: int = TrainerSettings().collapse_window_ms
Event = tuple[int, str, int, str]  # (ts ms, topic, offset, item id)
#: No limit on text or timestamps here: the trainer reads history, not live traffic.
_LIMITS = Limits(max_text_bytes=1 << 30, max_future_skew_s=float("inf"))


def collapse_events(events: Iterable[Event], window_ms: int) -> list[tuple[int, str, str]]:
    """One user's events in time order as interactions ``(ts, topic, item)``.

    An event on an item whose current interaction began at most ``window_ms`` earlier joins
    it (the interaction keeps its first time and position, and the strongest topic); any other
    event starts a new interaction. ``window_ms < 0`` is refused; 0 keeps every event apart
    except exact same-time duplicates.
    """
    if window_ms < 0:
        raise ValueError(f"window_ms must be >= 0, got {window_ms}")
    out: list[list[Any]] = []
    open_at: dict[str, int] = {}  # item -> index in out of its latest interaction
    for ts, topic, _, item in sorted(events):
        at = open_at.get(item)
        if at is not None and ts - out[at][0] <= window_ms:
            if STRENGTH.get(topic, -1) > STRENGTH.get(out[at][1], -1):
                out[at][1] = topic
            continue
        open_at[item] = len(out)
        out.append([ts, topic, item])
    return [(int(ts), str(topic), str(item)) for ts, topic, item in out]


def dataset_from_records(
    records: Iterable[RawRecord], name: str = "events",
    collapse_window_ms: int = DEFAULT_COLLAPSE_WINDOW_MS,
) -> SeqDataset:
    """Leave-one-out sequences from raw records of the item, erase and user-event topics."""
    texts: dict[str, str] = {}
    erased_at: dict[str, int] = {}
    events: dict[str, list[Event]] = defaultdict(list)
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
        user: [item for ts, _, item in collapse_events(seq, collapse_window_ms)
               if ts > erased_at.get(user, -1)]
        for user, seq in events.items()
    }
    if rejected:
        log.info("left out %d invalid records: %s", sum(rejected.values()), dict(rejected))
    data = from_sequences(name, sequences, item_text=texts or None,
                          item_order=sorted(texts) or None)
    log.info("%s: %d users, %d items from the event log", name, data.n_users, data.n_items)
    return data


def dataset_from_kafka(
    bootstrap: str, name: str = "events", conf: Mapping[str, str] | None = None,
    collapse_window_ms: int = DEFAULT_COLLAPSE_WINDOW_MS,
) -> SeqDataset:
    """Read the whole log (no consumer group is joined or committed) and build the data set."""
    wanted = (topics.ITEMS, topics.ERASE, *ITEM_TOPICS)
    return dataset_from_records(
        read_records(bootstrap, wanted, group_id="llmrec-trainer", conf=conf), name,
        collapse_window_ms,
    )
