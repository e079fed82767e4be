"""``llmrec-stream bench``: the benchmark commands (also ``python -m llmrec_stream.bench``).

Each command writes ``<out>/<name>.json`` and ``<out>/<name>.png`` and prints a short table.
Heavy imports (torch, sentence-transformers, faiss, matplotlib) happen inside the commands,
so registering the group costs the CLI nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from llmrec_stream.bench.options import out_option


def _ints(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v.replace("_", "")) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from exc
    if not out or min(out) < 1:
        raise click.BadParameter(f"expected positive integers, got {value!r}")
    return out




def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2


@click.group("bench")
def bench_group() -> None:
    """Benchmarks: figures as JSON + PNG under --out, and a table on stdout."""


def _peer_names(value: str) -> tuple[str, ...]:
    from llmrec_stream.bench.encoder_peers import PEER_NAMES

    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if names in (("all",), ()):
        return PEER_NAMES if names else ()
    if names == ("none",):
        return ()
    unknown = sorted(set(names) - set(PEER_NAMES))
    if unknown:
        raise click.BadParameter(f"unknown peers {unknown}; known: {', '.join(PEER_NAMES)}")
    return names


@bench_group.command("encoder")
@click.option(
    "--artifact",
    "artifact_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Encoder artifact (default: the worker's, $LLMREC_ENCODER_DIR).",
)
@click.option(
    "--texts",
    "n_texts",
    default=2000,
    show_default=True,
    help="How many texts (shared: half reviews, half item texts).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("../shared/data"),
    show_default=True,
    help="The shared data folder.",
)
@click.option(
    "--text-set",
    type=click.Choice(["shared", "zh-en"]),
    default="shared",
    show_default=True,
    help="shared: real texts from --data; zh-en: half Chinese, half English, written by the "
    "synthetic generator (for the multilingual artifact; needs no data).",
)
@click.option("--batch-sizes", default="1,8,32,128", show_default=True, callback=_ints)
@click.option(
    "--threads", type=int, default=None, help="Threads for every contender (default: usable cores)."
)
@click.option("--repeats", default=3, show_default=True, help="Timed passes per batch size.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--precisions",
    default="fp32,int8",
    show_default=True,
    help="Artifact variants to run on CPU (the CUDA run uses fp32 and fp16).",
)
@click.option("--no-peer", is_flag=True, help="Skip sentence-transformers (then no speed-up).")
@click.option(
    "--peers",
    default="all",
    show_default=True,
    help="More peers, exported locally from the same weights (comma-separated: st-onnx-fp32, "
    "st-onnx-int8, st-openvino, st-openvino-fp32, fastembed; 'all' or 'none'); one whose "
    "package is missing is skipped with its reason.",
)
@click.option(
    "--spinning-variants", is_flag=True,
    help="Also run each precision with one spinning run (not what the worker deploys).",
)
@click.option(
    "--profile/--no-profile",
    default=True,
    show_default=True,
    help="Also record onnxruntime's per-operator profile at batch 32.",
)
@out_option
def encoder_cmd(
    artifact_dir: Path | None,
    n_texts: int,
    data_dir: Path,
    text_set: str,
    batch_sizes: tuple[int, ...],
    threads: int | None,
    repeats: int,
    device: str,
    precisions: str,
    no_peer: bool,
    peers: str,
    spinning_variants: bool,
    profile: bool,
    out_dir: Path,
) -> None:
    """Encoder throughput and fidelity: ONNX (CPU fp32/int8, CUDA fp32/fp16) vs the peer."""
    from llmrec_stream.bench.run import run_encoder_bench
    from llmrec_stream.bench.texts import BenchDataError

    try:
        run_encoder_bench(
            artifact_dir=artifact_dir,
            n_texts=n_texts,
            data_dir=data_dir,
            batch_sizes=batch_sizes,
            threads=threads or _default_threads(),
            repeats=repeats,
            device=device,
            precisions=tuple(p.strip() for p in precisions.split(",") if p.strip()),
            peer=not no_peer,
            profile=profile,
            out_dir=out_dir,
            echo=click.echo,
            text_set=text_set,
            peers=_peer_names(peers),
            spinning_variants=spinning_variants,
        )
    except BenchDataError as exc:
        raise click.ClickException(str(exc)) from exc


@bench_group.command("retrieval")
@click.option(
    "--sizes",
    default="10000,100000,1000000",
    show_default=True,
    callback=_ints,
    help="Catalog sizes (items).",
)
@click.option("--queries", default=200, show_default=True, help="Users timed per size.")
@click.option("--k", default=100, show_default=True)
@click.option(
    "--ef",
    "expansions",
    default="128,256,512",
    show_default=True,
    callback=_ints,
    help="ANN search expansions to measure.",
)
@click.option("--connectivity", type=int, default=None, help="HNSW M (default: AnnIndex's).")
@click.option(
    "--expansion-add", type=int, default=None, help="HNSW efConstruction (default: AnnIndex's)."
)
@click.option("--threads", type=int, default=None, help="Build threads (default: all cores).")
@click.option(
    "--search-threads",
    default=1,
    show_default=True,
    help="Cores per single-user search, both indexes.",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--churn",
    default="10,25",
    show_default=True,
    callback=_ints,
    help="Then replace these percentages of the catalog (tombstones in the graph), cumulatively.",
)
@click.option(
    "--seen", default=50, show_default=True, help="Items excluded per user in the '+ seen' states."
)
@click.option("--no-churn", is_flag=True, help="Fresh graph only (the figures before issue 17).")
@out_option
def retrieval_cmd(
    sizes: tuple[int, ...],
    queries: int,
    k: int,
    expansions: tuple[int, ...],
    connectivity: int | None,
    expansion_add: int | None,
    threads: int | None,
    search_threads: int,
    seed: int,
    churn: tuple[int, ...],
    seen: int,
    no_churn: bool,
    out_dir: Path,
) -> None:
    """Exact top-k vs the HNSW index on clustered 384-d catalogs: latency, recall, build, memory."""
    if not no_churn and max(churn) >= 100:
        raise click.BadParameter(f"--churn: percentages below 100, got {max(churn)}")
    from llmrec_stream.bench.report import write_results
    from llmrec_stream.bench.retrieval import bench_retrieval
    from llmrec_stream.bench.retrieval_report import (
        retrieval_chart,
        retrieval_payload,
        retrieval_table,
    )

    results = bench_retrieval(
        sizes,
        queries=queries,
        k=k,
        expansions=expansions,
        connectivity=connectivity,
        expansion_add=expansion_add,
        threads=threads,
        search_threads=search_threads,
        seed=seed,
        churn=() if no_churn else tuple(c / 100 for c in churn),
        seen=0 if no_churn else seen,
        log=lambda msg: click.echo(msg, err=True),
    )
    payload = retrieval_payload(results)
    json_path, png_path = write_results(out_dir, "retrieval", payload, retrieval_chart(results))
    click.echo(retrieval_table(results))
    target = payload["target"]
    if "met" in target:
        click.echo(
            f"target (1M: p99 <= {target['p99_ms_max']} ms at recall@{k} >= "
            f"{target['recall_min']}): {'met' if target['met'] else 'MISSED'}"
        )
    click.echo(f"wrote {json_path} and {png_path}")


# The live = offline check belongs to evaluation (`llmrec_stream.eval.live_offline`); it stays
# reachable as `bench live-offline` too.
from llmrec_stream.eval.live_offline_cli import live_offline_cmd  # noqa: E402

bench_group.add_command(live_offline_cmd)


# The pipeline benchmark has its own module (it is long); it joins the group here so that
# both `llmrec-stream bench` and `python -m llmrec_stream.bench` have it.
from llmrec_stream.bench.pipeline_cli import pipeline_cmd  # noqa: E402

bench_group.add_command(pipeline_cmd)

# The hot-swap benchmark (issue 17): a worker's event-loop stall while it swaps models.
from llmrec_stream.bench.swap_cli import swap_cmd  # noqa: E402

bench_group.add_command(swap_cmd)

# Recommendation quality per encoder precision (issue 17): NDCG, not cosine.
from llmrec_stream.bench.quality_cli import quality_cmd  # noqa: E402

bench_group.add_command(quality_cmd)
