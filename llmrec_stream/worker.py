"""Assembles a pipeline from settings: the one place that knows every concrete part.

The Faust app, the tests and the benchmarks all build their pipeline here, so they run the
same wiring; only the ``Sink`` differs.

Building a pipeline is also a worker's start-up: it checks that its encoder is the catalog's
(`encoder_id`, `Catalog.claim_encoder`) and restores the catalog from ``llmrec.items`` before
any agent takes a record (`bootstrap_catalog`: a Kafka Streams GlobalKTable's restore; every
agent of ``streams/agents.py`` awaits the pipeline before its first record).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from llmrec_stream.config import Settings
from llmrec_stream.encoder.artifact import encoder_family
from llmrec_stream.encoder.loading import encoder_id, encoder_path, load_encoder
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.events.codec import Rejected, decode
from llmrec_stream.events.models import Item, Source
from llmrec_stream.kafka_log import read_records
from llmrec_stream.metrics import Metrics
from llmrec_stream.pipeline import Pipeline
from llmrec_stream.profiles.store import ProfileStore
from llmrec_stream.publish import Sink
from llmrec_stream.ranking.fused import FusedProfileRanker
from llmrec_stream.ranking.model import ModelArtifactError
from llmrec_stream.ranking.protocol import Ranker
from llmrec_stream.ranking.registry import ModelFollower, ModelRecord, load_ranker
from llmrec_stream.ranking.shadow import OnlineRule, ShadowRegistry, ShadowRun
from llmrec_stream.redis_conn import async_client
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.retrieval.tiered import TieredIndex
from llmrec_stream.security import confluent_config
from llmrec_stream.sentiment import TextSignals, load_heads
from llmrec_stream.social.blend import SocialBlend, SocialRules
from llmrec_stream.sponsored.campaigns import CampaignTable
from llmrec_stream.sponsored.slots import SlotRules, Sponsor, parse_positions

log = logging.getLogger(__name__)
#: Items encoded and published per step of the catalog bootstrap: what a crash during a long
#: bootstrap loses, and the size of one encoder call.
BOOTSTRAP_CHUNK = 256


def text_signals(settings: Settings, dim: int, metrics: Metrics) -> TextSignals | None:
    """The artifact's sentiment and aspect heads when ``text_signals`` is on and it has some."""
    if not settings.text.signals:
        return None
    heads = load_heads(encoder_path(settings), dim)
    if heads is None:
        log.warning("text_signals is on, but the encoder artifact has no heads: ratings only")
        return None
    log.info("text signals: sentiment head %s, aspects %s", heads.sentiment is not None,
             None if heads.aspects is None else list(heads.aspects.names))
    return TextSignals(heads, metrics, settings.text.aspect_rank_weight,
                       settings.text.aspect_rank_pool)


async def build_pipeline(
    settings: Settings,
    sink: Sink,
    *,
    encoder: TextEncoder | None = None,
    metrics: Metrics | None = None,
    identity: str | None = None,
) -> Pipeline:
    """A ready pipeline: encoder loaded and checked against the catalog's, catalog mirrored
    from Redis and brought up to the end of ``llmrec.items``.

    ``identity`` names a given ``encoder`` (default: `encoder_id` of the settings, which
    describe the encoder loaded when none is given). A worker whose encoder is not the
    catalog's raises `EncoderMismatch` (a ``RuntimeError``: the worker exits with its reason).
    """
    if encoder is None:
        encoder = load_encoder(settings)
    identity = identity or encoder_id(settings)
    client = async_client(settings.redis)
    weights = settings.fusion
    catalog = Catalog(client, TieredIndex.from_settings(encoder.dim, settings.retrieval))
    await catalog.claim_encoder(identity)
    log.info("encoder %s (the catalog's)", identity)
    n_items = await catalog.bootstrap()
    metrics = metrics or Metrics()
    metrics.items.set(n_items)
    log.info("catalog: %d items loaded from redis", n_items)
    if settings.catalog.bootstrap and settings.kafka.bootstrap:
        await bootstrap_catalog(settings, catalog, encoder, metrics)
        metrics.items.set(len(catalog.index))
    fallback = FusedProfileRanker(settings.fusion.mix_text)
    rule = (OnlineRule(settings.shadow.min_events, settings.shadow.confidence)
            if settings.shadow.promote_online else None)
    models = ModelFollower(client, encoder.dim, fallback, encoder=encoder_family(identity),
                           shadows=ShadowRegistry(client, rule))
    pipeline = Pipeline(
        encoder=encoder,
        store=ProfileStore(client, encoder.dim, weights, settings.profiles.recent_items,
                           settings.profiles.seen_items,
                           max_attributes=settings.profiles.max_attributes,
                           encoder_id=identity,
                           explain_comments=settings.profiles.explain_comments,
                           max_follows=settings.social.max_follows),
        catalog=catalog,
        ranker=fallback,
        sink=sink,
        metrics=metrics,
        weights=weights,
        limits=settings.limits,
        top_k=settings.ranking.top_k,
        worker_id=settings.stream.resolved_worker_id,
        models=models,
        unknown_item_wait_s=settings.catalog.unknown_item_wait_s,
        dlq_value_prefix_bytes=settings.dlq.value_prefix_bytes,
        dlq_send_attempts=settings.dlq.send_attempts,
        explain_max_events=settings.ranking.explain_max_events,
        sponsor=sponsor(settings, client, encoder.dim, metrics),
        social=SocialBlend(client, encoder.dim,
                           SocialRules(settings.social.weight, settings.fusion.half_life_s),
                           metrics),
        shadow=(ShadowRun(client, encoder.dim, fallback, metrics, ttl_s=settings.shadow.ttl_s,
                          encoder=encoder_family(identity))
                if settings.shadow.enabled else None),
        text_signals=text_signals(settings, encoder.dim, metrics),
    )
    if not await pipeline.follow_models() and settings.models.dir:
        pipeline.swap_ranker(pinned_model(settings, encoder.dim, fallback,
                                          encoder_family(identity)))
    log.info("ranking with %s", pipeline.ranker.version)
    return pipeline


