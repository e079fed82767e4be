"""The encoder artifact manifest: written, verified, and loud about missing or altered files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from llmrec_stream.encoder import artifact
from llmrec_stream.encoder.artifact import MANIFEST_NAME, ArtifactError, Manifest

FILES = {
    "model.onnx": b"\x08\x07fake-onnx-graph",
    "tokenizer.json": b'{"model": {"type": "WordPiece"}}',
    "vocab.txt": b"[PAD]\n[UNK]\nhello\n",
}


def _write(folder: Path) -> Manifest:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    return artifact.write_manifest(
        folder,
        source="dummy/model",
        dim=8,
        max_length=32,
        opset=17,
        max_abs_diff_vs_torch=1.5e-7,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
    )


def test_write_then_verify_round_trip(tmp_path: Path) -> None:
    written = _write(tmp_path)
    verified = artifact.verify_artifact(tmp_path)
    assert verified == written
    assert verified.files == {n: hashlib.sha256(d).hexdigest() for n, d in FILES.items()}
    assert (verified.source, verified.dim, verified.max_length, verified.opset) == (
        "dummy/model",
        8,
        32,
        17,
    )
    assert verified.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert verified.created_at
    assert not list(tmp_path.glob(".*.tmp"))


def test_manifest_json_has_the_documented_keys(tmp_path: Path) -> None:
    _write(tmp_path)
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert raw["format_version"] == 1
    documented = {"format_version", "source", "dim", "max_length", "opset", "files"}
    documented |= {"max_abs_diff_vs_torch", "created_at", "input_names"}
    assert documented <= raw.keys()
    assert MANIFEST_NAME not in raw["files"]


def test_old_minimal_v1_manifest_still_loads(tmp_path: Path) -> None:
    """Frozen contract: a v1 manifest without the optional keys, plus an unknown future key."""
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    raw = {
        "format_version": 1,
        "source": "old/model",
        "dim": 384,
        "max_length": 256,
        "opset": 17,
        "files": {n: hashlib.sha256(d).hexdigest() for n, d in FILES.items()},
        "max_abs_diff_vs_torch": 2e-7,
        "created_at": "2024-01-01T00:00:00+00:00",
        "added_later": {"ignored": True},
    }
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw))
    manifest = artifact.verify_artifact(tmp_path)
    assert manifest.input_names == ["input_ids", "attention_mask"]
    assert manifest.output_name == "embeddings"
    assert manifest.pad_id == 0


def test_tampered_file_is_named(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "tokenizer.json").write_bytes(b'{"model": {"type": "BPE"}}')
    with pytest.raises(ArtifactError, match=r"tokenizer\.json.*sha256"):
        artifact.verify_artifact(tmp_path)


def test_same_size_single_byte_change_is_detected(tmp_path: Path) -> None:
    _write(tmp_path)
    path = tmp_path / "model.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.onnx"):
        artifact.verify_artifact(tmp_path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "vocab.txt").unlink()
    with pytest.raises(ArtifactError, match=r"missing: vocab\.txt"):
        artifact.verify_artifact(tmp_path)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="manifest.json missing"):
        artifact.read_manifest(tmp_path)


@pytest.mark.parametrize("version", [0, 2, None])
def test_unknown_format_version_rejected(tmp_path: Path, version: int | None) -> None:
    _write(tmp_path)
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text())
    raw["format_version"] = version
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="format_version"):
        artifact.read_manifest(tmp_path)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"format_version": 1}'])
def test_malformed_manifest_rejected(tmp_path: Path, text: str) -> None:
    (tmp_path / MANIFEST_NAME).write_text(text)
    with pytest.raises(ArtifactError):
        artifact.read_manifest(tmp_path)


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/passwd", "a/../../b"])
def test_manifest_cannot_point_outside_the_artifact(tmp_path: Path, name: str) -> None:
    _write(tmp_path)
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text())
    raw["files"][name] = "0" * 64
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="unsafe file name"):
        artifact.verify_artifact(tmp_path)


def test_manifest_must_list_model_and_tokenizer(tmp_path: Path) -> None:
    _write(tmp_path)
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text())
    del raw["files"]["model.onnx"]
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match=r"does not list model\.onnx"):
        artifact.verify_artifact(tmp_path)


def test_write_refuses_an_artifact_without_a_model(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ArtifactError, match=r"lacks model\.onnx"):
        artifact.write_manifest(tmp_path, source="x", dim=1, max_length=1, opset=17,
                                max_abs_diff_vs_torch=0)


def test_write_hashes_only_the_named_files(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "notes.txt").write_text("scratch")
    manifest = artifact.write_manifest(
        tmp_path,
        source="x",
        dim=8,
        max_length=32,
        opset=17,
        max_abs_diff_vs_torch=0.0,
        files=["model.onnx", "tokenizer.json"],
    )
    assert sorted(manifest.files) == ["model.onnx", "tokenizer.json"]


def test_artifact_error_is_a_value_error() -> None:
    assert issubclass(ArtifactError, ValueError)


def test_default_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMREC_ENCODER_DIR", str(tmp_path / "enc"))
    assert artifact.default_encoder_dir() == tmp_path / "enc"


def test_default_dir_under_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLMREC_ENCODER_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".cache" / "llmrec-stream" / "encoder" / "all-MiniLM-L6-v2"
    assert artifact.default_encoder_dir() == expected
