"""A promoted model runs once off the event loop before it is swapped in; the swap itself
stays one assignment between batches (issue 17: a model swap's first inference stalled the
loop)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.pipeline.model_control import WARM_ROWS, warm_ranker
from llmrec_stream.ranking.fused import FusedProfileRanker
from llmrec_stream.ranking.protocol import Ranker
from llmrec_stream.ranking.registry import ModelFollower, ModelRecord
from llmrec_stream.worker import build_pipeline

pytest.importorskip("torch", reason="building artifacts needs the `train` extra")
from tests.model_artifacts import TEXT_DIM, toy_artifact  # noqa: E402

TEST_ENCODER = "model-swap-warm-test-encoder"


class _Outputs:
    async def recommendation(self, user_id: str, payload: bytes) -> None:
        raise AssertionError("nothing is published here")

    async def tombstone(self, user_id: str) -> None:
        raise AssertionError("nothing is published here")

    async def dead_letter(self, key: bytes | None, payload: bytes,
                          headers: list[tuple[str, bytes]]) -> None:
        raise AssertionError(f"unexpected dead letter {dict(headers)}")


def test_the_new_model_is_warmed_in_a_thread_while_the_old_one_serves(
    stack: DevStack, text_encoder: TextEncoder, tmp_path: Path
) -> None:
    live = toy_artifact(tmp_path / "live", "new-model", ndcg=0.30)

    async def scenario() -> None:
        settings = Settings(redis_url=stack.redis_url, kafka_bootstrap=stack.kafka_bootstrap)
        pipeline = await build_pipeline(settings, _Outputs(), encoder=text_encoder,
                                        identity=TEST_ENCODER)
        deciding = ModelFollower(pipeline.store.client, TEXT_DIM, FusedProfileRanker())
        loop_thread = threading.get_ident()
        seen: list[tuple[bool, str, int]] = []  # (on the loop?, ranker serving, rows warmed)
        release = threading.Event()

        def warm(ranker: Ranker) -> int:
            # the real warm-up, held until the loop has shown it still serves the old ranker
            rows = warm_ranker(ranker)
            seen.append((threading.get_ident() == loop_thread, pipeline.ranker.version, rows))
            release.wait(10)
            return rows

        try:
            serving = pipeline.ranker.version
            assert (await deciding.consider(ModelRecord.for_artifact(live).dumps())).promoted
            pipeline.control.warm = warm
            follow = asyncio.create_task(pipeline.follow_models())
            for _ in range(500):  # the loop stays free while the new model warms
                if seen:
                    break
                await asyncio.sleep(0.01)
            assert seen == [(False, serving, WARM_ROWS)]
            assert pipeline.ranker.version == serving  # not swapped before the warm-up ends
            release.set()
            assert await follow
            assert pipeline.ranker.version == "new-model"
        finally:
            release.set()
            pipeline.close()
            await pipeline.store.client.aclose()

    asyncio.run(scenario())


def test_warm_ranker_runs_the_sequence_model_and_skips_the_numpy_ranker(tmp_path: Path) -> None:
    from llmrec_stream.ranking.registry import load_ranker

    artifact = toy_artifact(tmp_path / "m", "m", ndcg=0.3)
    ranker = load_ranker(ModelRecord.for_artifact(artifact), TEXT_DIM, FusedProfileRanker())
    assert warm_ranker(ranker) == WARM_ROWS
    assert warm_ranker(FusedProfileRanker()) == 0
