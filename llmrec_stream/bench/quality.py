"""Recommendation quality per encoder precision and backend: NDCG, not cosine.

A cosine of 0.99 to fp32 says the vectors are close; it does not say whether the items a
profile ranks first stay the same. Here each encoder configuration encodes the item texts of
a leave-one-out data set (``../shared/data/scientific``: title, categories and brand per
item), and a content recommender built only on those vectors ranks the whole catalog for every
user: the profile is the recency-decayed sum of the user's history item vectors (the worker's
text profile: each event adds its item's vector, older events decay; here by position, the
data set has order only), scored by cosine against every item, history excluded, the test
target ranked by the harness's own pessimistic rule (`datasets.metrics.target_ranks`).
Per user NDCG@10 of each configuration is compared with fp32's on the same users by the paired
per-user bootstrap of `eval.stats`: "equal" means the 95 % interval of the difference
contains 0 and is narrow (its width is reported).

The encoder is the only thing that differs between the arms: same users, same histories, same
scorer. So a difference is the precision's, not the recommender's.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.datasets.metrics import ndcg_per_user, target_ranks
from llmrec_stream.datasets.sequences import IntArray, SeqDataset
from llmrec_stream.eval.stats import paired_bootstrap

FloatArray = npt.NDArray[np.float32]
#: Half-life of a history item's weight in the profile, in events (the data has order only).
HALF_LIFE_EVENTS = 3.0
#: (name, precision, backend): every configuration the worker can run. The first is the
#: reference the others are compared with.
CONFIGS: tuple[tuple[str, str, str], ...] = (
    ("onnx-fp32", "fp32", "onnxruntime"),
    ("onnx-int8", "int8", "onnxruntime"),
    ("openvino-bf16", "fp32", "openvino"),
    ("onnx-q4", "q4", "onnxruntime"),
)


@dataclass(frozen=True)
class Arm:
    """One configuration's result: its item vectors' scores for the users."""

    name: str
    ndcg: npt.NDArray[np.float64]
    encode_s: float
    cos_min: float
    cos_mean: float
    detail: str = ""


def profiles(
    items: FloatArray, histories: list[IntArray], half_life: float = HALF_LIFE_EVENTS
) -> FloatArray:
    """(users, dim) unit profiles: each history's item vectors, the newest weighted 1 and each
    older one by ``0.5 ** (age / half_life)``, summed and normalized (zero rows stay zero)."""
    out = np.zeros((len(histories), items.shape[1]), np.float32)
    for row, history in enumerate(histories):
        if not len(history):
            continue
        age = np.arange(len(history) - 1, -1, -1, dtype=np.float64)
        weights = np.power(0.5, age / half_life).astype(np.float32)
        out[row] = weights @ items[history]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def user_ndcg(
    items: FloatArray, data: SeqDataset, k: int = 10, batch: int = 2048
) -> npt.NDArray[np.float64]:
    """Per-user test NDCG@k of the content recommender on item vectors ``items``
    ((n_items + 1, dim), row 0 the padding)."""
    norms = np.linalg.norm(items, axis=1, keepdims=True)
    unit = np.divide(items, norms, out=np.zeros_like(items), where=norms > 0)
    histories = data.inputs("test")
    targets = data.targets("test")
    out = []
    for start in range(0, len(histories), batch):
        chunk = histories[start : start + batch]
        scores = profiles(unit, chunk) @ unit.T
        ranks = target_ranks(scores, targets[start : start + batch], chunk, "all")
        out.append(ndcg_per_user(ranks, k))
    return np.concatenate(out)


def encode_items(
    data: SeqDataset, artifact: Path, precision: str, backend: str, threads: int
) -> tuple[FloatArray, float, str]:
    """(n_items + 1, dim) item vectors of one configuration, the seconds it took, and what
    ran (provider and precision the session reports)."""
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    if data.item_text is None:
        raise ValueError(f"{data.name} has no item text")
    encoder = OnnxTextEncoder.load(artifact, device="cpu", precision=precision,
                                   intra_op_threads=threads, backend=backend)
    try:
        present = [i for i, t in enumerate(data.item_text) if t]
        out = np.zeros((data.n_items + 1, encoder.dim), np.float32)
        start = time.perf_counter()
        out[np.array(present) + 1] = encoder.encode([data.item_text[i] for i in present])
        seconds = time.perf_counter() - start
        # what ran: the provider, and the precision OpenVINO chose (bf16 on AMX)
        hint = getattr(getattr(encoder, "_session", None), "precision", "")
        detail = ",".join(encoder.providers) + (f" {hint}" if hint else "")
    finally:
        encoder.close()
    return out, seconds, detail


def row_cosines(a: FloatArray, b: FloatArray) -> npt.NDArray[np.float64]:
    """Cosine of each pair of non-zero rows (zero rows, the padding and textless items, are
    left out)."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    keep = (na > 0) & (nb > 0)
    dots = (a[keep] * b[keep]).sum(axis=1).astype(np.float64)
    return np.asarray(dots / (na[keep] * nb[keep]), np.float64)


