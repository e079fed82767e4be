"""The trainer publishes, the worker hot-swaps, under a running replay: nothing lost or doubled.

During a paced replay the trainer (the real ``llmrec-stream train`` command) reads the event
log from Kafka, trains, exports and publishes on ``llmrec.models``; the worker checks the
artifact, promotes it and swaps it in between micro-batches. Then come models a worker must
refuse (a forged checksum, a truncated graph, an incompatible signature, a worse model), and
a second trained model published with ``--force``. The verifier compares Redis with the log
as in every fault test, and the recommendations must carry the version that produced them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrec_stream.cli import main
from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events import topics
from llmrec_stream.ranking.model import sha256_file
from llmrec_stream.ranking.registry import ModelRecord
from llmrec_stream.replay import producer
from tests.fault.scenario import run_scenario
from tests.integration.live import LiveWorker

pytest.importorskip("torch", reason="the trainer needs the `train` extra")

REFUSALS = {"checksum_mismatch": 2, "incompatible": 1, "not_better": 1}


def _train(stack: DevStack, encoder_dir: Path, out: Path, *extra: str) -> ModelRecord:
    result = CliRunner().invoke(
        main,
        ["train", "--out", str(out), "--budget", "1", "--max-epochs", "3", "--max-minutes",
         "0.5", "--encoder", str(encoder_dir), "--quiet", *extra],
        env={**stack.env(), "LLMREC_KAFKA_BOOTSTRAP": stack.kafka_bootstrap},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    print(result.output.strip())
    newest = max(out.iterdir(), key=lambda p: p.stat().st_mtime if p.is_dir() else 0)
    return ModelRecord.for_artifact(newest)


def _variant(src: Path, dst: Path, version: str, **manifest_changes: object) -> Path:
    """A copy of an artifact with its manifest edited and its file checksums kept consistent."""
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest.update(version=version, **manifest_changes)
    manifest["files"] = {n: sha256_file(dst / n) for n in manifest["files"]}
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def _wait_version(worker: LiveWorker, watcher: OutputWatcher, version: str) -> float:
    since = time.time()
    worker.wait(
        lambda: any(r["model_version"] == version for r in watcher.snapshot().all_records[-500:]),
        90, f"recommendations from {version}",
    )
    return time.time() - since


def test_trainer_publishes_and_worker_hot_swaps_under_replay(
    fault_stack: DevStack,
    encoder_dir: Path,
    text_encoder: TextEncoder,
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    seen: dict[str, object] = {}

    def swaps(crew: list[LiveWorker], watcher: OutputWatcher) -> None:
        worker = crew[0]
        time.sleep(8.0)  # let the log fill a little: the trainer reads it from offset 0
        first = _train(fault_stack, encoder_dir, models)
        seen["first"] = first.version
        seen["first_swap_s"] = _wait_version(worker, watcher, first.version)

        # models the worker must refuse while `first` keeps serving
        src = Path(first.location)
        forged = ModelRecord(**{**first.__dict__, "version": "forged", "sha256": "f" * 64})
        truncated_dir = _variant(src, tmp_path / "truncated", "truncated")
        truncated = ModelRecord.for_artifact(truncated_dir)
        (truncated_dir / "model.onnx").write_bytes(b"\x08\x07")  # cut after the record
        incompatible = ModelRecord.for_artifact(
            _variant(src, tmp_path / "incompatible", "incompatible", input_names=["profile"])
        )
        worse_metrics = {**json.loads((src / "manifest.json").read_text())["metrics"]}
        worse_metrics["valid"] = {**worse_metrics["valid"], "ndcg@10": -1.0}
        worse = ModelRecord.for_artifact(
            _variant(src, tmp_path / "worse", "worse", metrics=worse_metrics)
        )
        prod = producer(fault_stack.kafka_bootstrap)
        for record in (forged, truncated, incompatible, worse):
            prod.produce(topics.MODELS, record.dumps(), b"model")
        assert prod.flush(10) == 0

        def refused() -> bool:
            m = worker.metrics()
            return all(
                m.get(f'llmrec_model_decisions_total{{decision="{k}"}}', 0) >= n
                for k, n in REFUSALS.items()
            )

        worker.wait(refused, 30, "the refusals")
        second = _train(fault_stack, encoder_dir, models, "--force", "--seed", "1")
        seen["second"] = second.version
        seen["second_swap_s"] = _wait_version(worker, watcher, second.version)
        seen["records"] = watcher  # read again after the replay is over

    out = run_scenario(
        fault_stack, encoder_dir, tmp_path, text_encoder, swaps,
        n_events=6_000, rate=150.0, seed=21, app_id="fault-swap", n_users=200,
    )
    first, second = str(seen["first"]), str(seen["second"])
    records = seen["records"].snapshot().all_records  # type: ignore[attr-defined]
    versions = [r["model_version"] for r in records]
    print(f"\nswap to {first} seen after {seen['first_swap_s']:.1f}s, to {second} after "
          f"{seen['second_swap_s']:.1f}s; records by version: "
          f"{ {v: versions.count(v) for v in dict.fromkeys(versions)} }; "
          f"events {out.delivered}, lost {out.report.lost}, duplicated {out.report.duplicated}")

    assert out.report.ok, out.report.mismatches[:10]
    assert out.report.lost == 0 and out.report.duplicated == 0
    assert out.missing_recommendations == []
    assert {first, second} <= set(versions)
    assert not {"forged", "truncated", "incompatible", "worse"} & set(versions)
    rank = {first: 1, second: 2}
    for user in {r["user_id"] for r in records}:  # a user never goes back to an older model
        steps = [rank[r["model_version"]] for r in records
                 if r["user_id"] == user and r["model_version"] in rank]
        assert steps == sorted(steps), (user, steps)
    dead = seen["records"].snapshot().dead_letters  # type: ignore[attr-defined]
    assert dead["model_checksum_mismatch"] == 2 and dead["model_incompatible"] == 1
