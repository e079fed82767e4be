"""Shadow evaluation before promotion (issue 14, item 4) through the real broker and Redis.

Model records go to ``llmrec.models`` and user events to their topics; both are read back from
the log and handed to the pipeline as the agents hand them. The world is synthetic with known
tastes: every user clicks, round after round, items of one category. The live model is a
scrambled map of the profile (random lists), the "good" model the profile itself, the "worse"
one its opposite (it claims the best offline score: only the online rule can stop it).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from click.testing import CliRunner

from llmrec_stream.cli import main
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.events.records import RawRecord
from llmrec_stream.kafka_log import read_records
from llmrec_stream.pipeline import Pipeline
from llmrec_stream.ranking.registry import LIVE_KEY, ModelRecord
from llmrec_stream.replay import publish
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.sources.synthetic import synthetic_replay
from tests.integration.inprocess import InProcess
from tests.integration.live import LiveWorker

K = 5
USERS = 24
ROUNDS = 5
MIN_EVENTS = 60
#: The shadow pointer and a shadow's online counters, spelled out: the registry's slot.
SHADOW_KEY = "{models}:shadow"


def online(client: redis.Redis, shadow: str, live: str) -> dict[str, int]:
    """A shadow's paired counts against one live version (events, live, shadow, both)."""
    raw = client.hgetall(f"{{models}}:online:{shadow}")
    return {count: int(raw.get(f"{live}:{count}".encode(), 0))
            for count in ("events", "live", "shadow", "both")} | {"k": int(raw.get(b"k", 0))}


# --- a better model wins online and is promoted; a worse one is not -----------------------


class World(InProcess):
    """Items of a synthetic catalog on the real topics, and users with one taste each."""

    def __init__(self, stack: DevStack, encoder: TextEncoder) -> None:
        super().__init__(stack, encoder, "shadow-test-encoder")
        self.tag = f"sh{int(time.time() * 1000) % 10**8}"
        world = synthetic_replay(n_items=64, n_users=1, n_events=0, seed=1414)
        self.by_category: dict[str, list[str]] = {}
        for item, category in world.item_category.items():
            self.by_category.setdefault(category, []).append(item)
        self.items = world.items
        self.rng = random.Random(4)
        self.users = {f"{self.tag}-u{n}": world.categories[n % len(world.categories)]
                      for n in range(USERS)}
        self.left = {u: self.rng.sample(self.by_category[c], len(self.by_category[c]))
                     for u, c in self.users.items()}
        self.now = int(time.time() * 1000) - 600_000

    def pipeline(self) -> Pipeline:
        return self.build(top_k=K, shadow_promote_online=True, shadow_min_events=MIN_EVENTS,
                          catalog_bootstrap=False)

    def back(self, topic: str, values: set[bytes]) -> list[RawRecord]:
        """The records of ``topic`` with these values, as the log holds them."""
        found = [r for r in read_records(self.stack.kafka_bootstrap, [topic],
                                         partitions=self.stack.partitions)
                 if r.value in values]
        assert len(found) == len(values)
        return found

    def load_catalog(self, p: Pipeline) -> None:
        publish(self.prod, self.items, live=False)
        values = {e.encode()[1] for e in self.items}
        self.run(p.process_items(self.back(topics.ITEMS, values)))

    def model(self, p: Pipeline, path: Path, **flags: bool) -> str:
        """Publish a record of this artifact; the models agent's decision, then every
        worker's follow step."""
        record = json.loads(ModelRecord.for_artifact(path, force=flags.get("force", False))
                            .dumps())
        if flags.get("shadow"):
            record["shadow"] = True  # schemas/model_update.json
        value = json.dumps(record).encode()
        self.prod.produce(topics.MODELS, value, b"model")
        assert self.prod.flush(10) == 0
        return self.decide(p, value)

    def decide(self, p: Pipeline, value: bytes) -> str:
        metrics = p.metrics.registry.get_sample_value
        before = {d: metrics("llmrec_model_decisions_total", {"decision": d}) or 0
                  for d in ("promoted", "shadowed", "not_better_online", "invalid_record")}
        self.run(p.process_models(self.back(topics.MODELS, {value})))
        self.run(p.follow_models())
        decided = [d for d, n in before.items()
                   if (metrics("llmrec_model_decisions_total", {"decision": d}) or 0) > n]
        assert len(decided) == 1, decided
        return decided[0]

    def rounds(self, p: Pipeline, n: int) -> None:
        """``n`` rounds of one click per user on an item of their category not clicked yet,
        each round one micro-batch read back from the log."""
        events = []
        for r in range(n):
            self.now += 1000
            for user in self.users:
                item = self.left[user].pop()
                events.append(OutboundEvent(topics.CLICKS, user, {
                    **envelope(f"{user}-{self.now}", self.now + r), "user_id": user,
                    "item_id": item}))
        publish(self.prod, events, live=False)
        records = self.back(topics.CLICKS, {e.encode()[1] for e in events})
        by_round: dict[int, list[RawRecord]] = {}
        for rec in records:
            ts = json.loads(rec.value or b"")["ts"]
            by_round.setdefault(ts, []).append(rec)
        for ts in sorted(by_round):
            outcome = self.run(p.process_events(by_round[ts]))
            assert outcome.applied == USERS and not outcome.dead_letters

    def refill(self) -> None:
        self.left = {u: self.rng.sample(self.by_category[c], len(self.by_category[c]))
                     for u, c in self.users.items()}


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    """A stack of its own: the models these tests publish stay on its ``llmrec.models``, where
    a later test's worker would otherwise replay them and serve a scrambled model."""
    with DevStack() as own:
        yield own


