"""``llmrec-stream eval``: run the harness from the command line.

The torch models (SASRec, the project's model) live in ``trainer/`` and register themselves in
`llmrec_stream.datasets.specs`; they are loaded here only when a run names one, so the
harness core keeps no torch dependency and ``eval/`` never imports ``trainer/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from llmrec_stream.datasets.specs import EvalContext, ModelSpec, registered_specs
from llmrec_stream.eval.harness import blend_specs, peer_specs, run_eval

DEFAULT_DATA: tuple[str, ...] = ("../shared/data/scientific", "../shared/data/beauty/Beauty.txt")
DEFAULT_MODELS = "popularity,bpr,als,ease,item-knn,sasrec,ours-ce,ours-mse"


def model_specs(names: list[str]) -> list[ModelSpec]:
    specs = {s.name: s for s in peer_specs()}
    if any(n not in specs for n in names):
        specs.update(registered_specs())
        specs.update({s.name: s for s in blend_specs(specs)})
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise click.BadParameter(f"unknown models {unknown}; known: {sorted(specs)}")
    return [specs[n] for n in names]


@click.command("eval")
@click.option("--data", "data_paths", multiple=True, type=click.Path(path_type=Path),
              help="Atomic folder or one-line-per-user file; repeatable. [default: both "
                   "shared data sets]")
@click.option("--models", default=DEFAULT_MODELS, show_default=True,
              help="Comma-separated model names (also: ours-ce-no-cooc, sasrec-cooc, ours-ease).")
@click.option("--results", "results_dir", type=click.Path(path_type=Path),
              default=Path("results/eval"), show_default=True)
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(min=1),
              help="Seeds per model (0..N-1) for mean ± sd; seed 0 also selects the grid point.")
@click.option("--grid-points", default=0, show_default=True, type=click.IntRange(min=0),
              help="Cut every grid to its first N points (0: the whole declared grid). For "
                   "smoke runs; a headline table uses 0.")
@click.option("--max-minutes", default=0.0, show_default=True,
              help="Wall-clock cap of one neural run (0: none); results say if it bound.")
@click.option("--max-epochs", default=200, show_default=True)
@click.option("--patience", default=10, show_default=True,
              help="Epochs without a better validation NDCG@10 before a neural run stops.")
@click.option("--bootstrap", "resamples", default=10_000, show_default=True,
              help="Bootstrap resamples for the CIs of the NDCG@10 differences.")
@click.option("--reference", default=None,
              help="The model compared with every other. [default: the first of ours-ease, "
                   "ours-ce that ran, else the best on validation]")
@click.option("--encoder", "encoder_dir", type=click.Path(path_type=Path, exists=True,
              file_okay=False), help="Text encoder artifact for item text vectors.")
@click.option("--cache", "cache_dir", type=click.Path(path_type=Path),
              default=Path(".cache/eval"), show_default=True, help="Item text vector cache.")
@click.option("--threads", default=1, show_default=True, help="torch / BLAS threads.")
@click.option("--fit-store", type=click.Path(path_type=Path, file_okay=False),
              help="Keep every trained fit here; a rerun with the same code and settings loads "
                   "them instead of training again (resume after an interruption).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def eval_cmd(
    data_paths: tuple[Path, ...], models: str, results_dir: Path, seeds: int, grid_points: int,
    max_minutes: float, max_epochs: int, patience: int, resamples: int, reference: str | None,
    encoder_dir: Path | None, cache_dir: Path, threads: int, fit_store: Path | None,
    quiet: bool,
) -> None:
    """Evaluate the project's model and its peers on one full-ranking protocol."""
    from llmrec_stream.datasets.sequences import load_dataset
    from llmrec_stream.encoder.artifact import default_encoder_dir
    from llmrec_stream.eval.report import table

    logging.getLogger("llmrec_stream").setLevel(logging.INFO)
    paths = list(data_paths) or [Path(p) for p in DEFAULT_DATA]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.UsageError(f"data not found: {missing} (see ../shared/data/README.md)")
    encoder = encoder_dir or default_encoder_dir()
    ctx = EvalContext(
        encoder_dir=encoder if (encoder / "manifest.json").is_file() else None,
        cache_dir=cache_dir, max_minutes=max_minutes, max_epochs=max_epochs,
        patience=patience, threads=threads, progress=not quiet,
    )
    if ctx.encoder_dir is None:
        click.echo(f"no encoder artifact at {encoder}: models run without item text", err=True)
    names = [m.strip() for m in models.split(",") if m.strip()]
    if reference is not None and reference not in names:
        raise click.BadParameter(f"{reference} is not among --models {names}",
                                 param_hint="--reference")
    specs = model_specs(names)
    datasets = [load_dataset(p) for p in paths]
    results, comparisons = run_eval(
        datasets, specs, results_dir=results_dir, grid_points=grid_points or None,
        seeds=range(seeds), ctx=ctx, resamples=resamples, reference=reference,
        fit_store=fit_store,
    )
    click.echo(table(results, comparisons))
    click.echo(f"results in {results_dir}")


def _arrays(values: tuple[str, ...]) -> dict[Path, Path]:
    out = {}
    for value in values:
        folder, sep, npz = value.partition("=")
        if not sep or not folder or not npz:
            raise click.BadParameter(f"{value!r}: need RUN_DIR=NPZ_PATH", param_hint="--arrays")
        if not Path(npz).is_file():
            raise click.BadParameter(f"{npz}: no such file", param_hint="--arrays")
        out[Path(folder)] = Path(npz)
    return out


@click.command("eval-table")
@click.argument("run_dirs", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--results", "results_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for the merged results.json, table.md, user_ndcg.npz, ndcg.png.")
@click.option("--reference", default=None,
              help="The model compared with every other. [default: the first of ours-ease, "
                   "ours-ce present, else the best on validation]")
@click.option("--bootstrap", "resamples", default=10_000, show_default=True,
              type=click.IntRange(min=1), help="Bootstrap resamples for the CIs.")
@click.option("--arrays", "arrays", multiple=True, metavar="RUN_DIR=NPZ_PATH",
              help="Per-user arrays of RUN_DIR kept outside it (older runs); repeatable.")
@click.option("--prefer-later", is_flag=True,
              help="A (data set, model) in several folders: keep the later folder's row.")
def eval_table_cmd(
    run_dirs: tuple[Path, ...], results_dir: Path, reference: str | None, resamples: int,
    arrays: tuple[str, ...], prefer_later: bool,
) -> None:
    """Merge eval results folders into one table, as one run over all their rows would write it.

    Each RUN_DIR is an ``llmrec-stream eval`` results folder. The same (data set, model) in two
    folders, and per-user arrays of one data set that are not the same users in the same order,
    are refused.
    """
    from llmrec_stream.eval.merge import MergeError, merge_table

    try:
        text = merge_table(list(run_dirs), results_dir, arrays=_arrays(arrays),
                           prefer_later=prefer_later, reference=reference,
                           resamples=resamples)
    except MergeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(text)
    click.echo(f"results in {results_dir}")
