"""Reading topics from offset 0 to their current end, outside any consumer group's way.

The verifier, the trainer and a starting worker (its catalog bootstrap) read the log this
way: partitions are assigned, never subscribed, and no offset is committed, so the workers'
group is never disturbed.

A partition is done when the consumer's *position* reaches the end offset, not when a record
at ``end - 1`` arrives: the last offsets of a partition may hold no record a consumer ever
sees (a transaction's commit or abort marker, the records of an aborted transaction), and
librdkafka moves the position past them without returning anything. (An open transaction
does not stall a read: a read_committed consumer is told the last stable offset as the end.)
A partition whose position stops short of its end (a broker that stops answering, a tail lost
in a broker restart) raises `LogReadTimeout` after ``timeout_s`` without progress, instead
of hanging its caller.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from llmrec_stream.events.records import RawRecord

#: Seconds a partition may make no progress (no record, no position change) before the read
#: fails; the default of ``LLMREC_LOG_READ_TIMEOUT_S``.
DEFAULT_TIMEOUT_S = 60.0
#: One ``consume`` call waits at most this long, so the position is checked that often.
_POLL_S = 0.5


class LogReadTimeout(TimeoutError):
    """A partition made no progress toward its end offset within the deadline."""


def read_records(
    bootstrap: str,
    topic_names: Sequence[str],
    *,
    partitions: int | None = None,
    group_id: str = "llmrec-log-reader",
    conf: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Iterator[RawRecord]:
    """Every record of these topics as stored, partition by partition, in offset order.

    ``partitions`` defaults to what the broker reports for each topic; ``conf`` adds
    librdkafka settings (security). Stops at the end offsets seen when a topic starts
    (the last stable offset: records of an open or aborted transaction are not read).
    ``timeout_s``: see `LogReadTimeout`; the time the caller spends between records does not
    count.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         **(conf or {})})
    try:
        for topic in topic_names:
            if partitions is None:
                meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
                count = 0 if meta is None or meta.error is not None else len(meta.partitions)
            else:
                count = partitions
            # every end offset first: the read stops where the topic ended when it began
            ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    for p in range(count)]
            for p, (low, high) in enumerate(ends):
                yield from _partition(consumer, TopicPartition(topic, p), low, high, timeout_s)
    finally:
        consumer.close()


def _partition(
    consumer: Consumer, tp: TopicPartition, low: int, high: int, timeout_s: float
) -> Iterator[RawRecord]:
    topic, partition = tp.topic, tp.partition
    if high <= low:
        return
    consumer.assign([TopicPartition(topic, partition, low)])
    position = low
    progress_at = time.monotonic()
    try:
        while position < high:
            for msg in consumer.consume(min(1000, high - position), timeout=_POLL_S):
                err, offset = msg.error(), msg.offset()
                if err is not None or offset is None or offset >= high:
                    continue
                yield RawRecord(topic, partition, offset, msg.key(), msg.value())
                position = max(position, offset + 1)
                progress_at = time.monotonic()
            # past markers and aborted records the position moves although no record came
            at = _position(consumer, tp)
            if at > position:
                position = at
                progress_at = time.monotonic()
            elif time.monotonic() - progress_at > timeout_s:
                raise LogReadTimeout(
                    f"{topic}[{partition}]: no progress for {timeout_s:.0f}s at offset "
                    f"{position}, end offset {high} (the broker stopped answering, or the "
                    "partition lost its tail); raise LLMREC_LOG_READ_TIMEOUT_S if it is slow"
                )
    finally:
        consumer.unassign()


def _position(consumer: Consumer, tp: TopicPartition) -> int:
    """The consumer's next offset in this partition; -1 while it has none yet."""
    try:
        (at,) = consumer.position([tp])
    except KafkaException:
        return -1
    return at.offset if at.error is None else -1
