"""One encoder per deployment: the catalog records its encoder, another one refuses to start.

Against the real Redis (and broker, for the worker process). "Another encoder" is the same
exported graph under a manifest with a shorter token limit: longer texts are cut elsewhere,
so its vectors differ, and its identity says so.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import redis

from llmrec_stream.config import Settings
from llmrec_stream.devstack import DevStack
from llmrec_stream.devstack.worker import WorkerProcess
from llmrec_stream.encoder.artifact import (
    MANIFEST_NAME,
    encoder_family,
    encoder_identity,
    read_manifest,
)
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.retrieval.catalog import ENCODER, VECTORS, EncoderMismatch
from llmrec_stream.worker import build_pipeline, encoder_id
from tests.integration.inprocess import RefusingSink


class NoSink(RefusingSink):
    """Nothing is published here: these tests only build pipelines."""

    what = "building a pipeline"


@pytest.fixture
def other_encoder_dir(encoder_dir: Path, tmp_path: Path) -> Path:
    """The session's artifact (files linked, not copied) under a manifest cut at 128 tokens."""
    other = tmp_path / "encoder-len128"
    other.mkdir()
    for path in encoder_dir.iterdir():
        if path.name != MANIFEST_NAME:
            (other / path.name).symlink_to(path)
    manifest = json.loads((encoder_dir / MANIFEST_NAME).read_text())
    (other / MANIFEST_NAME).write_text(json.dumps({**manifest, "max_length": 128}))
    return other


def _settings(stack: DevStack, encoder_dir: Path) -> Settings:
    return Settings(redis_url=stack.redis_url, kafka_bootstrap=stack.kafka_bootstrap,
                    encoder_dir=str(encoder_dir), catalog_bootstrap=False)


async def _build(settings: Settings, encoder: TextEncoder | None = None) -> None:
    pipeline = await build_pipeline(settings, NoSink(), encoder=encoder)
    pipeline.close()
    await pipeline.store.client.aclose()


def test_the_identity_names_model_hash_dimension_precision_and_token_limit(
    encoder_dir: Path,
) -> None:
    manifest = read_manifest(encoder_dir)
    identity = encoder_identity(manifest)
    assert identity == (f"{manifest.source}@{manifest.files['model.onnx'][:12]}/"
                        f"{manifest.dim}d/fp32/len{manifest.max_length}")
    assert encoder_identity(manifest, "int8") != identity
    # what a trained model depends on: the source and width, not the precision or digest
    family = encoder_family(identity)
    assert family == f"{manifest.source}/{manifest.dim}d"
    assert encoder_family(encoder_identity(manifest, "int8")) == family


def test_an_empty_deployment_records_the_first_workers_encoder(
    stack: DevStack, redis_client: redis.Redis, encoder_dir: Path, text_encoder: TextEncoder
) -> None:
    settings = _settings(stack, encoder_dir)
    asyncio.run(_build(settings, text_encoder))
    assert redis_client.get(ENCODER) == encoder_id(settings).encode()
    asyncio.run(_build(settings, text_encoder))  # the same encoder starts again


def test_a_worker_with_another_encoder_refuses_to_start_naming_both(
    stack: DevStack,
    redis_client: redis.Redis,
    encoder_dir: Path,
    other_encoder_dir: Path,
    text_encoder: TextEncoder,
) -> None:
    first = _settings(stack, encoder_dir)
    asyncio.run(_build(first, text_encoder))
    second = _settings(stack, other_encoder_dir)
    with pytest.raises(EncoderMismatch) as refused:
        asyncio.run(_build(second))  # loads the other artifact, as a worker would
    print(f"\nrefused: {refused.value}")
    assert isinstance(refused.value, RuntimeError)  # a worker exits with EX_CONFIG on these
    assert encoder_id(first) in str(refused.value)
    assert encoder_id(second) in str(refused.value)
    assert redis_client.get(ENCODER) == encoder_id(first).encode()  # the catalog keeps its own


def test_a_catalog_without_an_identity_but_of_another_dimension_is_refused(
    stack: DevStack, redis_client: redis.Redis, encoder_dir: Path, text_encoder: TextEncoder
) -> None:
    redis_client.hset(VECTORS, "old-item", np.ones(8, dtype="<f4").tobytes())
    with pytest.raises(EncoderMismatch, match="8-dimensional"):
        asyncio.run(_build(_settings(stack, encoder_dir), text_encoder))
    assert redis_client.get(ENCODER) is None


def test_a_worker_process_with_another_encoder_exits_with_the_reason(
    stack: DevStack, redis_client: redis.Redis, other_encoder_dir: Path, tmp_path: Path
) -> None:
    recorded = "sentence-transformers/all-MiniLM-L6-v2@000000000000/384d/fp32/len256"
    redis_client.set(ENCODER, recorded)
    env = {**stack.env(), "LLMREC_ENCODER_DIR": str(other_encoder_dir),
           "LLMREC_APP_ID": "other-encoder"}
    worker = WorkerProcess(env, tmp_path / "other.log", worker_id="other-encoder-0")
    worker.start()
    try:
        assert worker.proc is not None
        assert worker.proc.wait(90) == 78  # EX_CONFIG: not a crash loop, not mixed vectors
        tail = worker.log_tail()
        assert recorded in tail and "len128" in tail, tail
    finally:
        worker.stop()
