"""The hardware bound: arithmetic per text from the model's shapes, and the CPU's peak.

**Work per text** (useful FLOPs: on the text's own tokens, no padding, 1 multiply-add = 2
FLOPs). A BERT-style encoder layer with hidden size ``d``, feed-forward size ``f`` on a text
of ``L`` tokens does

* Q, K, V and output projections: ``4 * 2 * L * d * d``
* attention scores ``Q K^T`` and their product with ``V``: ``2 * 2 * L * L * d`` (summed over
  heads the head size multiplies back to ``d``)
* feed-forward up and down: ``2 * 2 * L * d * f``

so ``flops(L) = layers * (8 L d^2 + 4 L^2 d + 4 L d f)``. Embedding look-ups, layer norms,
softmax, GELU and pooling are element-wise (``O(L d)``) and left out: under 1 % here.
``shape_of`` reads ``layers``, ``d`` and ``f`` from the artifact's fp32 ONNX graph.

**Peak** per precision: ``cores * GHz * FLOPs per cycle per core``, with the frequency from
``/proc/cpuinfo``'s ``cpu MHz`` (in a VM the nominal clock the hypervisor reports; turbo or
AVX-512 down-clocking move the real one either way) and, per core per cycle,

* fp32, AVX-512 FMA: 2 FMA ports x 16 lanes x 2 = 64 (AVX2 without AVX-512: 32)
* bf16, AVX512-BF16 ``vdpbf16ps``: 2 ports x 32 pairs x 2 = 128; AMX-BF16 ``tdpbf16ps``:
  a 16x32 by 32x16 tile product (8,192 MACs) per 16 cycles = 1,024
* int8, AVX-512 VNNI ``vpdpbusd``: 2 ports x 64 MACs x 2 = 256 ops; AMX-INT8: 2,048 ops

Two FMA ports per core is the server Xeon's count (Skylake-SP Gold/Platinum onwards);
a part with one halves the vector figures. These are bounds, not what any kernel reaches
(memory traffic, the attention's small matrices, the tokenizer and Python are outside them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llmrec_stream.bench.report import format_table

#: FLOPs (int8: ops) per cycle per core, by instruction set (see the module docstring).
PER_CYCLE: dict[str, float] = {
    "fp32-avx2": 32.0,
    "fp32-avx512": 64.0,
    "bf16-avx512": 128.0,
    "bf16-amx": 1024.0,
    "int8-vnni": 256.0,
    "int8-amx": 2048.0,
}


@dataclass(frozen=True, slots=True)
class Shape:
    """What the FLOP count needs of a transformer encoder."""

    layers: int
    hidden: int
    ffn: int

    def flops(self, tokens: int) -> float:
        """Useful FLOPs to encode one text of ``tokens`` tokens."""
        n, d, f = float(tokens), float(self.hidden), float(self.ffn)
        return self.layers * (8 * n * d * d + 4 * n * n * d + 4 * n * d * f)

    def mean_flops(self, lengths: Sequence[int]) -> float:
        if not lengths:
            raise ValueError("no token lengths")
        return sum(self.flops(n) for n in lengths) / len(lengths)


def shape_of(model_path: Path) -> Shape:
    """``layers``, ``hidden`` and ``ffn`` from an fp32 ONNX encoder graph: the feed-forward
    up-projections are the ``(d, f)`` weight matrices with ``f > d`` fed to a MatMul (one per
    layer), ``d`` their rows. Fused and unfused graphs alike: both keep those MatMuls."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=True).graph
    weights = {i.name: tuple(i.dims) for i in graph.initializer if len(i.dims) == 2}
    ups: list[tuple[int, int]] = []
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        for name in node.input:
            dims = weights.get(name)
            if dims is not None and dims[1] > dims[0]:
                ups.append((int(dims[0]), int(dims[1])))
    if not ups:
        raise ValueError(f"{model_path}: no feed-forward MatMul weights found")
    hidden, ffn = max(set(ups), key=ups.count)
    return Shape(layers=sum(1 for u in ups if u == (hidden, ffn)), hidden=hidden, ffn=ffn)


