"""``llmrec-stream train``: train on the event log or a data set, export, publish, repeat."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from llmrec_stream.config import Settings
from llmrec_stream.ranking.registry import ModelRecord

if TYPE_CHECKING:
    from llmrec_stream.datasets.sequences import SeqDataset

log = logging.getLogger(__name__)


def publish_model(settings: Settings, artifact_dir: Path, *, force: bool = False) -> ModelRecord:
    """Announce an artifact on ``llmrec.models``; the workers check it and decide promotion."""
    from llmrec_stream.events import topics
    from llmrec_stream.replay import producer
    from llmrec_stream.security import confluent_config

    if not settings.kafka.bootstrap:
        raise click.ClickException("set LLMREC_KAFKA_BOOTSTRAP to publish")
    record = ModelRecord.for_artifact(artifact_dir, force=force)
    prod = producer(settings.kafka.bootstrap, **confluent_config(settings.kafka))
    # one key: every model record lands on one partition, so workers see them in order
    prod.produce(topics.MODELS, record.dumps(), b"model")
    if prod.flush(30):
        raise click.ClickException("the model record was not delivered within 30 s")
    return record


@click.command("train")
@click.option("--data", "data_path", type=click.Path(path_type=Path, exists=True),
              help="Atomic folder or one-line-per-user file. [default: the Kafka event log "
                   "at LLMREC_KAFKA_BOOTSTRAP, from the earliest offsets]")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("models"),
              show_default=True, help="Artifacts go to OUT/<version>/; workers must see it.")
@click.option("--loss", type=click.Choice(["ce", "mse"]), default="ce", show_default=True,
              help="ce: full-softmax two-tower; mse: the fused-profile map ‖f(u) − v‖².")
@click.option("--budget", default=3, show_default=True, help="Grid points tried.")
@click.option("--max-minutes", default=5.0, show_default=True, help="Bound of one run.")
@click.option("--max-epochs", default=200, show_default=True)
@click.option("--threads", default=1, show_default=True, help="torch / BLAS threads.")
@click.option("--seed", default=0, show_default=True)
@click.option("--encoder", "encoder_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Text encoder artifact for item text vectors. [default: the exported one]")
@click.option("--publish/--no-publish", default=True, show_default=True,
              help="Publish the artifact on llmrec.models.")
@click.option("--force", is_flag=True, help="Promote even if it evaluates below the live model.")
@click.option("--every", type=float, default=0.0,
              help="Retrain every this many minutes (0: once).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_cmd(
    data_path: Path | None, out_root: Path, loss: str, budget: int, max_minutes: float,
    max_epochs: int, threads: int, seed: int, encoder_dir: Path | None, publish: bool,
    force: bool, every: float, quiet: bool,
) -> None:
    """Train the ranking model, export it to ONNX with a sha256 manifest, and publish it."""
    from llmrec_stream.encoder.artifact import default_encoder_dir
    from llmrec_stream.trainer.train import train

    logging.getLogger("llmrec_stream").setLevel(logging.INFO)
    settings = Settings()
    encoder = encoder_dir or (Path(settings.encoder.dir) if settings.encoder.dir
                              else default_encoder_dir())
    while True:
        data = _load(settings, data_path)
        if data.n_users == 0:
            message = "no user has 3 or more item events yet: nothing to train on"
            if every <= 0:
                raise click.ClickException(message)
            click.echo(message, err=True)
            time.sleep(every * 60)
            continue
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        version = f"{data.name.lower()}-{loss}-{stamp}"
        result = train(
            data, out_root / version, loss=loss, budget=budget, max_minutes=max_minutes,
            max_epochs=max_epochs, threads=threads, seed=seed, progress=not quiet,
            encoder_dir=encoder if (encoder / "manifest.json").is_file() else None,
            cache_dir=out_root / ".cache", version=version,
        )
        valid = result.metrics["valid"]
        click.echo(f"{version}: valid NDCG@10 {valid['ndcg@10']:.4f} "
                   f"R@10 {valid['recall@10']:.4f} -> {result.path}")
        if publish:
            record = publish_model(settings, result.path, force=force)
            click.echo(f"published {record.version} (sha256 {record.sha256[:12]}) on "
                       "llmrec.models")
        if every <= 0:
            return
        time.sleep(every * 60)


def _load(settings: Settings, data_path: Path | None) -> SeqDataset:
    from llmrec_stream.datasets.sequences import load_dataset

    if data_path is not None:
        return load_dataset(data_path)
    if not settings.kafka.bootstrap:
        raise click.UsageError("give --data or set LLMREC_KAFKA_BOOTSTRAP")
    from llmrec_stream.security import confluent_config
    from llmrec_stream.trainer.event_log import dataset_from_kafka

    return dataset_from_kafka(settings.kafka.bootstrap, conf=confluent_config(settings.kafka),
                              collapse_window_ms=settings.trainer.collapse_window_ms)
