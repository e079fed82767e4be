"""Create the product's topics up front, with their partition counts and cleanup policies.

Why up front: a broker auto-creates a topic on first use with its default partition count (one,
on the embedded broker), and Faust then refuses to start with PartitionsMismatch. So the topics
are created before any producer or worker touches them, and the result is verified, on the
embedded broker and on production Kafka alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ClusterMetadata,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from llmrec_stream.events.topics import ALL_TOPICS, TopicSpec


class TopicSetupError(RuntimeError):
    """The broker did not answer, refused a topic, or holds a topic with the wrong layout."""


def create_topics(
    bootstrap: str,
    partitions: int = 4,
    topics: Iterable[TopicSpec] = ALL_TOPICS,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
    admin_config: Mapping[str, str] | None = None,
) -> list[str]:
    """Create ``topics`` on the broker at ``bootstrap`` and verify their layout.

    Existing topics are left alone but must already have ``partitions`` partitions (the user
    event topics are co-partitioned, so a mismatch is an error, not a warning) and, for compacted
    specs, ``cleanup.policy=compact``. Waits up to ``timeout`` seconds in all, including for the
    broker to come up, which suits a one-shot job started next to Kafka. ``admin_config`` adds
    librdkafka settings (security, client id). Returns the names of the topics created now.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    specs = list(topics)
    deadline = time.monotonic() + timeout
    admin = AdminClient({"bootstrap.servers": bootstrap, **(admin_config or {})})
    _metadata(admin, deadline, bootstrap)

    new = [
        NewTopic(
            spec.name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            config={"cleanup.policy": "compact"} if spec.compacted else {},
        )
        for spec in specs
    ]
    wait = _remaining(deadline)
    futures = admin.create_topics(new, operation_timeout=wait, request_timeout=wait)
    created: list[str] = []
    for name, future in futures.items():
        try:
            future.result(timeout=_remaining(deadline) + 1.0)
            created.append(name)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicSetupError(f"cannot create topic {name}: {error.str()}") from exc

    _verify_partitions(admin, specs, partitions, deadline, bootstrap)
    _verify_compaction(admin, [spec.name for spec in specs if spec.compacted], deadline)
    return sorted(created)


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.1)


def _metadata(admin: AdminClient, deadline: float, bootstrap: str) -> ClusterMetadata:
    """Cluster metadata, retried until the broker answers or the deadline passes."""
    while True:
        try:
            return admin.list_topics(timeout=min(_remaining(deadline), 2.0))
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                raise TopicSetupError(f"Kafka at {bootstrap} did not answer: {exc}") from exc
            time.sleep(0.2)


def _verify_partitions(
    admin: AdminClient, specs: list[TopicSpec], partitions: int, deadline: float, bootstrap: str
) -> None:
    """Wait until every topic shows in metadata; fail at once on a wrong partition count."""
    while True:
        metadata = _metadata(admin, deadline, bootstrap)
        missing = []
        for spec in specs:
            topic = metadata.topics.get(spec.name)
            if topic is None or topic.error is not None:
                missing.append(spec.name)
            elif len(topic.partitions) != partitions:
                raise TopicSetupError(
                    f"topic {spec.name} has {len(topic.partitions)} partitions, expected "
                    f"{partitions}; it was probably auto-created by a client before the topics "
                    "were set up: delete it, or use its partition count everywhere"
                )
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise TopicSetupError(f"topics not visible on {bootstrap} in time: {missing}")
        time.sleep(0.1)


def _verify_compaction(admin: AdminClient, names: list[str], deadline: float) -> None:
    """Fail if a topic that must be compacted (for example a pre-existing one) is not."""
    if not names:
        return
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    futures = admin.describe_configs(resources, request_timeout=_remaining(deadline))
    for resource, future in futures.items():
        entries = future.result(timeout=_remaining(deadline) + 1.0)
        policy = entries.get("cleanup.policy")
        if policy is None or "compact" not in (policy.value or ""):
            value = None if policy is None else policy.value
            raise TopicSetupError(
                f"topic {resource.name} must have cleanup.policy=compact, has {value!r}"
            )