def compare(arms: list[Arm], resamples: int) -> list[dict[str, Any]]:
    """Each arm against the first: mean NDCG@10, the paired bootstrap CI of the difference."""
    ref = arms[0]
    rows = []
    for arm in arms:
        row: dict[str, Any] = {
            "config": arm.name, "ndcg@10": float(arm.ndcg.mean()), "encode_s": arm.encode_s,
            "cos_min": arm.cos_min, "cos_mean": arm.cos_mean, "engine": arm.detail,
            "users_changed": int((arm.ndcg != ref.ndcg).sum()),
        }
        if arm is not ref:
            ci = paired_bootstrap(arm.ndcg, ref.ndcg, resamples=resamples)
            row.update(diff=ci.diff, low=ci.low, high=ci.high, width=ci.high - ci.low,
                       contains_zero=not ci.significant)
        rows.append(row)
    return rows


def run_quality(
    data_path: Path, artifact: Path, configs: list[tuple[str, str, str]], *, threads: int,
    users: int, resamples: int, echo: Any = print,
) -> dict[str, Any]:
    """Encode the catalog once per configuration and score every (or the first ``users``)
    user; returns the JSON-ready result."""
    from dataclasses import replace

    from llmrec_stream.cpu import cpu_flags, usable_cores
    from llmrec_stream.datasets.sequences import load_dataset

    data = load_dataset(data_path)
    if users and users < data.n_users:
        data = replace(data, train=data.train[:users], valid_target=data.valid_target[:users],
                       test_target=data.test_target[:users],
                       user_ids=data.user_ids[:users] if data.user_ids else [])
    load_before = os.getloadavg()
    arms: list[Arm] = []
    ref_vectors: FloatArray | None = None
    skipped: dict[str, str] = {}
    for name, precision, backend in configs:
        try:
            vectors, seconds, detail = encode_items(data, artifact, precision, backend, threads)
        except Exception as exc:  # noqa: BLE001 - a missing extra or file skips one arm
            skipped[name] = f"{type(exc).__name__}: {exc}"
            echo(f"{name}: skipped ({skipped[name]})")
            continue
        if ref_vectors is None:
            ref_vectors = vectors
        cos = row_cosines(vectors, ref_vectors)
        arms.append(Arm(name, user_ndcg(vectors, data), seconds, float(cos.min()),
                        float(cos.mean()), detail))
        echo(f"{name}: encoded {data.n_items} items in {seconds:.1f}s ({detail}); "
             f"NDCG@10 {arms[-1].ndcg.mean():.4f}")
    if not arms:
        raise RuntimeError(f"no configuration ran: {skipped}")
    return {
        "dataset": data.name, "users": data.n_users, "items": data.n_items,
        "half_life_events": HALF_LIFE_EVENTS, "threads": threads, "resamples": resamples,
        "cpu_flags": [f for f in cpu_flags() if f.startswith(("avx512", "amx", "avx_vnni"))],
        "cores": usable_cores(), "rows": compare(arms, resamples), "skipped": skipped,
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
    }


def table(result: dict[str, Any]) -> str:
    """Markdown table of `run_quality`'s rows."""
    lines = ["| config | NDCG@10 | diff vs fp32 [95 % CI] (width) | users changed | cos min / "
             "mean | encode s |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        diff = "reference" if "diff" not in r else (
            f"{r['diff']:+.5f} [{r['low']:+.5f}, {r['high']:+.5f}] ({r['width']:.5f})")
        lines.append(f"| {r['config']} | {r['ndcg@10']:.4f} | {diff} | {r['users_changed']} | "
                     f"{r['cos_min']:.4f} / {r['cos_mean']:.4f} | {r['encode_s']:.1f} |")
    return "\n".join(lines)
