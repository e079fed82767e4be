"""Promotion against a real Redis: not worse or forced goes live, and every worker follows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from llmrec_stream.devstack import DevStack
from llmrec_stream.ranking.fused import FusedProfileRanker
from llmrec_stream.ranking.model import sha256_file
from llmrec_stream.ranking.registry import LIVE_KEY, ModelFollower, ModelRecord

pytest.importorskip("torch", reason="building artifacts needs the `train` extra")
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
