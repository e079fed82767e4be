"""A typed Python client: produce events that are valid before they leave, read recommendations.

`EventProducer` checks each event with the same codec and JSON Schemas the workers use, so an
application learns about a bad event from an exception at the call, not from a dead letter
later; it waits for the broker's ``acks=all`` and frames records in Confluent's wire format
for the topics given a schema id. `HttpRecommendations` reads the pull API
(``llmrec-stream serve``), `RedisRecommendations` the cache in Redis directly; both return a
`Recommendations`.

    from llmrec_stream.client import EventProducer, HttpRecommendations

    with EventProducer("localhost:9092") as events:
        events.click("user-1", "item-9")
    recs = HttpRecommendations("http://localhost:8000", token="...").get("user-1")
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from llmrec_stream.config import Settings
from llmrec_stream.events import topics
from llmrec_stream.events.codec import TOPIC_SCHEMAS, Limits, Rejected, decode, dumps, frame
from llmrec_stream.events.models import Source
from llmrec_stream.profiles import recs as cache
from llmrec_stream.profiles.store import recs_key
from llmrec_stream.security import confluent_config

#: Short names accepted for the event topics (``clicks`` for ``llmrec.clicks``).
SHORT_TOPICS = {
    "comments": topics.COMMENTS,
    "clicks": topics.CLICKS,
    "purchases": topics.PURCHASES,
    "users": topics.USERS,
    "items": topics.ITEMS,
    "erase": topics.ERASE,
}


class InvalidEvent(ValueError):
    """The event fails the schemas the workers apply; ``reason`` is its dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge the record (in time, or at all)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the broker stored a record (after ``acks=all``)."""

    topic: str
    partition: int
    offset: int
    key: str
    schema_id: int | None = None


def topic_name(topic: str) -> str:
    """The full topic name of ``topic`` (a short name or a full one); ValueError if unknown."""
    full = SHORT_TOPICS.get(topic, topic)
    if full not in TOPIC_SCHEMAS:
        known = ", ".join(sorted(SHORT_TOPICS))
        raise ValueError(f"no event topic {topic!r}: one of {known} (or its llmrec.* name)")
    return full


def new_event(**fields: Any) -> dict[str, Any]:
    """An event value with the envelope fields filled in (schema version, a fresh event id,
    now as ``ts``) unless given."""
    return {
        "schema_version": 1,
        "event_id": fields.pop("event_id", None) or uuid.uuid4().hex,
        "ts": fields.pop("ts", None) or int(time.time() * 1000),
        **fields,
    }


class EventProducer:
    """Validates, frames (when a schema id is configured) and produces events, one at a time,
    returning once the broker acknowledged each with ``acks=all``."""

    def __init__(
        self,
        bootstrap: str,
        *,
        schema_ids: dict[str, int] | None = None,
        config: dict[str, Any] | None = None,
        limits: Limits | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.schema_ids = {topic_name(t): i for t, i in (schema_ids or {}).items()}
        self.limits = limits or Limits()
        self.timeout_s = timeout_s
        # ``config`` may tune the rest (linger.ms: 0 suits `send`, a replay that `submit`s
        # many batches better with a few ms), never the delivery guarantee
        self._producer = Producer(
            {
                "linger.ms": 0,
                **(config or {}),
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
            }
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> EventProducer:
        if not settings.kafka.bootstrap:
            raise RuntimeError("LLMREC_KAFKA_BOOTSTRAP is not set")
        return cls(
            settings.kafka.bootstrap,
            schema_ids=settings.kafka.schema_ids,
            config=confluent_config(settings.kafka),
            limits=settings.limits,
            timeout_s=settings.serve.produce_timeout_s,
        )

    def encode(self, topic: str, value: dict[str, Any]) -> tuple[str, bytes, bytes, int | None]:
        """The full topic, key, record value and schema id of ``value``; `InvalidEvent` when
        the workers would dead-letter it."""
        topic = topic_name(topic)
        key_field = TOPIC_SCHEMAS[topic][1]
        key = value.get(key_field)
        if not isinstance(key, str) or not key:
            raise InvalidEvent("schema_violation", f"the event has no {key_field}")
        payload = dumps(value)
        checked = decode(topic, key.encode(), payload, Source(topic, -1, -1), self.limits)
        if isinstance(checked, Rejected):
            raise InvalidEvent(checked.reason, checked.detail)
        schema_id = self.schema_ids.get(topic)
        record = payload if schema_id is None else frame(schema_id, payload)
        return topic, key.encode(), record, schema_id

    def submit(self, topic: str, value: dict[str, Any]) -> Future[Delivery]:
        """Validate and enqueue one event without waiting for the broker.

        `InvalidEvent` is raised here, at the call; the future then holds the `Delivery` or a
        `DeliveryFailed` once the broker answered. Answers are served by later calls and by
        `flush`, which a caller producing many events (a replay) runs once at the end: one
        round trip per event would bound it to the broker's latency.
        """
        full, key, record, schema_id = self.encode(topic, value)
        future: Future[Delivery] = Future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            partition, offset = msg.partition(), msg.offset()
            if err is not None or partition is None or offset is None:
                future.set_exception(DeliveryFailed(str(err or "no offset in the answer")))
                return
            future.set_result(Delivery(full, partition, offset, key.decode(), schema_id))

        while True:
            try:
                self._producer.produce(full, record, key, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let answers drain first
                self._producer.poll(0.05)
        self._producer.poll(0)
        return future

    def send(self, topic: str, value: dict[str, Any]) -> Delivery:
        """Validate and produce one event; returns once it is acknowledged."""
        future = self.submit(topic, value)
        deadline = time.monotonic() + self.timeout_s
        while not future.done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeliveryFailed(f"no acknowledgement from the broker in {self.timeout_s}s")
            self._producer.poll(min(left, 0.1))
        return future.result()

    def flush(self) -> None:
        """Wait for the broker's answer to every submitted event (their futures are then
        done); `DeliveryFailed` when some are still unanswered after ``timeout_s``."""
        left = self._producer.flush(self.timeout_s)
        if left:
            raise DeliveryFailed(f"{left} events unanswered by the broker after {self.timeout_s}s")

    def click(self, user_id: str, item_id: str, **fields: Any) -> Delivery:
        return self.send(topics.CLICKS, new_event(user_id=user_id, item_id=item_id, **fields))

    def comment(self, user_id: str, text: str, **fields: Any) -> Delivery:
        return self.send(topics.COMMENTS, new_event(user_id=user_id, text=text, **fields))

    def purchase(
        self, user_id: str, item_id: str, amount: float, quantity: int = 1, **fields: Any
    ) -> Delivery:
        value = new_event(
            user_id=user_id, item_id=item_id, amount=amount, quantity=quantity, **fields
        )
        return self.send(topics.PURCHASES, value)

    def reachable(self, timeout_s: float) -> None:
        """Return once the broker answers a metadata request; raises (KafkaException) when
        it does not within ``timeout_s``: the pull API's readiness check."""
        self._producer.list_topics(timeout=timeout_s)

    def close(self) -> None:
        self._producer.flush(self.timeout_s)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Recommendations:
    """A user's latest recommendations, as the pull API and the cache give them."""

    user_id: str
    items: list[str]
    scores: list[float]
    model_version: str
    trigger_ts: int
    """Time (ms) of the event that drove them."""
    published_ts: int
    """When the worker published them (ms)."""
    age_s: float
    """Seconds since publication when read."""
    reasons: list[Any] | None = None
    """Per-item reasons, where the worker recorded some."""

    @classmethod
    def from_cache(cls, user_id: str, blob: bytes, now_ms: int | None = None) -> Recommendations:
        rec = cache.decode(user_id, blob)
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return cls.from_dict({**rec, "age_s": max(0.0, (now_ms - rec["published_ts"]) / 1000)})

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Recommendations:
        return cls(
            user_id=obj["user_id"],
            items=list(obj["items"]),
            scores=[float(s) for s in obj["scores"]],
            model_version=obj["model_version"],
            trigger_ts=int(obj["trigger_ts"]),
            published_ts=int(obj["published_ts"]),
            age_s=float(obj["age_s"]),
            reasons=obj.get("reasons"),
        )


class HttpRecommendations:
    """Reads ``GET /v1/users/{id}/recommendations`` of the pull API (needs httpx: the
    ``serve`` extra)."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 5.0) -> None:
        import httpx  # the serve extra: not part of the runtime install

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)

    def get(self, user_id: str) -> Recommendations | None:
        """The user's recommendations, or None when there are none yet."""
        resp = self._http.get(f"/v1/users/{user_id}/recommendations")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return Recommendations.from_dict(resp.json())

    def close(self) -> None:
        self._http.close()


class RedisRecommendations:
    """Reads the recommendation cache in Redis (one server or a cluster, as `redis_conn`)."""

    def __init__(self, url: str, cluster: bool = False) -> None:
        from llmrec_stream.redis_conn import sync_client

        self._redis = sync_client(url, cluster)

    def get(self, user_id: str) -> Recommendations | None:
        raw: Any = self._redis.get(recs_key(user_id))
        return None if raw is None else Recommendations.from_cache(user_id, bytes(raw))

    def close(self) -> None:
        self._redis.close()
