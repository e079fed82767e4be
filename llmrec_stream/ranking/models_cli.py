"""``llmrec-stream models``: publish a model (live or in shadow) and compare a shadow online.

Loaded lazily by the command line (`llmrec_stream.cli.TOOLING`); it needs only the runtime
install: Redis for the counters, the producer for ``llmrec.models``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import click

from llmrec_stream.config import Settings
from llmrec_stream.ranking.online_stats import PairedHits, paired_difference, wilson
from llmrec_stream.ranking.registry import ModelRecord
from llmrec_stream.ranking.shadow import OnlineRule, online_stats, shadow_record


@click.group("models")
def models_group() -> None:
    """Publish a ranking model (live or in shadow); compare a shadow online."""


@models_group.command("publish")
@click.argument("artifact", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--shadow", is_flag=True,
              help="Run it beside the live model, unpublished, and score it online.")
@click.option("--force", is_flag=True, help="Promote even if it evaluates below the live model.")
def publish_cmd(artifact: Path, shadow: bool, force: bool) -> None:
    """Announce an exported ARTIFACT on llmrec.models: a promotion request, or a shadow run."""
    from llmrec_stream.events import topics
    from llmrec_stream.replay import producer
    from llmrec_stream.security import confluent_config

    settings = Settings()
    if not settings.kafka.bootstrap:
        raise click.ClickException("set LLMREC_KAFKA_BOOTSTRAP to publish")
    record = ModelRecord.for_artifact(artifact, force=force)
    record = dataclasses.replace(record, shadow=shadow)
    prod = producer(settings.kafka.bootstrap, **confluent_config(settings.kafka))
    prod.produce(topics.MODELS, record.dumps(), b"model")  # one key: one partition, in order
    if prod.flush(30):
        raise click.ClickException("the model record was not delivered within 30 s")
    click.echo(f"published {record.version}{' in shadow' if shadow else ''} on {topics.MODELS}")


@models_group.command("compare")
@click.option("--version", "shadow_version",
              help="The shadow model to report. [default: the one running in shadow now]")
def compare_cmd(shadow_version: str | None) -> None:
    """Live vs shadow online hit rate@k on the same events, with confidence intervals."""
    from llmrec_stream.ranking.registry import LIVE_KEY
    from llmrec_stream.redis_conn import async_client

    settings = Settings()

    async def read() -> tuple[str | None, str | None, int | None, dict[str, PairedHits]]:
        client = async_client(settings.redis)
        try:
            version = shadow_version
            if version is None:
                running = await shadow_record(client)
                version = None if running is None else running.version
            live = await client.hget(LIVE_KEY, "version")
            k, by_live = await online_stats(client, version) if version else (None, {})
            live_name = live.decode() if isinstance(live, bytes) else live
            return version, live_name, k, by_live
        finally:
            await client.aclose()

    version, live, k, by_live = asyncio.run(read())
    if version is None:
        raise click.ClickException("no model runs in shadow (give --version for an earlier one)")
    if not by_live:
        raise click.ClickException(f"no online events scored for {version} yet")
    rule = OnlineRule(settings.shadow.min_events, settings.shadow.confidence)
    for live_version, hits in sorted(by_live.items(), key=lambda kv: kv[0] != live):
        click.echo(compare_text(version, live_version, hits, k or settings.ranking.top_k, rule,
                                current=live_version == live))


def compare_text(
    shadow: str, live: str, hits: PairedHits, k: int, rule: OnlineRule, *, current: bool
) -> str:
    """The report of one (shadow, live) pair, as ``models compare`` prints it."""
    level = rule.level
    lines = [f"shadow {shadow} vs live {live}{'' if current else ' (no longer live)'}: "
             f"online hit rate@{k} on {hits.events} paired events"]
    for role, name, n in (("live", live, hits.live), ("shadow", shadow, hits.shadow)):
        low, high = wilson(n, hits.events, level)
        rate = n / hits.events if hits.events else 0.0
        lines.append(f"  {role:<6} {rate:.4f}  hits {n}/{hits.events}  {level:.0%} CI "
                     f"[{low:.4f}, {high:.4f}] (Wilson)  {name}")
    diff, low, high = paired_difference(hits, level)
    lines.append(f"  shadow - live {diff:+.4f}  {level:.0%} CI [{low:+.4f}, {high:+.4f}] "
                 "(Newcombe, paired)")
    won, why = rule.verdict(hits)
    lines.append(f"  online verdict: {'shadow wins' if won else 'shadow does not win'} ({why})")
    return "\n".join(lines)
