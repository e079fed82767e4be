"""The fit store (`datasets/fitstore.py`): a rerun loads the finished fits instead of training
them, with the same figures, and any change of what a fit depends on trains afresh."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from llmrec_stream.datasets.fitstore import FitStore
from llmrec_stream.datasets.sequences import SeqDataset
from llmrec_stream.datasets.specs import EvalContext, FitCache, Fitted, ModelSpec
from llmrec_stream.datasets.toys import cyclic_dataset
from llmrec_stream.eval.harness import evaluate_model, run_eval

pytest.importorskip("torch")

CTX = EvalContext(progress=False, max_epochs=3, patience=2)


def _counted(calls: list[tuple[bool, int, int | None]]) -> ModelSpec:
    from llmrec_stream.datasets.specs import registered_specs

    spec = registered_specs()["ours-ce"]
    assert spec.stored

    def fit(data: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> Fitted:
        calls.append((data.refit, ctx.seed, ctx.fixed_epochs))
        return spec.fit(data, params, ctx)

    return dataclasses.replace(spec, fit=fit, grid=list(spec.grid)[:2])


def test_a_rerun_loads_every_fit_and_reports_the_same_figures(tmp_path: Path) -> None:
    data = cyclic_dataset(n_items=25, n_users=200, length=6)
    calls: list[tuple[bool, int, int | None]] = []
    spec = _counted(calls)
    first, _ = run_eval([data], [spec], seeds=(0, 1), ctx=CTX, resamples=100,
                        fit_store=tmp_path / "fits", results_dir=tmp_path / "a")
    trained = len(calls)
    assert trained == 2 + 1 + 2  # two grid points; refit of seed 0; seed 1's fit and refit
    assert len(list((tmp_path / "fits").glob("*.pkl"))) == trained
    again, _ = run_eval([cyclic_dataset(n_items=25, n_users=200, length=6)], [spec],
                        seeds=(0, 1), ctx=CTX, resamples=100, fit_store=tmp_path / "fits")
    assert len(calls) == trained  # nothing trained again
    (a,), (b,) = first, again
    assert (a.params, a.valid, a.test, a.unmasked, a.per_seed) == (
        b.params, b.valid, b.test, b.unmasked, b.per_seed)
    assert (a.user_ndcg == b.user_ndcg).all()


def test_what_a_fit_depends_on_is_in_its_key(tmp_path: Path) -> None:
    data = cyclic_dataset(n_items=25, n_users=200, length=6)
    calls: list[tuple[bool, int, int | None]] = []
    spec = _counted(calls)
    store = FitStore(tmp_path)
    params = dict(spec.grid[0])
    keys = {store.key(spec, data, params, CTX)}
    for other in (dataclasses.replace(CTX, seed=1), dataclasses.replace(CTX, patience=3),
                  dataclasses.replace(CTX, threads=2), dataclasses.replace(CTX, fixed_epochs=2)):
        keys.add(store.key(spec, data, params, other))
    keys.add(store.key(spec, data, dict(spec.grid[1]), CTX))
    keys.add(store.key(spec, data.refit_view(), params, CTX))
    keys.add(store.key(spec, cyclic_dataset(n_items=25, n_users=201, length=6), params, CTX))
    assert len(keys) == 8
    # a fit is trained once per key, and an unreadable file is trained again, not a crash
    cache = FitCache(store=store)
    cache.fit(spec, data, params, CTX)
    cache.fit(spec, data, params, CTX)
    assert len(calls) == 1 and store.loaded == 1
    (path,) = tmp_path.glob("*.pkl")
    path.write_bytes(b"not a pickle")
    cache.fit(spec, data, params, CTX)
    assert len(calls) == 2 and store.saved == 2


def test_only_stored_models_go_to_the_store(tmp_path: Path) -> None:
    from llmrec_stream.eval.harness import ease_spec

    data = cyclic_dataset(n_items=25, n_users=200, length=6)
    ease = ease_spec()
    assert not ease.stored
    evaluate_model(data, ease, dataclasses.replace(
        CTX, fits=FitCache(store=FitStore(tmp_path))), seeds=(0,))
    assert not list(tmp_path.iterdir())
