"""Where an ONNX encoder spends its time, from onnxruntime's own trace.

The trace records every kernel with the execution provider that ran it, so the same pass
answers two questions: which operators to attack when a target is missed, and whether the
CUDA provider really ran the graph (onnxruntime quietly places nodes it cannot run on CUDA
on the CPU; `session.get_providers()` lists what was registered, not what ran).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrec_stream.encoder.artifact import PRECISIONS
from llmrec_stream.encoder.runtime import OnnxTextEncoder, create_session, session_options


@dataclass(frozen=True, slots=True)
class Profile:
    """Kernel time by operator type and by provider, plus the share spent outside kernels."""

    wall_s: float
    kernel_s: float
    by_op: dict[str, float]
    by_provider: dict[str, float]
    nodes_by_provider: dict[str, int]
    by_op_provider: dict[str, dict[str, float]]

    @property
    def outside_kernels_s(self) -> float:
        """Tokenization, padding, Python, thread wake-ups: wall time no kernel accounts for."""
        return max(0.0, self.wall_s - self.kernel_s)

    def top(self, n: int = 8) -> list[tuple[str, float]]:
        total = sum(self.by_op.values()) or 1.0
        ranked = sorted(self.by_op.items(), key=lambda kv: -kv[1])[:n]
        return [(op, seconds / total) for op, seconds in ranked]

    def to_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "kernel_s": self.kernel_s,
            "outside_kernels_s": self.outside_kernels_s,
            "by_op_s": dict(sorted(self.by_op.items(), key=lambda kv: -kv[1])),
            "by_provider_s": self.by_provider,
            "nodes_by_provider": self.nodes_by_provider,
            "by_op_provider_s": self.by_op_provider,
        }

    def provider_time(self, ops: Collection[str]) -> dict[str, float]:
        """Kernel seconds of these operator types, per provider."""
        out: dict[str, float] = defaultdict(float)
        for op in ops:
            for provider, seconds in self.by_op_provider.get(op, {}).items():
                out[provider] += seconds
        return dict(out)


def parse_trace(trace: list[dict[str, Any]], wall_s: float) -> Profile:
    """Aggregate an onnxruntime profiling trace (the JSON list it writes)."""
    by_op: dict[str, float] = defaultdict(float)
    by_provider: dict[str, float] = defaultdict(float)
    nodes: dict[str, set[str]] = defaultdict(set)
    by_op_provider: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in trace:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        args = event.get("args", {})
        seconds = float(event.get("dur", 0)) / 1e6
        op = str(args.get("op_name", "?"))
        provider = str(args.get("provider", "?"))
        by_op[op] += seconds
        by_provider[provider] += seconds
        nodes[provider].add(str(event.get("name")))
        by_op_provider[op][provider] += seconds
    return Profile(
        wall_s=wall_s,
        kernel_s=sum(by_op.values()),
        by_op=dict(by_op),
        by_provider=dict(by_provider),
        nodes_by_provider={p: len(n) for p, n in nodes.items()},
        by_op_provider={op: dict(v) for op, v in by_op_provider.items()},
    )


def profile_encoder(
    artifact_dir: Path,
    texts: Sequence[str],
    *,
    precision: str,
    batch_size: int,
    threads: int,
    device: str = "cpu",
    model_path: Path | None = None,
) -> Profile:
    """Encode `texts` once on a profiling session of the artifact and aggregate the trace.

    `model_path` profiles another graph through the artifact's tokenizer (the GPU fp16
    variant, which lives outside the artifact).
    """
    encoder = OnnxTextEncoder.load(
        artifact_dir,
        device=device,
        intra_op_threads=threads,
        batch_size=batch_size,
        verify=False,
        precision=precision,
    )
    with tempfile.TemporaryDirectory(prefix="ort-profile-") as tmp:
        options = session_options(intra_op_threads=threads)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "trace")
        path = model_path or artifact_dir / PRECISIONS[precision]
        session = create_session(path, device=device, intra_op_threads=threads, options=options)
        encoder._session = session  # noqa: SLF001 - the same graph, with profiling on
        started = time.perf_counter()
        encoder.encode(list(texts))
        wall = time.perf_counter() - started
        trace = json.loads(Path(session.end_profiling()).read_text())
    return parse_trace(trace, wall)