def cpu_ghz(cpuinfo: Path = Path("/proc/cpuinfo")) -> float | None:
    """The first ``cpu MHz`` in ``cpuinfo`` in GHz, or None where it is not given."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "cpu MHz":
                return float(value) / 1000.0
    except (OSError, ValueError):
        pass
    return None


def peaks(flags: Sequence[str], cores: int, ghz: float) -> dict[str, tuple[str, float]]:
    """Per precision (fp32, bf16, int8): the best instruction set ``flags`` offer and its
    peak in GFLOP/s (int8: Gops/s) on ``cores`` at ``ghz``."""
    have = set(flags)
    fp32 = "fp32-avx512" if "avx512f" in have else "fp32-avx2"
    bf16 = ("bf16-amx" if "amx_bf16" in have else
            "bf16-avx512" if "avx512_bf16" in have else fp32)
    int8 = ("int8-amx" if "amx_int8" in have else
            "int8-vnni" if "avx512_vnni" in have else fp32)
    return {p: (isa, cores * ghz * PER_CYCLE[isa])
            for p, isa in (("fp32", fp32), ("bf16", bf16), ("int8", int8))}


def contender_precision(name: str) -> str:
    """The arithmetic a contender runs: int8 graphs, OpenVINO on its defaults (bf16 where the
    CPU has it; ``-fp32`` forces f32), everything else fp32 (q4 dequantizes to fp32)."""
    if "int8" in name:
        return "int8"
    if "openvino" in name and not name.endswith("openvino-fp32"):
        return "bf16"
    return "fp32"


def hardware_rows(
    texts_per_s: dict[str, float], shape: Shape, lengths: Sequence[int], flags: Sequence[str],
    cores: int, ghz: float,
) -> list[dict[str, Any]]:
    """Per contender: achieved GFLOP/s, its precision's peak and the fraction reached, and
    the fraction of the machine's bf16 bound (the issue's "AMX bf16 on 2 cores")."""
    per_text = shape.mean_flops(lengths)
    table = peaks(flags, cores, ghz)
    machine = table["bf16"][1]
    rows = []
    for name, rate in texts_per_s.items():
        precision = contender_precision(name)
        isa, peak = table[precision]
        achieved = rate * per_text / 1e9
        rows.append({"contender": name, "texts_per_s": rate, "gflops": achieved,
                     "precision": precision, "isa": isa, "peak_gflops": peak,
                     "fraction": achieved / peak, "fraction_of_bf16_bound": achieved / machine})
    return rows


def hardware_report(
    model: Path, measurements: Sequence[Any], lengths: Sequence[int], flags: Sequence[str]
) -> dict[str, Any]:
    """Achieved GFLOP/s per contender and batch (``measurements``: `encoder.Measurement`)
    against the CPU's peaks, JSON-ready."""
    from llmrec_stream.cpu import usable_cores

    ghz, cores = cpu_ghz(), usable_cores()
    if ghz is None:
        return {"skipped": "no cpu MHz in /proc/cpuinfo"}
    shape = shape_of(model)
    rows = []
    for batch in dict.fromkeys(m.batch_size for m in measurements):
        rates = {m.contender: m.texts_per_s for m in measurements
                 if m.batch_size == batch}
        rows += [{"batch": batch, **row}
                 for row in hardware_rows(rates, shape, lengths, flags, cores, ghz)]
    return {"shape": asdict(shape), "ghz": ghz, "cores": cores,
            "gflop_per_text": shape.mean_flops(lengths) / 1e9, "rows": rows}


def hardware_table(hardware: dict[str, Any]) -> str:
    """The hardware bound as printed: formula and assumptions, then one row per measurement."""
    if "rows" not in hardware:
        return f"hardware bound: {hardware.get('skipped', 'not computed')}"
    shape = hardware["shape"]
    head = (f"hardware bound: {hardware['gflop_per_text']:.3f} GFLOP/text = mean over the texts "
            f"of layers*(8*L*d^2 + 4*L^2*d + 4*L*d*f), layers {shape['layers']}, d "
            f"{shape['hidden']}, f {shape['ffn']}, L = each text's tokens (no padding); peak = "
            f"{hardware['cores']} cores x {hardware['ghz']:.2f} GHz (cpu MHz) x FLOPs/cycle of "
            f"the precision's best ISA (bench/flops.py)")
    rows = [[r["batch"], r["contender"], r["precision"], r["isa"], r["gflops"],
             r["peak_gflops"], r["fraction"], r["fraction_of_bf16_bound"]]
            for r in hardware["rows"]]
    return head + "\n" + format_table(
        ["batch", "contender", "precision", "peak ISA", "GFLOP/s", "peak GFLOP/s",
         "of its peak", "of the bf16 bound"], rows)
