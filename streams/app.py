"""The Faust app and its topics: wiring only; the work happens in ``llmrec_stream``."""

from __future__ import annotations

import faust

from llmrec_stream.config import Settings
from llmrec_stream.events import topics
from llmrec_stream.logs import faust_logging_config
from llmrec_stream.security import faust_credentials
from streams.compat import pace_empty_fetches

settings = Settings()
pace_empty_fetches(settings.stream.fetch_idle_backoff_ms)


def _broker(s: Settings) -> str:
    if not s.kafka.bootstrap:
        raise RuntimeError(
            "LLMREC_KAFKA_BOOTSTRAP is not set: start the embedded stack "
            "(llmrec-stream stack) or point it at your Kafka"
        )
    return ";".join(f"kafka://{host}" for host in s.kafka.bootstrap.split(","))


app = faust.App(
    settings.stream.app_id,
    broker=_broker(settings),
    # Static membership: a restarted worker takes its partitions back at once instead of
    # waiting for the broker to expire its old member (which the embedded broker never does).
    consumer_group_instance_id=settings.stream.resolved_worker_id,
    topic_partitions=settings.stream.partitions,
    value_serializer="raw",
    key_serializer="raw",
    web_enabled=False,
    producer_acks=-1,
    broker_credentials=faust_credentials(settings.kafka),
    logging_config=faust_logging_config(settings.metrics),
)

# Raw bytes in: validation is ours (events.codec), so a malformed record becomes a dead letter
# instead of a deserialisation crash inside Faust.
def _raw_topic(*names: str) -> faust.TopicT:
    return app.topic(
        *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


user_events_topic = _raw_topic(*topics.PROFILE_TOPICS)  # with llmrec.follows (issue 14)
items_topic = _raw_topic(topics.ITEMS)
recommendations_topic = _raw_topic(topics.RECOMMENDATIONS)
dlq_topic = _raw_topic(topics.DLQ)
erase_topic = _raw_topic(topics.ERASE)
models_topic = _raw_topic(topics.MODELS)
sponsored_topic = _raw_topic(topics.SPONSORED)
