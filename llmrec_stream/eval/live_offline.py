"""Live = offline: the top-k the running pipeline publishes equals the offline evaluator's.

Each chosen user's validation history (every item but the test target) is replayed as
purchases through the real pipeline (embedded broker, a Faust worker with the model artifact
loaded, Redis). The last recommendation published for the user, the one that followed their
last event, is compared with the offline list for the same history: the same artifact scored
in one batch, history items excluded exactly as the harness's metrics exclude them
(`llmrec_stream.datasets.metrics.top_k_lists`).

With ``interleave`` the history is spread over clicks, comments and purchases (position by
position) and produced as a backlog before the worker starts, which then interleaves the three
topics as its fetches come: the recent list must still follow event time, as offline does.
The user's record compared is then the last one published once the worker caught up.

Ties: live and offline run the user tower on differently padded batches, so scores may differ
in the last float bits, and two items whose scores differ by less than that may swap. A list
counts as equal within ties when, position by position, its scores match the offline scores
within ``tol`` (the published scores carry 6 decimals).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import redis

from llmrec_stream.datasets.metrics import top_k_lists
from llmrec_stream.demo.watch import OutputWatcher, group_lag
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.events import topics
from llmrec_stream.ranking.model import OnnxRanker
from llmrec_stream.replay import producer, publish
from llmrec_stream.retrieval.catalog import VECTORS
from llmrec_stream.sources.atomic import AtomicDataset, atomic_replay, load_atomic
from llmrec_stream.sources.base import OutboundEvent

TOLERANCE = 1e-4


def offline_top_k(
    model: OnnxRanker, histories: list[list[str]], k: int, batch: int = 512
) -> list[list[tuple[str, float]]]:
    """The offline lists: histories in time order, scored in batches, history excluded."""
    out: list[list[tuple[str, float]]] = []
    for start in range(0, len(histories), batch):
        chunk = histories[start : start + batch]
        scores = model.scores(model.queries_from_recent([h[::-1] for h in chunk]))
        masks = [np.array([model.index[i] for i in h if i in model.index], np.int64)
                 for h in chunk]
        cols, vals = top_k_lists(scores, masks, k)
        out += [[(model.item_ids[c - 1], float(v)) for c, v in zip(row, vrow, strict=True)
                 if np.isfinite(v)] for row, vrow in zip(cols, vals, strict=True)]
    return out


def live_vs_offline(
    model_dir: Path,
    data_dir: Path,
    encoder_dir: Path,
    *,
    users: int | None = None,
    k: int = 10,
    seed: int = 0,
    precision: str = "int8",
    tol: float = TOLERANCE,
    logdir: Path | None = None,
    timeout_s: float = 1800.0,
    interleave: bool = False,
) -> dict[str, Any]:
    """Replay the chosen users (all when ``users`` is None) and compare; returns the figures."""
    ds = load_atomic(data_dir)
    model = OnnxRanker(model_dir)
    chosen = [u for u in ds.user_ids if u in ds.valid]
    if users is not None and users < len(chosen):
        picked = np.sort(np.random.default_rng(seed).choice(len(chosen), users, replace=False))
        chosen = [chosen[i] for i in picked]
    histories = {u: ds.valid[u] for u in chosen}
    started = time.monotonic()
    offline = dict(zip(chosen, offline_top_k(model, [histories[u] for u in chosen], k),
                       strict=True))
    offline_s = time.monotonic() - started
    live, live_s = _replay(model_dir, ds, histories, encoder_dir, k, precision, logdir,
                           timeout_s, interleave)
    return _compare(model, ds, chosen, offline, live, k, tol) | {
        "users": len(chosen), "model": model.version, "k": k, "tolerance": tol,
        "precision": precision, "offline_s": offline_s, "live_s": live_s,
        "interleave": interleave,
    }


def _spread(event: OutboundEvent) -> OutboundEvent:
    """A history purchase as a click, a comment or a purchase, by its position (ts kept)."""
    position = int(event.value["event_id"].rsplit(":", 1)[1])
    base = {k: event.value[k] for k in ("schema_version", "event_id", "ts", "user_id", "item_id")}
    if position % 3 == 0:
        return OutboundEvent(topics.CLICKS, event.key, base)
    if position % 3 == 1:
        return OutboundEvent(topics.COMMENTS, event.key,
                             {**base, "text": "Works as described.", "rating": 4})
    return event


def _replay(
    model_dir: Path, ds: AtomicDataset, histories: dict[str, list[str]], encoder_dir: Path,
    k: int, precision: str, logdir: Path | None, timeout_s: float, interleave: bool = False,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Purchases of every history through a live worker; each user's final record."""
    replay = atomic_replay(replace(ds, test=histories, user_ids=list(histories)))
    if interleave:
        replay = replace(replay, events=[_spread(e) for e in replay.events])
    needed = {i for h in histories.values() for i in h}
    items = [e for e in replay.items if e.key in needed]
    last_event = {u: f"{ds.name}:p:{u}:{len(h) - 1}" for u, h in histories.items()}
    with DevStack() as stack:
        app_id = f"live-offline-{uuid.uuid4().hex[:6]}"
        env = {
            **stack.env(),
            "LLMREC_ENCODER_DIR": str(encoder_dir),
            "LLMREC_ENCODER_PRECISION": precision,
            "LLMREC_APP_ID": app_id,
            "LLMREC_MODEL_DIR": str(Path(model_dir).resolve()),
            "LLMREC_TOP_K": str(k),
            # the whole history stays in the recent list, so live excludes what offline does
            "LLMREC_RECENT_ITEMS": str(max(len(h) for h in histories.values())),
        }
        worker = WorkerProcess(env, Path(logdir or stack.workdir or ".") / "live-offline.log",
                               worker_id=app_id)
        watcher = OutputWatcher(stack.kafka_bootstrap, keep_all=True)
        watcher.start(stack.partitions)
        worker.start()
        try:
            client = redis.Redis.from_url(stack.redis_url)
            prod = producer(stack.kafka_bootstrap)
            publish(prod, items)
            worker.wait_until(lambda: client.hlen(VECTORS) >= len(items), timeout_s, "catalog")
            started = time.monotonic()
            if interleave:  # a backlog: the worker starts after every event is in the log
                worker.stop()
                publish(prod, replay.events, live=False)
                prod.flush(60)
                started = time.monotonic()
                worker.start()
            else:
                publish(prod, replay.events)
            final: dict[str, dict[str, Any]] = {}
            final_seen: list[dict[str, Any]] = []
            seen_last: set[str] = set()
            event_topics = [topics.COMMENTS, topics.CLICKS, topics.PURCHASES]

            def done() -> bool:
                for rec in watcher.snapshot().all_records[len(final_seen) :]:
                    final_seen.append(rec)
                    if last_event.get(rec["user_id"]) in rec["event_ids"]:
                        seen_last.add(rec["user_id"])
                    if interleave or last_event.get(rec["user_id"]) in rec["event_ids"]:
                        final[rec["user_id"]] = rec  # interleaved: the latest record
                if len(seen_last) < len(histories):
                    return False
                return not interleave or group_lag(stack.kafka_bootstrap, app_id, event_topics,
                                                   stack.partitions) == 0

            worker.wait_until(done, timeout_s, "every user's last recommendation")
            if interleave:  # the caught-up group's last records are on their way
                time.sleep(2.0)
                done()
            return final, time.monotonic() - started
        finally:
            watcher.stop()
            worker.stop()