@pytest.fixture
def world(stack: DevStack, redis_client: redis.Redis, text_encoder: TextEncoder) -> Iterator[World]:
    """On an emptied database (``redis_client`` flushes it): no other test's live model."""
    w = World(stack, text_encoder)
    try:
        yield w
    finally:
        w.close()


def _map(path: Path, version: str, matrix: np.ndarray, ndcg: float, item_ids: list[str]) -> Path:
    """A kind ``fused`` artifact whose map is ``u @ matrix`` (exported to ONNX by the trainer's
    own code)."""
    import torch

    from llmrec_stream.trainer.export import write_artifact
    from llmrec_stream.trainer.fused_map import FusedMap

    class Linear(FusedMap):
        def __init__(self, m: np.ndarray) -> None:
            super().__init__(m.shape[0], hidden=4)
            self.m = torch.nn.Parameter(torch.from_numpy(m.astype(np.float32)))

        def forward(self, u: torch.Tensor) -> torch.Tensor:
            return u @ self.m

    dim = matrix.shape[0]
    return write_artifact(path, Linear(matrix), item_ids=item_ids,
                          items=np.zeros((len(item_ids) + 1, dim), np.float32), item_text=None,
                          version=version, metrics={"valid": {"ndcg@10": ndcg}}, params={})


def test_a_better_shadow_wins_online_and_is_promoted_a_worse_one_is_not(
    world: World, redis_client: redis.Redis, stack: DevStack, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="building artifacts needs the `train` extra")
    started = time.monotonic()
    dim = world.encoder.dim
    ids = [i for items in world.by_category.values() for i in items]
    scrambled, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((dim, dim)))
    live = _map(tmp_path / "scrambled", "scrambled", scrambled, 0.10, ids)
    good = _map(tmp_path / "good", "good", np.eye(dim), 0.20, ids)
    worse = _map(tmp_path / "worse", "worse", -np.eye(dim), 0.30, ids)  # best offline claim

    p = world.pipeline()
    try:
        world.load_catalog(p)
        assert world.model(p, live, force=True) == "promoted"
        assert p.ranker.version == "scrambled"

        assert world.model(p, good, shadow=True) == "shadowed"
        assert redis_client.hget(SHADOW_KEY, "version") == b"good"
        assert p.ranker.version == "scrambled"  # the shadow ranks, unpublished
        assert world.model(p, good) == "not_better_online"  # not enough events yet
        world.rounds(p, ROUNDS)
        hits = online(redis_client, "good", "scrambled")
        print(f"\ngood (shadow) vs scrambled (live): {hits}")
        assert hits["k"] == K and hits["events"] == USERS * (ROUNDS - 1)
        assert hits["shadow"] > hits["live"] + 0.3 * hits["events"]

        env = {**stack.env(), "LLMREC_SHADOW_MIN_EVENTS": str(MIN_EVENTS)}
        report = CliRunner().invoke(main, ["models", "compare"], env=env,
                                    catch_exceptions=False)
        print(report.output)
        assert report.exit_code == 0, report.output
        assert f"online hit rate@{K} on {hits['events']} paired events" in report.output
        assert f"hits {hits['shadow']}/{hits['events']}" in report.output
        assert "online verdict: shadow wins" in report.output

        assert world.model(p, good) == "promoted"
        assert p.ranker.version == "good"
        assert redis_client.hget(LIVE_KEY, "version") == b"good"
        assert not redis_client.exists(SHADOW_KEY)  # its shadow run is over

        world.refill()
        # the operator's way: `llmrec-stream models publish --shadow`
        published = CliRunner().invoke(main, ["models", "publish", "--shadow", str(worse)],
                                       env=env, catch_exceptions=False)
        assert published.exit_code == 0, published.output
        value = [r.value for r in read_records(stack.kafka_bootstrap, [topics.MODELS],
                                               partitions=stack.partitions)
                 if r.value and str(worse).encode() in r.value][-1]  # only its record
        assert json.loads(value)["shadow"] is True
        assert world.decide(p, value) == "shadowed"
        world.rounds(p, ROUNDS)
        hits = online(redis_client, "worse", "good")
        print(f"worse (shadow) vs good (live): {hits}")
        assert hits["events"] == USERS * (ROUNDS - 1) and hits["shadow"] < hits["live"]
        assert world.model(p, worse) == "not_better_online"  # better offline, worse online
        assert redis_client.hget(LIVE_KEY, "version") == b"good"
        assert p.ranker.version == "good"
        published = {json.loads(r.value)["model_version"]
                     for r in read_records(stack.kafka_bootstrap, [topics.RECOMMENDATIONS],
                                           partitions=stack.partitions)
                     if r.value and r.key and r.key.decode().startswith(world.tag)}
        assert published == {"scrambled", "good"}  # never a shadow's list
    finally:
        p.close()
        world.run(p.store.client.aclose())
    assert time.monotonic() - started < 60


