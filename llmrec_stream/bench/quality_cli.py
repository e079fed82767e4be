"""``llmrec-stream bench quality``: NDCG@10 per encoder precision / backend (`bench.quality`)."""

from __future__ import annotations

from pathlib import Path

import click

from llmrec_stream.bench.options import encoder_dir_option, out_option
from llmrec_stream.bench.report import environment, write_results


def _configs(
    _ctx: click.Context, _param: click.Parameter, value: str
) -> list[tuple[str, str, str]]:
    from llmrec_stream.bench.quality import CONFIGS

    known = {name: (name, precision, backend) for name, precision, backend in CONFIGS}
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise click.BadParameter(f"unknown configs {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]


@click.command("quality")
@encoder_dir_option
@click.option("--data", "data_path", type=click.Path(path_type=Path),
              default=Path("../shared/data/scientific"), show_default=True,
              help="Leave-one-out data set with item text (atomic folder).")
@click.option("--configs", default="onnx-fp32,onnx-int8,openvino-bf16", show_default=True,
              callback=_configs, help="Comma-separated; the first is the reference. Known: "
              "onnx-fp32, onnx-int8, openvino-bf16 (extra openvino), onnx-q4 (a q4 artifact).")
@click.option("--users", default=0, show_default=True, help="First N users only (0: all).")
@click.option("--threads", default=2, show_default=True)
@click.option("--bootstrap", "resamples", default=10_000, show_default=True)
@out_option
def quality_cmd(
    encoder_dir: Path | None, data_path: Path, configs: list[tuple[str, str, str]], users: int,
    threads: int, resamples: int, out_dir: Path,
) -> None:
    """Recommendation quality (NDCG@10, paired bootstrap CI) of each encoder configuration
    against the first, on a content recommender over the item-text vectors."""
    from llmrec_stream.bench.quality import run_quality, table
    from llmrec_stream.encoder.artifact import default_encoder_dir

    if not data_path.exists():
        raise click.UsageError(f"data not found: {data_path} (see ../shared/data/README.md)")
    result = run_quality(data_path, encoder_dir or default_encoder_dir(), configs,
                         threads=threads, users=users, resamples=resamples, echo=click.echo)
    json_path, _png = write_results(out_dir, "quality", result)
    click.echo(table(result))
    env = environment()
    loads = result["load_average"]
    click.echo(f"cpu: {env['cpu']} ({env['cpus_usable']} usable; {' '.join(result['cpu_flags'])});"
               f" {result['users']} users x {result['items']} items of {result['dataset']}; load "
               f"average before {' / '.join(f'{x:.2f}' for x in loads['before'])}, after "
               f"{' / '.join(f'{x:.2f}' for x in loads['after'])}")
    click.echo(f"wrote {json_path}")