def _compare(
    model: OnnxRanker, ds: AtomicDataset, chosen: list[str],
    offline: dict[str, list[tuple[str, float]]], live: dict[str, dict[str, Any]], k: int,
    tol: float,
) -> dict[str, Any]:
    exact = within_ties = 0
    wrong_version = 0
    examples: list[dict[str, Any]] = []
    hits_live: list[float] = []
    hits_offline: list[float] = []
    for user in chosen:
        off_items = [i for i, _ in offline[user]]
        off_scores = np.array([s for _, s in offline[user]])
        rec = live[user]
        wrong_version += rec["model_version"] != model.version
        live_scores = np.array(rec["scores"], dtype=np.float64)
        if rec["items"] == off_items:
            exact += 1
            within_ties += 1
        elif len(live_scores) == len(off_scores) and np.allclose(live_scores, off_scores,
                                                                 rtol=0, atol=tol):
            within_ties += 1
        elif len(examples) < 5:
            examples.append({"user": user, "live": rec["items"], "offline": off_items})
        target = ds.test[user][-1]
        hits_live.append(_gain(rec["items"], target))
        hits_offline.append(_gain(off_items, target))
    n = max(len(chosen), 1)
    return {
        "equal_exact": exact / n, "equal_within_ties": within_ties / n,
        "records_from_other_versions": wrong_version, "mismatch_examples": examples,
        f"ndcg@{k}_live": float(np.mean(hits_live)) if hits_live else 0.0,
        f"ndcg@{k}_offline": float(np.mean(hits_offline)) if hits_offline else 0.0,
    }


def _gain(items: list[str], target: str) -> float:
    return 1.0 / float(np.log2(items.index(target) + 2)) if target in items else 0.0
