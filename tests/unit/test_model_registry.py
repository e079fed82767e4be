"""What a worker accepts as a model, and how the served rankers treat warm and cold users."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="building artifacts needs the `train` extra")
pytest.importorskip("onnxruntime", reason="serving needs onnxruntime")

from llmrec_stream.profiles.store import ProfileState  # noqa: E402
from llmrec_stream.ranking.fused import FusedProfileRanker  # noqa: E402
from llmrec_stream.ranking.model import ModelArtifactError, SequenceRanker, sha256_file  # noqa: E402
from llmrec_stream.ranking.registry import ModelRecord, load_ranker  # noqa: E402
from llmrec_stream.retrieval.exact import ExactIndex  # noqa: E402
from tests.model_artifacts import ITEMS, TEXT_DIM, toy_artifact  # noqa: E402


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_artifact(tmp_path_factory.mktemp("models") / "toy-1")


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _rehash(path: Path) -> None:
    """What a careless (or malicious) hand does: edit files and fix up the manifest."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"] = {n: sha256_file(path / n) for n in manifest["files"]}
    (path / "manifest.json").write_text(json.dumps(manifest))


def _state(user: str, recent: tuple[str, ...] = (), bought: frozenset[str] = frozenset(),
           behaviour: np.ndarray | None = None) -> ProfileState:
    zeros = np.zeros(TEXT_DIM, np.float32)
    return ProfileState(user, (True,), zeros, zeros if behaviour is None else behaviour,
                        bought, recent)


def test_record_round_trips_and_carries_the_validation_metric(artifact: Path) -> None:
    record = ModelRecord.for_artifact(artifact)
    assert ModelRecord.parse(record.dumps()) == record
    assert record.score == 0.5 and record.version == "toy-1"
    assert record.sha256 == sha256_file(artifact / "manifest.json")
    nan_metric = record.dumps().replace(b'"metrics": {', b'"metrics": {"x": NaN, ')
    for junk in (b'{"version": "x"}', nan_metric):
        with pytest.raises(ModelArtifactError) as bad:
            ModelRecord.parse(junk)
        assert bad.value.reason == "invalid_record"


def test_a_checked_artifact_serves(artifact: Path) -> None:
    ranker = load_ranker(ModelRecord.for_artifact(artifact), TEXT_DIM, FusedProfileRanker())
    assert isinstance(ranker, SequenceRanker) and ranker.version == "toy-1"


def test_wrong_checksum_in_the_record_is_refused(artifact: Path) -> None:
    record = ModelRecord.for_artifact(artifact)
    forged = ModelRecord(**{**record.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelArtifactError, match="sha256") as refused:
        load_ranker(forged, TEXT_DIM, FusedProfileRanker())
    assert refused.value.reason == "checksum_mismatch"


def test_truncated_file_is_refused(artifact: Path, tmp_path: Path) -> None:
    copy = _copy(artifact, tmp_path / "truncated")
    record = ModelRecord.for_artifact(copy)
    onnx = copy / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 2])
    with pytest.raises(ModelArtifactError, match=r"checksum mismatch for model\.onnx") as refused:
        load_ranker(record, TEXT_DIM, FusedProfileRanker())
    assert refused.value.reason == "checksum_mismatch"
    _rehash(copy)  # even with matching checksums, half a graph does not load
    with pytest.raises(ModelArtifactError, match="cannot load"):
        load_ranker(ModelRecord.for_artifact(copy), TEXT_DIM, FusedProfileRanker())


def test_incompatible_signature_is_refused(artifact: Path, tmp_path: Path) -> None:
    copy = _copy(artifact, tmp_path / "incompatible")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["input_names"] = ["items"]  # the graph still wants item_text
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match="graph inputs") as refused:
        load_ranker(ModelRecord.for_artifact(copy), TEXT_DIM, FusedProfileRanker())
    assert refused.value.reason == "incompatible"

    np.save(copy / "items.npy", np.zeros((len(ITEMS) + 1, 5), np.float32))  # wrong item tower
    manifest["input_names"] = ["items", "item_text"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    _rehash(copy)
    with pytest.raises(ModelArtifactError, match="item tower"):
        load_ranker(ModelRecord.for_artifact(copy), TEXT_DIM, FusedProfileRanker())


def test_record_and_artifact_versions_must_agree(artifact: Path) -> None:
    record = ModelRecord.for_artifact(artifact)
    with pytest.raises(ModelArtifactError, match="record says"):
        load_ranker(ModelRecord(**{**record.__dict__, "version": "other"}), TEXT_DIM,
                    FusedProfileRanker())


def test_sequence_ranker_serves_warm_users_and_falls_back_for_cold_ones(artifact: Path) -> None:
    fallback = FusedProfileRanker()
    ranker = load_ranker(ModelRecord.for_artifact(artifact), TEXT_DIM, fallback)
    index = ExactIndex(TEXT_DIM)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(ITEMS), TEXT_DIM)).astype(np.float32)
    index.upsert(ITEMS, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    states = [
        _state("warm", recent=("i3", "i2", "i1"), bought=frozenset({"i7"})),
        _state("cold", behaviour=vectors[5] / np.linalg.norm(vectors[5])),
        _state("nothing"),
        _state("unknown-items", recent=("new-item",)),
    ]
    warm, cold, nothing, unknown = ranker.rank(states, 5, index)
    assert warm is not None and warm[0] == "toy-1"
    assert not {"i1", "i2", "i3", "i7"} & {item for item, _ in warm[1]}  # history excluded
    model = ranker.model  # type: ignore[attr-defined]
    offline = model.top_k(model.queries_from_recent([["i3", "i2", "i1"]]), 5,
                          exclude=[{"i1", "i2", "i3", "i7"}])[0]
    assert warm[1] == offline
    assert cold is not None and cold[0] == fallback.version and cold[1][0][0] == "i5"
    assert nothing is None and unknown is None  # no signal: nothing is published
