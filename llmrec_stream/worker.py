"""Assembles a pipeline from settings: the one place that knows every concrete part.

The Faust app, the tests and the benchmarks all build their pipeline here, so they run the
same wiring; only the ``Sink`` differs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import redis.asyncio as aioredis

from llmrec_stream.config import Settings
from llmrec_stream.encoder.artifact import default_encoder_dir
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events.codec import Limits
from llmrec_stream.metrics import Metrics
from llmrec_stream.pipeline import Pipeline
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.profiles.store import ProfileStore
from llmrec_stream.publish import Sink
from llmrec_stream.ranking.fused import FusedProfileRanker
from llmrec_stream.ranking.model import ModelArtifactError
from llmrec_stream.ranking.protocol import Ranker
from llmrec_stream.ranking.registry import ModelFollower, ModelRecord, load_ranker
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.retrieval.tiered import TieredIndex
from llmrec_stream.security import redis_options

log = logging.getLogger(__name__)


def fusion_weights(settings: Settings) -> FusionWeights:
    return FusionWeights(
        click=settings.weight_click,
        purchase=settings.weight_purchase,
        review=settings.weight_review,
        comment_text=settings.weight_comment_text,
        half_life_s=settings.half_life_s,
        mix_text=settings.mix_text,
    )


def redis_client(settings: Settings) -> aioredis.Redis:
    if not settings.redis_url:
        raise RuntimeError(
            "LLMREC_REDIS_URL is not set: start the embedded stack (llmrec-stream stack) "
            "or point it at your Redis"
        )
    return aioredis.Redis.from_url(
        settings.redis_url, health_check_interval=10, **redis_options(settings)
    )


def load_encoder(settings: Settings) -> TextEncoder:
    """The ONNX encoder from its exported artifact (onnxruntime + tokenizers only)."""
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    path = Path(settings.encoder_dir) if settings.encoder_dir else default_encoder_dir()
    if not (path / "manifest.json").exists():
        raise RuntimeError(
            f"no exported encoder at {path}: run `llmrec-stream export-encoder` first"
        )
    encoder = OnnxTextEncoder.load(
        path,
        device=settings.encoder_device,
        intra_op_threads=settings.encoder_threads or None,
        precision=settings.encoder_precision,
        spinning=settings.encoder_spinning,
        parallel_runs=settings.encoder_parallel_runs,
    )
    log.info("encoder %s dim=%d providers=%s", path, encoder.dim, encoder.providers)
    return encoder


async def build_pipeline(
    settings: Settings,
    sink: Sink,
    *,
    encoder: TextEncoder | None = None,
    metrics: Metrics | None = None,
) -> Pipeline:
    """A ready pipeline: encoder loaded, catalog mirrored from Redis."""
    encoder = encoder or load_encoder(settings)
    client = redis_client(settings)
    weights = fusion_weights(settings)
    catalog = Catalog(client, TieredIndex.from_settings(encoder.dim, settings))
    n_items = await catalog.bootstrap()
    metrics = metrics or Metrics()
    metrics.items.set(n_items)
    log.info("catalog: %d items loaded from redis", n_items)
    fallback = FusedProfileRanker(settings.mix_text)
    models = ModelFollower(client, encoder.dim, fallback)
    pipeline = Pipeline(
        encoder=encoder,
        store=ProfileStore(client, encoder.dim, weights, settings.recent_items,
                           settings.seen_items, max_attributes=settings.max_attributes),
        catalog=catalog,
        ranker=fallback,
        sink=sink,
        metrics=metrics,
        weights=weights,
        limits=Limits(settings.max_text_bytes, settings.max_future_skew_s),
        top_k=settings.top_k,
        worker_id=settings.resolved_worker_id,
        models=models,
    )
    if not await pipeline.follow_models() and settings.model_dir:
        pipeline.swap_ranker(pinned_model(settings, encoder.dim, fallback))
    log.info("ranking with %s", pipeline.ranker.version)
    return pipeline


def pinned_model(settings: Settings, text_dim: int, fallback: Ranker) -> Ranker:
    """The artifact named by ``LLMREC_MODEL_DIR``; a bad one stops the start with its reason."""
    try:
        record = ModelRecord.for_artifact(Path(settings.model_dir))
        return load_ranker(record, text_dim, fallback)
    except ModelArtifactError as exc:
        raise RuntimeError(f"LLMREC_MODEL_DIR={settings.model_dir}: {exc}") from exc
