"""onnxruntime sessions for the encoder: which providers, how many threads and runs, and
opening a session that checks the providers that really took.

Apart from `runtime` (the encoder that tokenizes and runs) because the benchmarks and the
export's checks open sessions of their own with the same tuned options.
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import onnxruntime as ort

from llmrec_stream.cpu import usable_cores

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: Load-time fusions a CPU session must not apply: onnxruntime's CPU SkipLayerNormalization
#: kernel is ~4x slower than the Add + LayerNormalization it replaces (see `quantize.py`).
CPU_DISABLED_FUSIONS: list[str] = ["SkipLayerNormFusion"]
#: Runs at once on a CPU when the worker leaves it to auto (`resolve_parallel_runs`). Two
#: one-thread runs instead of one two-thread run, on 2 cores: encoder alone +3-13 % (three
#: interleaved rounds), next to a half-busy process +18 %, and the worker's drain +16-24 %
#: (an A/B on one stack): an intra-op pool stalls at every kernel when one of its threads
#: loses its core to the event loop, the broker or Redis; independent runs only slow down.
AUTO_CPU_RUNS = 2
#: Builds of onnxruntime that install into the same `onnxruntime/` folder.
_ORT_DISTRIBUTIONS: frozenset[str] = frozenset(
    {"onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"}
)


class EncoderRuntimeError(RuntimeError):
    """The encoder cannot run as asked (missing provider, conflicting installs, bad graph)."""


def check_single_onnxruntime() -> None:
    """Refuse to run with two onnxruntime builds installed.

    They share one package folder, so whichever was installed last silently overwrote parts of
    the other: CUDA may vanish or the import may crash later in a way that is hard to trace.
    """
    found = sorted(
        {_dist_name(dist) for dist in importlib.metadata.distributions()} & _ORT_DISTRIBUTIONS
    )
    if len(found) > 1:
        raise EncoderRuntimeError(
            f"conflicting onnxruntime builds installed: {', '.join(found)}. They share one "
            "folder and break each other: `pip uninstall` all of them, then install exactly "
            "one (extra `cpu` -> onnxruntime, extra `gpu` -> onnxruntime-gpu)."
        )


def _dist_name(dist: importlib.metadata.Distribution) -> str:
    try:
        name = dist.metadata["Name"]
    except KeyError:  # broken installs; newer Pythons raise instead of returning None
        return ""
    return (name or "").lower().replace("_", "-")


def select_providers(device: str) -> list[str]:
    """Execution providers to request for `device` ("auto", "cpu" or "cuda")."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    available = ort.get_available_providers()
    if device == "cuda" and CUDA_PROVIDER not in available:
        raise EncoderRuntimeError(
            f"device='cuda' but onnxruntime offers only {available}; "
            "install onnxruntime-gpu (and not onnxruntime) with a matching CUDA/cuDNN"
        )
    if device != "cpu" and CUDA_PROVIDER in available:
        return [CUDA_PROVIDER, CPU_PROVIDER]
    return [CPU_PROVIDER]


def resolve_parallel_runs(
    device: str, parallel_runs: int, intra_op_threads: int | None
) -> tuple[int, int | None]:
    """(runs at once, intra-op threads per run) for `OnnxTextEncoder.load`.

    ``parallel_runs=0`` is auto: one run on CUDA (it wants wide batches), else `AUTO_CPU_RUNS`
    runs on a CPU with at least that many cores. With several runs, each gets an equal share
    of the cores unless ``intra_op_threads`` says otherwise.
    """
    if parallel_runs < 0:
        raise ValueError(f"parallel_runs must be >= 0 (0 = auto), got {parallel_runs}")
    cores = usable_cores()
    if parallel_runs == 0:
        on_gpu = CUDA_PROVIDER in select_providers(device)
        parallel_runs = 1 if on_gpu or cores < AUTO_CPU_RUNS else AUTO_CPU_RUNS
    if parallel_runs > 1 and intra_op_threads is None:
        intra_op_threads = max(1, cores // parallel_runs)
    return parallel_runs, intra_op_threads


def session_options(
    *, intra_op_threads: int | None = None, spinning: bool = True
) -> ort.SessionOptions:
    """The tuned CPU/GPU session options every encoder session starts from.

    One encoder call is one chain of kernels, so inter-op parallelism only adds hand-offs:
    sequential execution, one inter-op thread, every intra-op thread on the kernels.
    ``spinning=False`` makes idle intra-op threads sleep instead of busy-waiting for the next
    kernel: on a machine whose cores are shared (a stream worker's event loop and consumer
    thread, other processes) the spinning steals the CPU the others need.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if intra_op_threads is not None:
        if intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        options.intra_op_num_threads = intra_op_threads
    return options


def create_session(
    model_path: Path,
    *,
    device: str = "auto",
    intra_op_threads: int | None = None,
    options: ort.SessionOptions | None = None,
    spinning: bool = True,
) -> ort.InferenceSession:
    """Open the ONNX graph on the requested device and check which providers really took.

    `options` (e.g. from `session_options`, with profiling switched on) replaces the tuned
    defaults; `intra_op_threads` and `spinning` are then ignored.
    """
    requested = select_providers(device)
    if options is None:
        options = session_options(intra_op_threads=intra_op_threads, spinning=spinning)
    session = ort.InferenceSession(
        str(model_path), sess_options=options, providers=requested,
        disabled_optimizers=CPU_DISABLED_FUSIONS if CUDA_PROVIDER not in requested else [],
    )
    active = list(session.get_providers())
    log.info("encoder session on %s: providers %s (requested %s)", model_path, active, requested)
    if CUDA_PROVIDER in requested and CUDA_PROVIDER not in active:
        # onnxruntime falls back to CPU quietly when CUDA libraries fail to load.
        if device == "cuda":
            raise EncoderRuntimeError(
                f"device='cuda' but the session runs on {active}: CUDA/cuDNN libraries "
                "did not load (see the onnxruntime log above)"
            )
        log.warning("CUDA was available but did not activate; encoding on CPU")
    return session
