"""Consumer lag of a group, from the broker: the one helper the worker, the demo and the
benchmarks share.

Lag here is what ``kafka-consumer-groups --describe`` and kafka-exporter report: a partition's
end offset (high watermark) minus the group's committed offset. This pipeline commits a batch
only once its outputs are acknowledged (DESIGN.md, "commit after outputs"), so committed lag is
exactly what a restart would replay. A partition the group never committed counts from its
low watermark (where ``auto.offset.reset=earliest`` starts).

The confluent-kafka consumer used here never subscribes, so it never joins the group: asking
for a group's committed offsets (OffsetFetch) and a partition's watermarks (ListOffsets) is
read-only.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition


def lag_consumer(bootstrap: str, group_id: str, conf: dict[str, str] | None = None) -> Consumer:
    """A consumer that can read ``group_id``'s committed offsets without joining the group."""
    return Consumer({**(conf or {}), "bootstrap.servers": bootstrap, "group.id": group_id,
                     "enable.auto.commit": False})


def partition_lag(
    consumer: Consumer, partitions: Iterable[tuple[str, int]], timeout: float = 10.0
) -> dict[tuple[str, int], int]:
    """``(topic, partition)`` → end offset minus the consumer's group's committed offset.

    Raises ``confluent_kafka.KafkaException`` when the broker does not answer in ``timeout``
    seconds (per request).
    """
    tps = [TopicPartition(topic, partition) for topic, partition in partitions]
    if not tps:
        return {}
    lag: dict[tuple[str, int], int] = {}
    for tp in consumer.committed(tps, timeout=timeout):
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
        done = tp.offset if tp.offset >= 0 else low
        lag[(tp.topic, tp.partition)] = max(0, high - done)
    return lag


def group_lag(bootstrap: str, group_id: str, topic_names: list[str], partitions: int) -> int:
    """Events not yet committed by ``group_id`` on these topics (0 means caught up)."""
    consumer = lag_consumer(bootstrap, group_id)
    try:
        pairs = [(t, p) for t in topic_names for p in range(partitions)]
        return sum(partition_lag(consumer, pairs).values())
    finally:
        consumer.close()
