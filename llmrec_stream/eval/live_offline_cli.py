"""``llmrec-stream live-offline`` (also ``bench live-offline``): the live = offline check.

Only click here: the check's imports (the embedded stack, the ranker) happen when it runs, so
the benchmark group can register it without the evaluation extra.
"""

from __future__ import annotations

from pathlib import Path

import click

from llmrec_stream.results import DEFAULT_RESULTS_DIR


@click.command("live-offline")
@click.option("--model", "model_dir", required=True,
              type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Ranking model artifact (written by `llmrec-stream train`).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, exists=True),
              default=Path("../shared/data/scientific"), show_default=True,
              help="Atomic data set whose validation histories are replayed.")
@click.option("--users", type=int, default=None, help="A random sample (default: every user).")
@click.option("--encoder-dir", type=click.Path(path_type=Path), default=None,
              help="Exported encoder artifact (default: the cache dir).")
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default="int8",
              show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=DEFAULT_RESULTS_DIR,
              show_default=True, help="Results folder (JSON).")
def live_offline_cmd(
    model_dir: Path, data_dir: Path, users: int | None, encoder_dir: Path | None,
    precision: str, out_dir: Path,
) -> None:
    """Top-10 published by the live pipeline vs the offline evaluator's, user by user."""
    from llmrec_stream.encoder.artifact import default_encoder_dir
    from llmrec_stream.eval.live_offline import live_vs_offline
    from llmrec_stream.results import format_table, write_results

    result = live_vs_offline(model_dir, data_dir, encoder_dir or default_encoder_dir(),
                             users=users, precision=precision)
    json_path, _ = write_results(out_dir, "live_offline", result)
    k = result["k"]
    click.echo(format_table(
        ["users", "model", "equal (exact)", "equal (within ties)", f"NDCG@{k} live",
         f"NDCG@{k} offline", "replay s"],
        [[result["users"], result["model"], result["equal_exact"], result["equal_within_ties"],
          result[f"ndcg@{k}_live"], result[f"ndcg@{k}_offline"], result["live_s"]]],
    ))
    click.echo(f"results in {json_path}")
