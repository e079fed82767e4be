"""Publishing a ``Replay`` to Kafka: the demo, tests and benchmarks all feed through here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from confluent_kafka import KafkaError, Message, Producer

from llmrec_stream.sources.base import OutboundEvent


def producer(bootstrap: str, **extra: str | int) -> Producer:
    """An idempotent producer with small batches: replay traffic is latency-sensitive."""
    conf: dict[str, str | int] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 2,
        **extra,
    }
    return Producer(conf)


def restamp(event: OutboundEvent, ts_ms: int) -> OutboundEvent:
    """The same event stamped ``ts_ms``: replays run "as if live", so freshness is meaningful."""
    return replace(event, value={**event.value, "ts": ts_ms})


def publish(
    prod: Producer,
    events: Iterable[OutboundEvent],
    *,
    rate: float | None = None,
    live: bool = True,
    on_sent: Callable[[OutboundEvent], None] | None = None,
    delivered: list[Delivered] | None = None,
) -> int:
    """Produce events in order, optionally paced to ``rate`` per second; returns the count.

    With ``live`` each event is restamped with the wall clock at send time. Order is kept per
    key (one partition per key, idempotent producer), which is all the pipeline relies on.
    """
    started = time.monotonic()
    sent = 0
    for event in events:
        if rate:
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if live:
            event = restamp(event, int(time.time() * 1000))
        key, value = event.encode()
        callback = None if delivered is None else _recorder(event, delivered)
        while True:
            try:
                prod.produce(event.topic, value, key, on_delivery=callback)
                break
            except BufferError:
                prod.poll(0.05)  # local queue full: let deliveries drain
        prod.poll(0)
        if on_sent is not None:
            on_sent(event)
        sent += 1
    if prod.flush(60):
        raise RuntimeError("records still undelivered after 60 s")
    return sent


@dataclass(frozen=True, slots=True)
class Delivered:
    """An event as the broker stored it: the exact value sent, its partition and offset."""

    event: OutboundEvent
    partition: int
    offset: int


def _recorder(
    event: OutboundEvent, out: list[Delivered]
) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            raise RuntimeError(f"delivery of {event.value.get('event_id')} failed: {err}")
        partition, offset = msg.partition(), msg.offset()
        if partition is None or offset is None:
            raise RuntimeError(f"delivery report of {event.value.get('event_id')} has no offset")
        out.append(Delivered(event, partition, offset))

    return on_delivery
