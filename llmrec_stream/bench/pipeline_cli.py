"""``llmrec-stream bench pipeline``: options, then JSON + PNG + table via bench.report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import click

from llmrec_stream.bench.options import encoder_dir_option, out_option, precision_option
from llmrec_stream.bench.pipeline import bench_pipeline
from llmrec_stream.bench.pipeline_report import pipeline_chart, pipeline_table
from llmrec_stream.bench.report import write_results
from llmrec_stream.encoder.artifact import default_encoder_dir


@click.command("pipeline")
@encoder_dir_option
@click.option("--items", "n_items", default=10_000, show_default=True)
@click.option("--users", "n_users", default=5_000, show_default=True)
@click.option("--drain-events", default=20_000, show_default=True,
              help="Backlog size whose drain rate is the max sustained throughput.")
@click.option("--load-seconds", default=60.0, show_default=True,
              help="Sustained load per freshness point.")
@precision_option
@click.option("--workers", default=1, show_default=True)
@click.option("--peer-events", default=1_000, show_default=True,
              help="Events the hand-written peer loop processes.")
@click.option("--batched-events", default=5_000, show_default=True,
              help="Events the micro-batched peer loop processes.")
@click.option("--rss-catalog", default=100_000, show_default=True,
              help="Then the peak RSS of a worker over a catalog of this many items (0: skip).")
@click.option(
    "--cpu-account/--no-cpu-account", default=True, show_default=True,
    help="Sample the worker with py-spy during the drain: CPU ms per event by part "
    "(skipped with a note where py-spy is not installed).",
)
@out_option
def pipeline_cmd(
    encoder_dir: Path | None,
    n_items: int,
    n_users: int,
    drain_events: int,
    load_seconds: float,
    precision: Literal["fp32", "int8"],
    workers: int,
    peer_events: int,
    batched_events: int,
    rss_catalog: int,
    cpu_account: bool,
    out_dir: Path,
) -> None:
    """Throughput, freshness, cost per event and memory of the whole pipeline, vs three peers."""
    from llmrec_stream.bench.cpu_account import PYSPY_ENV, account_table, pyspy_binary

    pyspy = pyspy_binary() if cpu_account else None
    if cpu_account and pyspy is None:
        click.echo(f"no CPU accounting: py-spy not found on PATH or in ${PYSPY_ENV}", err=True)
    result = bench_pipeline(
        encoder_dir or default_encoder_dir(),
        n_items=n_items,
        n_users=n_users,
        drain_events=drain_events,
        load_s=load_seconds,
        precision=precision,
        workers=workers,
        peer_events=peer_events,
        batched_events=batched_events,
        rss_catalog=rss_catalog,
        pyspy=pyspy,
    )
    json_path, png_path = write_results(
        out_dir, f"pipeline-{workers}w", result, pipeline_chart(result)
    )
    click.echo(pipeline_table(result))
    if "cpu_account" in result:
        click.echo(account_table(result["cpu_account"]))
    load = os.getloadavg()
    click.echo(f"load average (1, 5, 15 min) at the end: {load[0]:.2f} / {load[1]:.2f} / "
               f"{load[2]:.2f} (the machine may be shared)")
    click.echo(f"wrote {json_path} and {png_path}")
