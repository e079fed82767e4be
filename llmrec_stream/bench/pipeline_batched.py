"""Peer 3 of ``bench pipeline``: the micro-batched loop a good engineer writes in a day.

The per-event loop (`pipeline_peers.hand_written_peer`) encodes one text at a time in fp32
torch: a straw man. This one does what anyone who has tuned a consumer does: confluent-kafka
``consume(num_messages=...)`` batches, the strongest encoder peer of ``bench encoder``
(sentence-transformers' OpenVINO backend, exported locally; our own encoder when optimum-intel
is not installed) on each batch's texts at once, one pipelined Redis read and one pipelined
write per batch (profiles as raw float32), one matrix product and ``argpartition`` for every
touched user's top-k, produces for the whole batch, then flush and commit (commit after
produce, as the worker does). Same stream, same order, same catalog vectors as the worker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import redis

from llmrec_stream.config import Settings
from llmrec_stream.cpu import usable_cores
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.topics import create_topics
from llmrec_stream.events.topics import TopicSpec
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.synthetic import SyntheticReplay

BATCHED_EVENTS_TOPIC = "bench.batched.events"
BATCHED_RECS_TOPIC = "bench.batched.recommendations"
TOP_K = 20

Encode = Callable[[Sequence[str]], npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class MicroBatched:
    """Peer 3's figures: events/s draining a backlog, and what it ran."""

    events_per_s: float
    events: int
    comments: int
    batches: int
    batch_max: int
    encoder: str
    cpu_ms_per_event: float


def batched_encoder(settings: Settings, log: Callable[[str], None] = print) -> tuple[str, Encode]:
    """The best encoder peer (sentence-transformers + OpenVINO, defaults) on the worker's
    thread count, or the worker's own encoder when that peer cannot run here (said in `log`)."""
    from pathlib import Path
    from tempfile import mkdtemp

    from llmrec_stream.bench.encoder_peers import ST_OPENVINO, PeerUnavailable, build_peer

    threads = settings.encoder.threads or usable_cores()
    try:
        peer = build_peer(ST_OPENVINO, Path(mkdtemp(prefix="llmrec-peer-")), threads)
    except PeerUnavailable as exc:
        from llmrec_stream.encoder.loading import load_encoder

        log(f"micro-batched loop: {ST_OPENVINO} unavailable ({exc}); it uses our encoder")
        ours = load_encoder(settings)
        return f"ours ({settings.encoder.precision})", ours.encode
    return ST_OPENVINO, lambda texts: peer.encode(texts, 32)


def top_k(profiles: npt.NDArray[np.float32], items: npt.NDArray[np.float32], k: int) -> Any:
    """Every row's k best items by dot product, best first (one product for the batch)."""
    scores = profiles @ items.T
    k = min(k, items.shape[0])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def micro_batched_peer(
    stack: DevStack,
    world: SyntheticReplay,
    n: int,
    settings: Settings,
    *,
    batch_max: int = 256,
    log: Callable[[str], None] = print,
) -> MicroBatched:
    """Drain a backlog of ``n`` of the stream's events with the loop the module describes."""
    from confluent_kafka import Consumer

    name, encode = batched_encoder(settings, log)
    create_topics(
        stack.kafka_bootstrap, 1, [TopicSpec(BATCHED_EVENTS_TOPIC), TopicSpec(BATCHED_RECS_TOPIC)]
    )
    prod = producer(stack.kafka_bootstrap)
    backlog = [replace(e, topic=BATCHED_EVENTS_TOPIC) for e in world.events[:n]]
    publish(prod, backlog)
    encode(["warm up the encoder"] * 8)

    r = redis.Redis.from_url(stack.redis_url)
    wanted = {e.key for e in world.items}
    stored: dict[bytes, bytes] = r.hgetall(VECTORS)  # type: ignore[assignment]
    item_ids = sorted(k.decode() for k in stored if k.decode() in wanted)
    items = np.stack([np.frombuffer(stored[i.encode()], dtype="<f4") for i in item_ids])
    index = {i: row for row, i in enumerate(item_ids)}
    dim = items.shape[1]
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": f"batched-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "queued.min.messages": 10,  # see hand_written_peer: no busy re-fetching
        }
    )
    consumer.subscribe([BATCHED_EVENTS_TOPIC])
    done = comments = batches = 0
    started = cpu0 = 0.0
    while done < len(backlog):
        msgs = [m for m in consumer.consume(batch_max, 1.0) if not m.error()]
        if not msgs:
            continue
        if not started:
            started, cpu0 = time.perf_counter(), time.process_time()
        events: list[dict[str, Any]] = [json.loads(m.value() or b"{}") for m in msgs]
        texts = [ev["text"] for ev in events if "text" in ev]
        text_vecs = iter(encode(texts)) if texts else iter(())
        delta: dict[str, npt.NDArray[np.float32]] = {}
        for ev in events:
            if "text" in ev:
                vec = next(text_vecs)
            elif ev.get("item_id") in index:
                vec = items[index[ev["item_id"]]]
            else:
                continue
            user = f"batched:{ev.get('user_id')}"
            delta[user] = delta.get(user, np.zeros(dim, dtype=np.float32)) + vec
        users = list(delta)
        raw: list[Any] = r.mget(users) if users else []
        profiles = np.stack(
            [
                (np.frombuffer(b, dtype="<f4") if b else np.zeros(dim, np.float32)) + delta[u]
                for u, b in zip(users, raw, strict=True)
            ]
        ) if users else np.zeros((0, dim), np.float32)
        with r.pipeline(transaction=False) as pipe:
            for u, p in zip(users, profiles, strict=True):
                pipe.set(u, p.astype("<f4").tobytes())
            pipe.execute()
        if users:
            for u, top in zip(users, top_k(profiles, items, TOP_K), strict=True):
                prod.produce(
                    BATCHED_RECS_TOPIC, json.dumps([item_ids[t] for t in top]).encode(),
                    u.encode(),
                )
        if prod.flush(30) > 0:
            raise RuntimeError("micro-batched loop: produce not acknowledged in 30 s")
        consumer.commit(asynchronous=False)  # commit after produce
        done += len(msgs)
        comments += len(texts)
        batches += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    consumer.close()
    return MicroBatched(done / elapsed, done, comments, batches, batch_max, name,
                        1000 * cpu / max(done, 1))