@dataclass(frozen=True, slots=True)
class CatalogBootstrap:
    """What a worker's start-up read of ``llmrec.items`` found and did."""

    records: int
    items: int
    encoded: int
    seconds: float


async def bootstrap_catalog(
    settings: Settings, catalog: Catalog, encoder: TextEncoder, metrics: Metrics
) -> CatalogBootstrap:
    """Read ``llmrec.items`` to its end offsets and publish the items the catalog lacks.

    A Kafka Streams GlobalKTable is restored to its topic's end before the application
    processes a record; the catalog gets the same start-up, so a backfill (items, then
    events, all in Kafka before the first worker starts) never meets an item that is only
    later in the items agent's queue. All partitions are read (assigned, no group, nothing
    committed: `kafka_log.read_records`), the latest version of each item is kept, and those
    the catalog lacks or holds with other content (`Catalog.stale`) are encoded and
    published. Records that do not decode are skipped: the items agent dead-letters them.

    The Kafka read and the encoding run in threads: this runs on the Faust worker's event
    loop, whose consumer heartbeats must go on. Workers starting together each encode what
    is stale when they look, so an item may be encoded by several of them: the vectors are
    the same (one encoder per deployment), and a later publish of an unchanged item changes
    nothing in any index.
    """
    started = time.perf_counter()
    records, latest = await asyncio.to_thread(_latest_items, settings)
    stale = await catalog.stale(latest)
    for at in range(0, len(stale), BOOTSTRAP_CHUNK):
        chunk = stale[at : at + BOOTSTRAP_CHUNK]
        vectors = await asyncio.to_thread(encoder.encode, [it.text() for it in chunk])
        await catalog.publish(chunk, vectors)
    done = CatalogBootstrap(records, len(latest), len(stale), time.perf_counter() - started)
    for stage, n in (("records", done.records), ("items", done.items),
                     ("encoded", done.encoded)):
        metrics.catalog_bootstrap_items.labels(stage).set(n)
    metrics.catalog_bootstrap_seconds.set(done.seconds)
    log.info("catalog bootstrap: %d records of %s read, %d items, %d encoded, in %.1fs",
             done.records, topics.ITEMS, done.items, done.encoded, done.seconds)
    return done


def _latest_items(settings: Settings) -> tuple[int, list[Item]]:
    """(records read, the latest version of each item that decodes), in a thread."""
    limits = settings.limits
    latest: dict[str, Item] = {}
    n = 0
    for r in read_records(settings.kafka.bootstrap, [topics.ITEMS],
                          group_id=f"{settings.stream.app_id}-catalog-bootstrap",
                          conf=confluent_config(settings.kafka),
                          timeout_s=settings.kafka.log_read_timeout_s):
        n += 1
        env = decode(r.topic, r.key, r.value, Source(r.topic, r.partition, r.offset), limits)
        if not isinstance(env, Rejected) and isinstance(env.event, Item):
            latest[env.event.item_id] = env.event  # offset order: a later version wins
    return n, list(latest.values())


def pinned_model(
    settings: Settings, text_dim: int, fallback: Ranker, encoder: str = ""
) -> Ranker:
    """The artifact named by ``LLMREC_MODEL_DIR``; a bad one (one trained on another
    encoder included) stops the start with its reason."""
    try:
        record = ModelRecord.for_artifact(Path(settings.models.dir))
        return load_ranker(record, text_dim, fallback, encoder=encoder)
    except ModelArtifactError as exc:
        raise RuntimeError(f"LLMREC_MODEL_DIR={settings.models.dir}: {exc}") from exc


def sponsor(
    settings: Settings, client: aioredis.Redis, dim: int, metrics: Metrics
) -> Sponsor | None:
    """Sponsored slots as the settings say (None when they are off)."""
    if not settings.sponsored.enabled:
        return None
    rules = SlotRules(parse_positions(settings.sponsored.positions), settings.sponsored.max_items,
                      settings.sponsored.floor, settings.sponsored.frequency_cap,
                      settings.sponsored.frequency_window_s)
    table = CampaignTable(client, dim, settings.sponsored.refresh_s)
    return Sponsor(table, client, rules, metrics, settings.fusion.mix_text)
