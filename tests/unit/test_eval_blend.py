"""The score blend (`eval/blend.py`): its ends are its components, its grid is chosen on
validation, and its components are fit once per seed and data view, not once per grid point."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pytest
from scipy.stats import rankdata  # type: ignore[import-untyped]

from llmrec_stream.datasets.metrics import evaluate
from llmrec_stream.datasets.sequences import SeqDataset
from llmrec_stream.datasets.specs import EvalContext, FitCache, Fitted, ModelSpec
from llmrec_stream.datasets.toys import cyclic_dataset
from llmrec_stream.eval.blend import (
    BLEND_WEIGHTS,
    NORMS,
    VALIDATION_CHOICE,
    blend_spec,
    normalise,
)
from llmrec_stream.eval.harness import (
    blend_specs,
    ease_spec,
    evaluate_model,
    run_eval,
    validation_choice,
)

pytest.importorskip("torch")

CTX = EvalContext(progress=False, max_epochs=3, patience=2)


def _specs() -> dict[str, ModelSpec]:
    from llmrec_stream.datasets.specs import registered_specs

    specs = {**registered_specs(), "ease": ease_spec()}
    return {**specs, **{s.name: s for s in blend_specs(specs)}}


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Each row's full ranking of the catalog (ties share the lowest rank): the order itself."""
    return rankdata(-np.asarray(scores, np.float64)[:, 1:], method="min", axis=1)


def _all_scores(fitted: Fitted, data: SeqDataset) -> np.ndarray:
    users = np.arange(data.n_users)
    return np.asarray(fitted.scorer("valid")(users, data.inputs("valid")))


def test_the_blend_at_w1_ranks_as_ours_and_at_w0_as_ease() -> None:
    data = cyclic_dataset(n_items=25, n_users=200, length=6)
    specs = _specs()
    blend = specs["ours-ease"]
    assert {p["w"] for p in blend.grid} == set(BLEND_WEIGHTS) and len(blend.grid) == 12
    point = {"ours-ce": dict(specs["ours-ce"].grid[0]), "ease": blend.grid[0]["ease"]}
    ours = specs["ours-ce"].fit(data, dict(point["ours-ce"]), CTX)
    ease = specs["ease"].fit(data, dict(point["ease"]), CTX)
    ours_ranks, ease_ranks = _ranks(_all_scores(ours, data)), _ranks(_all_scores(ease, data))
    assert not np.array_equal(ours_ranks, ease_ranks)  # else the test could not fail
    for how in NORMS:
        at = {w: blend.fit(data, {**point, "w": w, "norm": how}, CTX) for w in (0.0, 1.0)}
        assert np.array_equal(_ranks(_all_scores(at[1.0], data)), ours_ranks), how
        assert np.array_equal(_ranks(_all_scores(at[0.0], data)), ease_ranks), how
        assert evaluate(at[1.0].scorer("valid"), data, "valid") == evaluate(
            ours.scorer("valid"), data, "valid")


def test_the_harness_blend_at_w1_reproduces_ours_under_the_same_refit_and_masking() -> None:
    """The blend's test figure at w = 1 is ours-ce's, through selection, refit and masking."""
    data = cyclic_dataset(n_items=25, n_users=200, length=6)
    specs = _specs()
    ours_spec = specs["ours-ce"]
    only_ours = blend_spec("ours-only", ours_spec, dict(ours_spec.grid[0]), specs["ease"],
                           {"lam": 50.0}, weights=(1.0,), norms=("z",))
    only_ease = blend_spec("ease-only", ours_spec, dict(ours_spec.grid[0]), specs["ease"],
                           {"lam": 50.0}, weights=(0.0,), norms=("rank",))
    ease_50 = dataclasses.replace(specs["ease"], grid=[{"lam": 50.0}])
    seeds = (0, 1)
    got_ours = evaluate_model(data, only_ours, CTX, seeds=seeds)
    want_ours = evaluate_model(data, ours_spec, CTX, grid_points=1, seeds=seeds)
    assert got_ours.test == want_ours.test and got_ours.unmasked == want_ours.unmasked
    assert [r["best_epoch"] for r in got_ours.per_seed] == [
        r["best_epoch"] for r in want_ours.per_seed]
    assert got_ours.cold == want_ours.cold
    got_ease = evaluate_model(data, only_ease, CTX, seeds=seeds)
    want_ease = evaluate_model(data, ease_50, CTX, seeds=seeds)
    assert got_ease.test == want_ease.test and got_ease.unmasked == want_ease.unmasked