def test_a_worker_process_runs_the_shadow_and_publishes_only_the_live_lists(
    world: World, redis_client: redis.Redis, stack: DevStack, encoder_dir: Path, tmp_path: Path
) -> None:
    """The Faust worker: its models agent starts the shadow, its model timer loads it, its
    user-events agent scores both models; Prometheus and Redis count the same events."""
    pytest.importorskip("torch", reason="building artifacts needs the `train` extra")
    version = f"good-{world.tag}"  # the session's llmrec.models holds other tests' records
    ids = [i for items in world.by_category.values() for i in items]
    good = _map(tmp_path / "good", version, np.eye(world.encoder.dim), 0.2, ids)
    worker = LiveWorker(stack, encoder_dir, tmp_path, env={
        "LLMREC_TOP_K": str(K), "LLMREC_MODEL_POLL_S": "0.2"}).start()
    try:
        worker.publish(world.items)
        worker.wait_catalog(len(world.items))
        record = json.loads(ModelRecord.for_artifact(good).dumps())
        worker.publish_raw(topics.MODELS, b"model", json.dumps({**record, "shadow": True}).encode())
        worker.wait(lambda: worker.metrics().get(f'llmrec_shadow_model{{version="{version}"}}')
                    == 1, 60, "the shadow model")
        for _ in range(ROUNDS):
            world.now += 1000
            worker.publish([OutboundEvent(topics.CLICKS, u, {
                **envelope(f"{u}-{world.now}", world.now), "user_id": u,
                "item_id": world.left[u].pop()}) for u in world.users])
            worker.wait_caught_up(30)  # one round, one batch per user
        metrics = worker.metrics()
        label = f'{{model_version="{version}",role="shadow"}}'
        counted = metrics.get(f"llmrec_shadow_events_total{label}", 0)
        hits = metrics.get(f"llmrec_shadow_hits_total{label}", 0)
        stored = redis_client.hgetall(f"{{models}}:online:{version}")
        per_live = [v for f, v in stored.items() if f.endswith(b":events")]
        assert counted == sum(int(v) for v in per_live) >= USERS * (ROUNDS - 1)
        assert hits == sum(int(v) for f, v in stored.items() if f.endswith(b":shadow"))
        for user in world.users:
            lists = redis_client.hgetall(f"u:{{{user}}}:sh")
            assert lists[b"sv"] == version.encode() and len(json.loads(lists[b"s"])) == K
        published = {json.loads(r.value)["model_version"]
                     for r in read_records(stack.kafka_bootstrap, [topics.RECOMMENDATIONS],
                                           partitions=stack.partitions)
                     if r.value and r.key and r.key.decode() in world.users}
        assert published and version not in published
        print(f"\n{int(counted)} events scored by the worker, {int(hits)} shadow hits; "
              f"records by {sorted(published)}")
    finally:
        assert worker.stop() == 0, worker.proc.log_tail()
