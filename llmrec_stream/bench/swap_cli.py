"""``llmrec-stream bench swap``: options, then JSON + PNG + table via bench.report."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from llmrec_stream.bench.options import encoder_dir_option, out_option, precision_option
from llmrec_stream.bench.report import environment, write_results
from llmrec_stream.encoder.artifact import default_encoder_dir


@click.command("swap")
@encoder_dir_option
@click.option("--items", "n_items", default=2_000, show_default=True)
@click.option("--users", "n_users", default=1_000, show_default=True)
@click.option(
    "--rate", default=100.0, show_default=True,
    help="Steady load, events/s (about half the worker's max on 2 cores: see bench pipeline).",
)
@click.option("--load-seconds", default=45.0, show_default=True)
@click.option("--first-at", default=12.0, show_default=True, help="Seconds into the load.")
@click.option("--second-at", default=28.0, show_default=True, help="Seconds into the load.")
@precision_option
@out_option
def swap_cmd(
    encoder_dir: Path | None,
    n_items: int,
    n_users: int,
    rate: float,
    load_seconds: float,
    first_at: float,
    second_at: float,
    precision: Literal["fp32", "int8"],
    out_dir: Path,
) -> None:
    """Event-loop stall and freshness while a worker hot-swaps two models under load.

    Needs torch (the ``train`` extra): it exports the two ranking models it publishes."""
    import importlib.util

    from llmrec_stream.bench.swap import bench_swap, swap_chart, swap_table

    if importlib.util.find_spec("torch") is None:  # before minutes of stack and catalog
        raise click.ClickException("bench swap exports models with torch: install the train extra")
    if not 0 < first_at < second_at < load_seconds:
        raise click.BadParameter("need 0 < --first-at < --second-at < --load-seconds")
    result = bench_swap(
        encoder_dir or default_encoder_dir(),
        n_items=n_items,
        n_users=n_users,
        rate=rate,
        load_s=load_seconds,
        first_at_s=first_at,
        second_at_s=second_at,
        precision=precision,
    )
    json_path, png_path = write_results(out_dir, "swap", result, swap_chart(result))
    click.echo(swap_table(result))
    env = environment()
    click.echo(f"cpu: {env['cpu']} ({env['cpus_usable']} usable); load average (1, 5, 15 min) "
               f"at the end: {' / '.join(f'{x:.2f}' for x in env['load_average'] or [])}")
    click.echo(f"wrote {json_path} and {png_path}")