def _counted(spec: ModelSpec, calls: list[tuple[str, bool, int]]) -> ModelSpec:
    def fit(data: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> Fitted:
        calls.append((spec.name, data.refit, ctx.seed))
        return spec.fit(data, params, ctx)

    return dataclasses.replace(spec, fit=fit)


def test_each_component_is_fit_once_per_seed_and_view_not_per_grid_point() -> None:
    data = cyclic_dataset(n_items=25, n_users=200, length=6)
    specs = _specs()
    calls: list[tuple[str, bool, int]] = []
    ours, ease = _counted(specs["ours-ce"], calls), _counted(specs["ease"], calls)
    blend = blend_spec("ours-ease", ours, dict(ours.grid[0]), ease, {"lam": 50.0})
    result = evaluate_model(data, blend, CTX, seeds=(0, 1))
    assert len(result.tried) == 12 and result.params["norm"] in NORMS
    assert sorted(calls) == sorted([
        ("ours-ce", False, 0), ("ours-ce", True, 0), ("ours-ce", False, 1),
        ("ours-ce", True, 1), ("ease", False, 0), ("ease", True, 0)])
    best = max(t["valid"]["ndcg@10"] for t in result.tried)
    assert result.valid["ndcg@10"] == best  # chosen on validation


def test_the_validation_choice_is_ours_ce_s_own_and_a_shared_run_trains_each_point_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ours-ease with ours-ce at its validation choice blends the point ours-ce's own row
    chooses, and in one run beside ours-ce each ours-ce fit is made once (the fit cache) and
    each of its points is scored on validation once (the kept selection)."""
    caplog.set_level(logging.INFO, logger="llmrec_stream.eval.harness")
    data = cyclic_dataset(n_items=25, n_users=200, length=6)
    specs = _specs()
    calls: list[tuple[str, bool, int]] = []
    ours, ease = _counted(specs["ours-ce"], calls), _counted(specs["ease"], calls)
    # points differing in what decides validation, so that the choice is not the first point
    ours = dataclasses.replace(ours, grid=[{**ours.grid[0], "dim": 8, "dropout": 0.9},
                                           dict(ours.grid[0])])
    blend = blend_spec("ours-ease", ours, None, ease, {"lam": 50.0},
                       choose=validation_choice)
    assert {p["ours-ce"] for p in blend.grid} == {VALIDATION_CHOICE}
    results, _ = run_eval([data], [ours, blend], seeds=(0, 1), ctx=CTX, resamples=200)
    own, blended = results
    assert own.params == ours.grid[1]  # else "the choice" could be "the first point"
    assert blended.params["ours-ce"] == own.params  # resolved in the results file
    assert [t["params"]["ours-ce"] for t in blended.tried] == [VALIDATION_CHOICE] * 12
    n_points = len(ours.grid)
    assert sorted(c for c in calls if c[0] == "ours-ce") == sorted(
        [("ours-ce", False, 0)] * n_points
        + [("ours-ce", True, 0), ("ours-ce", False, 1), ("ours-ce", True, 1)])
    assert sorted(c for c in calls if c[0] == "ease") == [("ease", False, 0), ("ease", True, 0)]
    scored = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith(f"{data.name} ours-ce {{")]
    assert len(scored) == n_points, scored
    # at w = 1 the blend is ours-ce's own row, through selection, seeds, refit and masking
    only_ours = blend_spec("ours-only", ours, None, ease, {"lam": 50.0}, weights=(1.0,),
                           norms=("z",), choose=validation_choice)
    got = evaluate_model(data, only_ours, CTX, seeds=(0, 1))
    assert got.params["ours-ce"] == own.params and got.test == own.test


def test_the_fit_cache_keeps_only_what_a_model_reads_and_forgets_on_clear() -> None:
    data = cyclic_dataset(n_items=25, n_users=200, length=6)
    calls: list[tuple[str, bool, int]] = []
    ease = _counted(ease_spec(), calls)
    fits = FitCache([("ease", {"lam": 50.0})])
    first = fits.fit(ease, data, {"lam": 50.0}, CTX)
    assert fits.fit(ease, data, {"lam": 50.0}, dataclasses.replace(CTX, seed=3)) is first
    assert fits.fit(ease, data.refit_view(), {"lam": 50.0}, CTX) is not first
    fits.fit(ease, data, {"lam": 10.0}, CTX)  # not read by any model: fit, not kept
    fits.fit(ease, data, {"lam": 10.0}, CTX)
    assert len(fits) == 2 and len(calls) == 4
    assert data.refit_view() is data.refit_view() and data.refit_view().parent is data
    fits.clear()
    assert len(fits) == 0 and fits.fit(ease, data, {"lam": 50.0}, CTX) is not first
    bounded = FitCache([("ease", None)], size=1)
    one = bounded.fit(ease, data, {"lam": 10.0}, CTX)
    bounded.fit(ease, data, {"lam": 50.0}, CTX)
    assert len(bounded) == 1 and bounded.fit(ease, data, {"lam": 10.0}, CTX) is not one


def test_normalise_is_per_row_and_ignores_the_padding_column() -> None:
    scores = np.array([[99.0, 1.0, 2.0, 3.0], [-5.0, 4.0, 4.0, 4.0]])
    z = normalise(scores, "z")
    assert z[:, 0].tolist() == [0.0, 0.0]
    assert np.allclose(z[0, 1:], [-1.2247449, 0.0, 1.2247449]) and not z[1].any()
    assert normalise(scores, "rank")[:, 1:].tolist() == [[1 / 3, 2 / 3, 1.0], [2 / 3] * 3]
    with pytest.raises(ValueError, match="non-finite"):
        normalise(np.array([[0.0, np.nan]]), "z")


def test_the_cli_builds_ours_ease_from_the_registered_ours_ce_and_ease() -> None:
    from llmrec_stream.eval.cli import model_specs
    from llmrec_stream.trainer.specs import HYBRID_GRID

    (spec,) = model_specs(["ours-ease"])
    assert spec.name == "ours-ease" and spec.seeded and spec.history_only
    assert HYBRID_GRID  # the component's own grid, from which its validation choice is made
    assert all(p["ours-ce"] == VALIDATION_CHOICE and p["ease"] == {"lam": 50.0}
               for p in spec.grid)
    assert {(p["w"], p["norm"]) for p in spec.grid} == {
        (w, n) for w in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) for n in ("z", "rank")}
