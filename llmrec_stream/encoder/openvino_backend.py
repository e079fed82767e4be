"""OpenVINO as the encoder's engine, behind the onnxruntime session interface the runtime uses.

On a CPU with AMX, OpenVINO runs the exported fp32 graph in bf16 tiles by default (its
``INFERENCE_PRECISION_HINT``), several times faster than onnxruntime's fp32 kernels at a
cosine to fp32 above 0.9999 (issue 17's measurement). It reads the artifact's ONNX graph
directly: no second export. Only the fp32 graph: OpenVINO does not compile the int8 graph's
onnxruntime-specific quantized operators. Optional (extra ``openvino``): imported only here,
only when asked for, so the runtime install stays small.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.cpu import has_amx_bf16

OPENVINO_PROVIDER = "OpenVINO"
_TYPES = {"f32": "tensor(float)", "i64": "tensor(int64)"}


def openvino_available() -> bool:
    """Whether the `openvino` package is installed (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def prefer_openvino(precision: str) -> bool:
    """The ``auto`` backend's choice: OpenVINO for the fp32 graph where it is installed and
    the CPU has AMX bf16 (there it wins); onnxruntime everywhere else."""
    return precision == "fp32" and openvino_available() and has_amx_bf16()


@dataclass(frozen=True, slots=True)
class _Port:
    """What `OnnxTextEncoder` reads of an onnxruntime `NodeArg`."""

    name: str
    type: str
    shape: list[Any]


class OpenVinoSession:
    """An OpenVINO compiled model answering as an onnxruntime `InferenceSession` does
    (``get_inputs``, ``get_outputs``, ``run``, ``get_providers``), so the runtime's
    tokenization, length-sorted batching and parallel runs stay one piece of code."""

    def __init__(
        self, model_path: Path, *, threads: int | None, streams: int = 1,
        precision_hint: str = "",
    ) -> None:
        """``streams`` > 1: that many independent inference streams sharing ``threads``, the
        engine's own form of the runtime's parallel runs (one request per run at once)."""
        import openvino as ov  # type: ignore[import-not-found, unused-ignore]

        config: dict[str, str] = {"PERFORMANCE_HINT": "LATENCY"}
        if streams > 1:
            config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": str(streams)}
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        if precision_hint:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        self._compiled = ov.Core().compile_model(str(model_path), "CPU", config)
        self.precision = str(self._compiled.get_property("INFERENCE_PRECISION_HINT"))
        self._inputs = [self._port(p) for p in self._compiled.inputs]
        self._outputs = [self._port(p) for p in self._compiled.outputs]

    @staticmethod
    def _port(port: Any) -> _Port:
        shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        kind = _TYPES.get(port.get_element_type().get_type_name(), "other")
        return _Port(port.get_any_name(), kind, shape)

    def get_inputs(self) -> list[_Port]:
        return list(self._inputs)

    def get_outputs(self) -> list[_Port]:
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return [OPENVINO_PROVIDER]

    def run(
        self, output_names: Sequence[str], feeds: dict[str, npt.NDArray[np.int64]]
    ) -> list[npt.NDArray[np.float32]]:
        # one infer request per call: calls from the runtime's parallel runs never share one
        result = self._compiled.create_infer_request().infer(feeds)
        by_name = {port.get_any_name(): value for port, value in result.items()}
        return [np.asarray(by_name[name], dtype=np.float32) for name in output_names]
