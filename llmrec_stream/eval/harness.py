"""The evaluation harness: every model, every data set, one protocol, one results folder.

Per data set and model, in this order (the order is the protocol):

1. **Selection, validation only.** Every point of the model's grid (declared in code before any
   test run; ``grid_points`` can cut it for smoke runs) is fit on the training sequences with
   seed 0 and scored on the validation targets. The point with the best validation NDCG@10 is
   chosen. No test target is scored before the choice, and only the chosen point ever is.
2. **Seeds.** The chosen point is fit again for each further seed (models whose result does
   not depend on a seed run once). Neural models early-stop on validation in these fits.
3. **One refit rule, for every model.** The test model of each seed is a fresh fit on the
   training sequences plus the validation item (``SeqDataset.refit_view``), with the chosen
   hyper-parameters and, for neural models, the number of epochs that seed's validation fit
   chose (no early stopping there: the refit view has no validation split).
4. **One history rule.** All history is masked, a repeated target included; the unmasked
   (RecBole-style) figure is computed beside it and labelled.
5. **Significance.** Per data set, the reference model (``--reference``, else the first of
   `REFERENCE_MODELS` that ran, else the best on validation) is compared with every other by a
   paired per-user bootstrap 95 % CI of the NDCG@10 difference (`stats.py`), per-user values
   averaged over seeds first. The headline is the best peer: the best model on validation
   that is not one of ours.

Models whose scorer reads only the given histories are also scored "cold": with only the last
one or two items of each test history (see `COLD_START_EVENTS`), on the seed-0 test model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec_stream.datasets.fitstore import FitStore
from llmrec_stream.datasets.metrics import (
    DEFAULT_KS,
    evaluate,
    evaluate_ranks,
    ndcg_per_user,
    summarize,
)
from llmrec_stream.datasets.sequences import SeqDataset, users_sha256
from llmrec_stream.datasets.specs import EvalContext, FitCache, Fitted, ModelSpec, Skip
from llmrec_stream.eval.blend import blend_spec
from llmrec_stream.eval.outcomes import Comparison, ModelResult
from llmrec_stream.eval.peers import fit_ease, fit_implicit, fit_item_knn, fit_popularity
from llmrec_stream.eval.report import write_results
from llmrec_stream.eval.stats import aggregate, paired_bootstrap

log = logging.getLogger(__name__)
SELECT_METRIC = "ndcg@10"
COLD_START_EVENTS: tuple[int, ...] = (1, 2)
#: The default reference, first that ran: the blend, else ours alone.
REFERENCE_MODELS: tuple[str, ...] = ("ours-ease", "ours-ce")
#: Models whose name starts with this are ours (variants, ablations, blends): never the best peer.
OURS_PREFIX = "ours"


def popularity_spec() -> ModelSpec:
    return ModelSpec("popularity", lambda d, p, c: fit_popularity(d, p), [{}], seeded=False)


BPR_GRID: list[dict[str, Any]] = [
    {"algo": "bpr", "factors": f, "learning_rate": lr, "regularization": reg,
     "iterations": 200}
    for f, lr, reg in [(64, 0.05, 0.01), (128, 0.05, 0.001), (64, 0.01, 0.01),
                       (128, 0.01, 0.001), (256, 0.05, 0.01), (256, 0.01, 0.001)]
]
ALS_GRID: list[dict[str, Any]] = [
    {"algo": "als", "factors": f, "regularization": reg, "alpha": alpha, "iterations": 15}
    for f, reg, alpha in [(64, 1.0, 20.0), (128, 1.0, 20.0), (256, 1.0, 20.0),
                          (512, 1.0, 20.0), (128, 0.1, 20.0), (128, 10.0, 20.0),
                          (256, 10.0, 20.0), (512, 10.0, 20.0), (512, 50.0, 20.0)]
]
EASE_GRID: list[dict[str, Any]] = [{"lam": lam} for lam in (10.0, 50.0, 100.0, 250.0, 500.0,
                                                             1000.0)]
ITEM_KNN_GRID: list[dict[str, Any]] = [
    {"k": k, "shrink": shrink}
    for k, shrink in [(20, 0.0), (50, 0.0), (100, 0.0), (200, 0.0), (50, 10.0), (200, 10.0)]
]


def bpr_spec() -> ModelSpec:
    return ModelSpec("bpr", lambda d, p, c: fit_implicit(d, p, c.threads, c.seed), BPR_GRID,
                     history_only=False)


def als_spec() -> ModelSpec:
    return ModelSpec("als", lambda d, p, c: fit_implicit(d, p, c.threads, c.seed), ALS_GRID)


def ease_spec() -> ModelSpec:
    return ModelSpec("ease", lambda d, p, c: fit_ease(d, p, c.threads), EASE_GRID,
                     seeded=False)


def item_knn_spec() -> ModelSpec:
    return ModelSpec("item-knn", lambda d, p, c: fit_item_knn(d, p), ITEM_KNN_GRID,
                     seeded=False)


def peer_specs() -> list[ModelSpec]:
    """The peers that need no torch."""
    return [popularity_spec(), bpr_spec(), als_spec(), ease_spec(), item_knn_spec()]


#: ``ours-ease``: ours-ce at its own validation choice on each data set (its whole grid, seed 0,
#: the harness's rule; `validation_choice`) blended with EASE at lambda 50 (EASE's validation
#: choice on both data sets in the 2026-12-06 runs). Until 2026-12-06c the ours component was
#: fixed at ours-ce's first grid point, because ours-ce had run that point alone; results
#: folders from then name that point in their grid. The blend's own grid (weight x
#: normalisation, `blend.py`) is chosen on validation.
OURS_EASE_POINTS: tuple[dict[str, Any] | None, dict[str, Any]] = (None, {"lam": 50.0})


def blend_specs(specs: Mapping[str, ModelSpec]) -> list[ModelSpec]:
    """The blends whose components are among ``specs`` (ours-ce is registered by the trainer)."""
    if "ours-ce" not in specs or "ease" not in specs:
        return []
    ours_params, ease_params = OURS_EASE_POINTS
    return [blend_spec("ours-ease", specs["ours-ce"], ours_params, specs["ease"], ease_params,
                       choose=validation_choice)]


def grid_digest(specs: Sequence[ModelSpec]) -> str:
    """sha256 of every model's declared grid: shows which frozen grid a results file used."""
    payload = json.dumps({s.name: list(s.grid) for s in specs}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _epochs(fitted: Fitted) -> int | None:
    result = getattr(fitted, "result", None)
    return None if result is None else int(result.best_epoch)


def _as_fit(fitted: Fitted, params: dict[str, Any]) -> dict[str, Any]:
    """The point as fit: a model that resolves part of its point (a blend's component at its
    validation choice) says so in ``point``."""
    return dict(getattr(fitted, "point", None) or params)


def _fit_info(fitted: Fitted) -> dict[str, Any]:
    result = getattr(fitted, "result", None)
    if result is None:
        return {}
    return {"best_epoch": result.best_epoch, "epochs_run": len(result.history) or None,
            "stopped_by": getattr(result, "stopped_by", ""), "seconds": result.seconds}


@dataclasses.dataclass
class Selection:
    """Step 1's outcome: the chosen fit, its point (as fit) and validation figures, and every
    point tried."""

    fitted: Fitted | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    valid: dict[str, float] = dataclasses.field(default_factory=dict)
    tried: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def select_point(data: SeqDataset, spec: ModelSpec, ctx: EvalContext,
                 grid_points: int | None = None, into: Selection | None = None) -> Selection:
    """Step 1 of the protocol: every point of ``spec``'s grid (cut to ``grid_points``) is fit
    with seed 0 on the training sequences through ``ctx.fits`` and scored on validation; the
    best validation NDCG@10 wins, the first on ties. ``Skip`` propagates; ``into`` keeps the
    points tried before it. When another model of the run reads ``spec`` at its validation
    choice (a blend), the selection is kept in ``ctx.fits``: the second model reuses it
    instead of scoring every point on validation again."""
    sel = into if into is not None else Selection()
    fits = ctx.fits if ctx.fits is not None else FitCache()
    key = ("selection", spec.name, grid_points)
    shared = fits.reads_every_point(spec.name)
    done: Selection | None = fits.recall(key, data) if shared else None
    if done is not None:
        sel.fitted, sel.params, sel.valid = done.fitted, dict(done.params), dict(done.valid)
        sel.tried = list(done.tried)
        return sel
    seed0 = dataclasses.replace(ctx, seed=0, fixed_epochs=None)
    grid = list(spec.grid) if grid_points is None else list(spec.grid)[:grid_points]
    for params in grid:
        fitted = fits.fit(spec, data, dict(params), seed0)
        valid = evaluate(fitted.scorer("valid"), data, "valid")
        sel.tried.append({"params": params, "valid": valid, **_fit_info(fitted)})
        log.info("%s %s %s: valid %s", data.name, spec.name, params, valid)
        if sel.fitted is None or valid[SELECT_METRIC] > sel.valid[SELECT_METRIC]:
            sel.fitted, sel.valid, sel.params = fitted, valid, _as_fit(fitted, params)
    if shared:
        fits.remember(key, data, Selection(sel.fitted, dict(sel.params), dict(sel.valid),
                                           list(sel.tried)))
    return sel


def validation_choice(spec: ModelSpec, data: SeqDataset, ctx: EvalContext) -> dict[str, Any]:
    """``spec``'s chosen point on ``data`` by `select_point` (a blend's component choice)."""
    sel = select_point(data, spec, ctx, ctx.grid_points)
    if sel.fitted is None:
        raise ValueError(f"{spec.name} has an empty grid")
    log.info("%s on %s: validation choice %s (valid %s %.4f)", spec.name, data.name,
             sel.params, SELECT_METRIC, sel.valid[SELECT_METRIC])
    return sel.params


def evaluate_model(
    data: SeqDataset, spec: ModelSpec, ctx: EvalContext, grid_points: int | None = None,
    seeds: Sequence[int] = (0,), fingerprint: str | None = None,
) -> ModelResult:
    """Select on validation, then fit per seed on train + valid and score the test split.

    ``fingerprint`` is ``users_sha256(data)`` when the caller has it (computed once per data
    set); the result carries it so that its per-user array can be paired across runs.
    """
    if data.refit:
        raise ValueError("evaluate_model needs the original data set, not a refit view")
    result = ModelResult(spec.name, data.name)
    result.users_sha256 = fingerprint if fingerprint is not None else users_sha256(data)
    start = time.monotonic()
    if ctx.fits is None:
        ctx = dataclasses.replace(ctx, fits=FitCache.for_models([spec]))
    if ctx.grid_points != grid_points:  # a blend's component choice sees the same cut
        ctx = dataclasses.replace(ctx, grid_points=grid_points)
    fits = ctx.fits
    assert fits is not None  # noqa: S101 - set just above
    sel = Selection()
    try:
        select_point(data, spec, ctx, grid_points, into=sel)
    except Skip as why:
        result.tried, result.skipped = sel.tried, str(why)
        log.warning("%s on %s skipped: %s", spec.name, data.name, why)
        return result
    best, result.tried, result.valid, result.params = sel.fitted, sel.tried, sel.valid, sel.params
    if best is None:
        result.skipped = "empty grid"
        return result
    # --- the choice is made; from here on only the chosen point is fit and tested ---
    refit = data.refit_view()
    run_seeds = list(seeds) if spec.seeded else [0]
    user_ndcg = []
    for seed in run_seeds:
        seed_ctx = dataclasses.replace(ctx, seed=seed)
        chosen = best if seed == 0 else fits.fit(spec, data, result.params, seed_ctx)
        # seed 0's chosen fit was scored on validation by the selection
        valid = dict(result.valid) if seed == 0 else evaluate(chosen.scorer("valid"), data,
                                                               "valid")
        epochs = _epochs(chosen)
        final = fits.fit(spec, refit, result.params,
                         dataclasses.replace(seed_ctx, fixed_epochs=epochs))
        ranks = evaluate_ranks(final.scorer("valid"), refit, "valid", masks=("all", "none"))
        row = {"seed": seed, "valid": valid, "test": summarize(ranks["all"], DEFAULT_KS),
               "unmasked": summarize(ranks["none"], DEFAULT_KS), **_fit_info(chosen)}
        result.per_seed.append(row)
        user_ndcg.append(ndcg_per_user(ranks["all"], 10))
        log.info("%s %s seed %d: test %s", data.name, spec.name, seed, row["test"])
        if seed == run_seeds[0] and spec.history_only:
            for k in COLD_START_EVENTS:
                cold = [h[-k:] for h in refit.train]
                result.cold[f"last{k}"] = evaluate(final.scorer("valid"), refit, "valid",
                                                   histories=cold)
    result.seeds, result.deterministic = run_seeds, not spec.seeded
    test_agg = aggregate([r["test"] for r in result.per_seed])
    result.test = {k: v["mean"] for k, v in test_agg.items()}
    result.test_sd = {k: v["sd"] for k, v in test_agg.items()}
    result.unmasked = {k: v["mean"]
                       for k, v in aggregate([r["unmasked"] for r in result.per_seed]).items()}
    result.user_ndcg = np.mean(user_ndcg, axis=0)
    result.seconds = time.monotonic() - start
    return result


def is_ours(model: str) -> bool:
    return model.startswith(OURS_PREFIX)


def pick_reference(done: Sequence[ModelResult], reference: str | None = None
                   ) -> ModelResult | None:
    """``reference`` when named (None when it did not run here), else the first of
    `REFERENCE_MODELS` that ran, else the best on validation."""
    by_name = {r.model: r for r in done}
    if reference is not None:
        return by_name.get(reference)
    first = next((by_name[m] for m in REFERENCE_MODELS if m in by_name), None)
    if first is not None:
        return first
    return max(done, key=lambda r: r.valid[SELECT_METRIC], default=None)


def compare(results: Sequence[ModelResult], resamples: int = 10_000,
            reference: str | None = None) -> list[Comparison]:
    """Per data set: the reference model minus every other model, paired bootstrap CI.

    The reference is `pick_reference`'s; a data set where a named reference did not run gets
    no comparisons. The best peer (``best_peer``, the headline) is the best model on
    validation that is not one of ours: ours against our own variants is no lead over peers.
    """
    out = []
    for name in dict.fromkeys(r.dataset for r in results):
        done = [r for r in results if r.dataset == name and not r.skipped
                and r.user_ndcg is not None]
        ref = pick_reference(done, reference)
        if len(done) < 2 or ref is None:
            continue
        others = sorted((r for r in done if r is not ref),
                        key=lambda r: r.valid[SELECT_METRIC], reverse=True)
        peer = next((r for r in others if not is_ours(r.model)), None)
        for r in others:
            assert ref.user_ndcg is not None and r.user_ndcg is not None  # noqa: S101
            ci = paired_bootstrap(ref.user_ndcg, r.user_ndcg, resamples=resamples)
            out.append(Comparison(name, ref.model, r.model, ci.diff, ci.low, ci.high,
                                  ci.significant, best_peer=r is peer))
    return out


def run_eval(
    datasets: Sequence[SeqDataset],
    models: Sequence[ModelSpec],
    *,
    results_dir: Path | None = None,
    grid_points: int | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    ctx: EvalContext | None = None,
    resamples: int = 10_000,
    reference: str | None = None,
    fit_store: Path | None = None,
) -> tuple[list[ModelResult], list[Comparison]]:
    """Evaluate every model on every data set; with ``results_dir`` write JSON, table, chart.

    ``fit_store``: a folder of finished fits (`FitStore`); a rerun loads them instead of
    training again, so an interrupted run resumes at its last finished fit."""
    store = None if fit_store is None else FitStore(fit_store)
    ctx = dataclasses.replace(ctx or EvalContext(), grid_points=grid_points,
                              fits=FitCache.for_models(models, store))
    assert ctx.fits is not None  # noqa: S101 - set just above
    start = time.monotonic()
    settings = {"seeds": list(seeds), "bootstrap_resamples": resamples,
                "grid_sha256": grid_digest(models), "reference": reference,
                "fit_store": None if fit_store is None else str(fit_store), **ctx.settings()}
    results: list[ModelResult] = []
    comparisons: list[Comparison] = []
    for data in datasets:
        fingerprint = users_sha256(data)
        for spec in models:
            log.info("evaluating %s on %s", spec.name, data.name)
            results.append(evaluate_model(data, spec, ctx, grid_points, seeds, fingerprint))
            comparisons = compare(results, resamples, reference)
            if results_dir is not None:  # after every model: a long run keeps what it did
                write_results(results, comparisons, Path(results_dir),
                              wall_seconds=time.monotonic() - start, settings=settings)
        ctx.fits.clear()  # shared fits live for one data set
    return results, comparisons
