"""Reading topics from offset 0 to their current end, outside any consumer group's way.

The verifier and the trainer read the event log this way: partitions are assigned, never
subscribed, and no offset is committed, so the workers' group is never disturbed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from confluent_kafka import Consumer, TopicPartition

from llmrec_stream.pipeline import RawRecord


def read_records(
    bootstrap: str,
    topic_names: Sequence[str],
    *,
    partitions: int | None = None,
    group_id: str = "llmrec-log-reader",
    conf: Mapping[str, str] | None = None,
) -> Iterator[RawRecord]:
    """Every record of these topics as stored, partition by partition, in offset order.

    ``partitions`` defaults to what the broker reports for each topic; ``conf`` adds
    librdkafka settings (security). Stops at the end offsets seen when a partition starts.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id,
                         "enable.auto.commit": False, **(conf or {})})
    try:
        for topic in topic_names:
            if partitions is None:
                meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
                count = 0 if meta is None or meta.error is not None else len(meta.partitions)
            else:
                count = partitions
            for p in range(count):
                yield from _partition(consumer, topic, p)
    finally:
        consumer.close()


def _partition(consumer: Consumer, topic: str, partition: int) -> Iterator[RawRecord]:
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    if high <= low:
        return
    consumer.assign([TopicPartition(topic, partition, low)])
    next_offset = low
    while next_offset < high:
        for msg in consumer.consume(min(1000, high - next_offset), timeout=5):
            err, offset = msg.error(), msg.offset()
            if err is not None or offset is None:
                continue
            yield RawRecord(topic, partition, offset, msg.key(), msg.value())
            next_offset = offset + 1
