"""The GPU contenders: the fused graph on the CUDA provider, in fp32 and fp16, with I/O binding.

fp16 is a bench-side variant for now: it is converted from the artifact's (fused) fp32 graph
into the results folder, keyed by that graph's sha256, and is not part of the artifact or its
manifest. Pooling and normalisation stay float32 (a sum over 256 tokens is where half
precision would lose digits); inputs and the output stay int64 / float32, so the runtime's
feeds are unchanged.

I/O binding hands onnxruntime the device buffers directly: inputs are copied once to the GPU
and the output is bound on the device and copied back once, instead of onnxruntime staging
both through its own host copies on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from llmrec_stream.bench.profile import Profile
from llmrec_stream.encoder.artifact import MODEL_NAME, read_manifest, sha256_file
from llmrec_stream.encoder.runtime import OnnxTextEncoder, create_session

#: Kept in float32 by the fp16 conversion: the pooling and L2 normalisation tail.
FP32_TAIL_OPS: tuple[str, ...] = ("ReduceSum", "ReduceL2", "Div", "Clip", "Mul", "Cast", "Expand")
#: Operators that must run on the CUDA provider for a CUDA run to count.
HEAVY_OPS: frozenset[str] = frozenset(
    {
        "Attention",
        "MultiHeadAttention",
        "MatMul",
        "SkipLayerNormalization",
        "BiasGelu",
        "EmbedLayerNormalization",
        "FusedMatMul",
        "Gemm",
    }
)


class ProviderError(RuntimeError):
    """The graph did not run where the benchmark says it ran."""


def fp16_model(artifact_dir: Path, cache_dir: Path) -> Path:
    """The artifact's fp32 graph converted to fp16 (cached under `cache_dir`)."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    src = Path(artifact_dir) / MODEL_NAME
    digest = sha256_file(src)[:16]
    dst = Path(cache_dir) / f"model.fp16.{digest}.onnx"
    if dst.is_file():
        return dst
    import onnx

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True, op_block_list=list(FP32_TAIL_OPS))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    model.save_model_to_file(str(tmp))
    tmp.replace(dst)
    return dst


class IoBoundEncoder(OnnxTextEncoder):
    """`OnnxTextEncoder` whose runs bind inputs and output on `device_type` ("cuda" or "cpu")."""

    device_type = "cuda"

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of str, not a single str")
        items = list(texts)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        if not items:
            return out
        encodings = self._tokenizer.encode_batch(items)
        order = sorted(range(len(items)), key=lambda i: len(encodings[i].ids))
        binding = self._session.io_binding()
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            feeds = self._feeds([encodings[i] for i in index])
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
            for name, array in feeds.items():
                value = ort.OrtValue.ortvalue_from_numpy(array, self.device_type, 0)
                binding.bind_ortvalue_input(name, value)
            binding.bind_output(self._output_name, self.device_type)
            self._session.run_with_iobinding(binding)
            out[index] = binding.copy_outputs_to_cpu()[0]
        return out


class IoBoundContender:
    """A bench contender over `IoBoundEncoder` (one graph file, one device)."""

    def __init__(
        self,
        artifact_dir: Path,
        model_path: Path,
        *,
        name: str,
        device: str = "cuda",
        threads: int | None = None,
    ) -> None:
        from llmrec_stream.encoder.runtime import load_tokenizer

        manifest = read_manifest(artifact_dir)
        session = create_session(model_path, device=device, intra_op_threads=threads)
        tokenizer = load_tokenizer(artifact_dir / "tokenizer.json", max_length=manifest.max_length)
        self.encoder = IoBoundEncoder(
            session,
            tokenizer,
            name=manifest.source,
            pad_id=manifest.pad_id,
            output_name=manifest.output_name,
        )
        self.encoder.device_type = "cuda" if device == "cuda" else "cpu"
        self.name = name
        self.device = self.encoder.providers[0]
        self.model_path = model_path

    def encode(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
        self.encoder.batch_size = batch_size
        return self.encoder.encode(texts)


def check_cuda_ran(profile: Profile) -> None:
    """Raise `ProviderError` unless the CUDA provider ran every heavy kernel of the graph."""
    heavy_by_provider = profile.provider_time(HEAVY_OPS)
    nodes_by_provider = profile.nodes_by_provider
    cuda = heavy_by_provider.get("CUDAExecutionProvider", 0.0)
    elsewhere = {p: s for p, s in heavy_by_provider.items() if p != "CUDAExecutionProvider"}
    if cuda <= 0.0 or any(s > 0.0 for s in elsewhere.values()):
        raise ProviderError(
            "CUDAExecutionProvider did not run the encoder's heavy kernels: kernel seconds by "
            f"provider {heavy_by_provider}, nodes by provider {nodes_by_provider}"
        )
