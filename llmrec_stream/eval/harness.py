"""The evaluation harness: every model, every data set, one protocol, one results folder.

Per data set and model: fit once per grid point (the first ``grid_points`` of the model's
grid, the same budget for everyone), keep the point with the best validation NDCG@10, then
score the test targets with it. The validation target is used for nothing else. Models
whose scorer reads only the given histories are also scored "cold": with only the last one
or two items of each test history (see `COLD_START_EVENTS`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llmrec_stream.eval.data import SeqDataset
from llmrec_stream.eval.metrics import DEFAULT_KS, Scorer, evaluate
from llmrec_stream.eval.peers import fit_implicit, fit_popularity

log = logging.getLogger(__name__)
SELECT_METRIC = "ndcg@10"
COLD_START_EVENTS: tuple[int, ...] = (1, 2)


class Fitted(Protocol):
    def scorer(self, split: str) -> Scorer: ...


@dataclass(frozen=True)
class EvalContext:
    """What fits may need beyond the data: the encoder for item text, per-run bounds, paths."""

    encoder_dir: Path | None = None
    cache_dir: Path | None = None
    max_minutes: float = 5.0
    max_epochs: int = 200
    threads: int = 1
    progress: bool = True
    seed: int = 0


class Skip(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A model cannot run on this data set (e.g. it needs item text); the reason is reported."""


FitFn = Callable[[SeqDataset, dict[str, Any], EvalContext], Fitted]


@dataclass(frozen=True)
class ModelSpec:
    """A named model, its hyper-parameter grid (tried in order) and how to fit one point."""

    name: str
    fit: FitFn
    grid: Sequence[dict[str, Any]]
    #: The scorer uses only the histories it is given, so truncated (cold) histories are fair.
    history_only: bool = True


@dataclass
class ModelResult:
    model: str
    dataset: str
    params: dict[str, Any] = field(default_factory=dict)
    valid: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    cold: dict[str, dict[str, float]] = field(default_factory=dict)
    tried: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str = ""


def popularity_spec() -> ModelSpec:
    return ModelSpec("popularity", lambda d, p, c: fit_popularity(d, p), [{}])


def bpr_spec() -> ModelSpec:
    grid = [
        {"algo": "bpr", "factors": 64, "learning_rate": 0.05, "regularization": 0.01,
         "iterations": 100},
        {"algo": "bpr", "factors": 128, "learning_rate": 0.05, "regularization": 0.001,
         "iterations": 200},
        {"algo": "bpr", "factors": 64, "learning_rate": 0.01, "regularization": 0.01,
         "iterations": 200},
    ]
    return ModelSpec("bpr", lambda d, p, c: fit_implicit(d, p, c.threads), grid, history_only=False)


def als_spec() -> ModelSpec:
    grid = [
        {"algo": "als", "factors": 64, "regularization": 0.1, "alpha": 10.0, "iterations": 15},
        {"algo": "als", "factors": 128, "regularization": 1.0, "alpha": 20.0, "iterations": 15},
        {"algo": "als", "factors": 256, "regularization": 5.0, "alpha": 40.0, "iterations": 15},
    ]
    return ModelSpec("als", lambda d, p, c: fit_implicit(d, p, c.threads), grid)


def peer_specs() -> list[ModelSpec]:
    """The peers that need no torch."""
    return [popularity_spec(), bpr_spec(), als_spec()]


def evaluate_model(
    data: SeqDataset, spec: ModelSpec, ctx: EvalContext, grid_points: int
) -> ModelResult:
    result = ModelResult(spec.name, data.name)
    start = time.monotonic()
    best: Fitted | None = None
    for params in list(spec.grid)[:grid_points]:
        try:
            fitted = spec.fit(data, dict(params), ctx)
        except Skip as why:
            result.skipped = str(why)
            log.warning("%s on %s skipped: %s", spec.name, data.name, why)
            return result
        valid = evaluate(fitted.scorer("valid"), data, "valid")
        result.tried.append({"params": params, "valid": valid})
        log.info("%s %s %s: valid %s", data.name, spec.name, params, valid)
        if best is None or valid[SELECT_METRIC] > result.valid[SELECT_METRIC]:
            best, result.valid, result.params = fitted, valid, dict(params)
    if best is None:
        result.skipped = "empty grid"
        return result
    result.test = evaluate(best.scorer("test"), data, "test", ks=DEFAULT_KS)
    if spec.history_only:
        test_inputs = data.test_input()
        for k in COLD_START_EVENTS:
            cold = [h[-k:] for h in test_inputs]
            result.cold[f"last{k}"] = evaluate(best.scorer("test"), data, "test", histories=cold)
    result.seconds = time.monotonic() - start
    return result


def run_eval(
    datasets: Sequence[SeqDataset],
    models: Sequence[ModelSpec],
    *,
    results_dir: Path | None = None,
    grid_points: int = 3,
    ctx: EvalContext | None = None,
) -> list[ModelResult]:
    """Evaluate every model on every data set; with ``results_dir`` write JSON, table, chart."""
    ctx = ctx or EvalContext()
    start = time.monotonic()
    results = []
    for data in datasets:
        for spec in models:
            log.info("evaluating %s on %s", spec.name, data.name)
            results.append(evaluate_model(data, spec, ctx, grid_points))
    if results_dir is not None:
        from llmrec_stream.eval.report import write_results

        write_results(results, Path(results_dir), wall_seconds=time.monotonic() - start,
                      settings={"grid_points": grid_points, **ctx.__dict__})
    return results
