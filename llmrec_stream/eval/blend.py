"""A score blend of two harness models: ``w * norm(a) + (1 - w) * norm(b)`` per user.

Why a spec and not a new model: the blend must reuse the components exactly as the harness
fits them (the same fit functions, the same refit rule, the same history masking), so that
at ``w = 1`` it *is* model ``a`` and at ``w = 0`` model ``b``. Its grid is the blend weight
and the per-user normalisation, declared before any run and chosen on validation like every
other grid; the components' own hyper-parameters are fixed points of their grids, named in
the blend's declaration.

Each grid point would otherwise refit both components: the fits are cached per
(data set object, component, params, seed, epoch count), so a twelve-point grid costs one fit
of each component per seed and data view, and the cache keeps only the latest few fits.

Normalisation, per user over the catalog (column 0, the padding, excluded; history items
included, because masking is the metric's job and must not change what a model scores):

* ``z``: ``(s - mean) / sd`` (a constant row becomes 0), so a unit of either model is one
  standard deviation of its own scores for that user;
* ``rank``: the average rank of each score divided by the number of items, in (0, 1], so
  only the order counts and a heavy tail (EASE's) cannot dominate.

Both are strictly increasing in the score, with ties kept tied, so the blend at ``w = 1``
ranks every item exactly as ``a`` does (``0 * norm(b)`` adds exact zeros).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata  # type: ignore[import-untyped]

from llmrec_stream.datasets.metrics import Scorer
from llmrec_stream.datasets.sequences import IntArray, SeqDataset
from llmrec_stream.datasets.specs import EvalContext, Fitted, ModelSpec

NORMS: tuple[str, ...] = ("z", "rank")
#: The blend weights of model ``a``, frozen before any run (0 is ``b`` alone, 1 ``a`` alone).
BLEND_WEIGHTS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def normalise(scores: npt.NDArray[np.floating], how: str) -> npt.NDArray[np.float64]:
    """Per-row normalised float64 copy over columns 1.. (column 0, the padding, set to 0)."""
    if how not in NORMS:
        raise ValueError(f"normalisation must be one of {NORMS}, got {how!r}")
    items = np.asarray(scores, dtype=np.float64)[:, 1:]
    if not np.isfinite(items).all():
        raise ValueError("a blend component returned non-finite scores")
    out = np.zeros((items.shape[0], items.shape[1] + 1), np.float64)
    if how == "z":
        sd = items.std(axis=1, keepdims=True)
        out[:, 1:] = np.divide(items - items.mean(axis=1, keepdims=True), sd,
                               out=np.zeros_like(items), where=sd > 0)
    else:
        out[:, 1:] = rankdata(items, method="average", axis=1) / items.shape[1]
    return out


def blend_scores(
    a: npt.NDArray[np.floating], b: npt.NDArray[np.floating], w: float, how: str
) -> npt.NDArray[np.float64]:
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"blend weight must be in [0, 1], got {w}")
    if a.shape != b.shape:
        raise ValueError(f"components scored different shapes: {a.shape} and {b.shape}")
    return w * normalise(a, how) + (1.0 - w) * normalise(b, how)


@dataclass
class Blended:
    """The fitted blend; ``result`` is ``a``'s fit result, so the harness refits ``a`` for the
    epoch count its validation run chose and reports how that run stopped."""

    a: Fitted
    b: Fitted
    w: float
    how: str
    result: Any = None

    def scorer(self, split: str) -> Scorer:
        score_a, score_b = self.a.scorer(split), self.b.scorer(split)

        def score(users: IntArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float64]:
            return blend_scores(score_a(users, histories), score_b(users, histories), self.w,
                                self.how)

        return score


@dataclass
class _FitCache:
    """The latest ``size`` fits, keyed by data set object identity and everything a fit reads.

    The data set object is kept in the entry, so an id cannot be reused while it is cached.
    """

    size: int = 4
    entries: OrderedDict[tuple[Any, ...], tuple[SeqDataset, Fitted]] = field(
        default_factory=OrderedDict)

    def get(self, spec: ModelSpec, data: SeqDataset, params: dict[str, Any],
            ctx: EvalContext) -> Fitted:
        seeded = (ctx.seed, ctx.fixed_epochs) if spec.seeded else ()
        key = (spec.name, id(data), json.dumps(params, sort_keys=True, default=str), *seeded)
        hit = self.entries.get(key)
        if hit is not None and hit[0] is data:
            self.entries.move_to_end(key)
            return hit[1]
        fitted = spec.fit(data, dict(params), ctx)
        self.entries[key] = (data, fitted)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return fitted


def blend_spec(
    name: str, a: ModelSpec, a_params: dict[str, Any], b: ModelSpec, b_params: dict[str, Any],
    weights: Sequence[float] = BLEND_WEIGHTS, norms: Sequence[str] = NORMS,
) -> ModelSpec:
    """``name`` blends ``a`` at ``a_params`` with ``b`` at ``b_params``; grid: norm x weight.

    Every grid point names the component points too, so the results file and the grid digest
    say exactly what was blended. Only ``a`` may train by epochs: the harness's refit passes
    one epoch count (``a``'s, from its validation run) and both components see it.
    """
    cache_a, cache_b = _FitCache(), _FitCache()
    grid = [{"w": float(w), "norm": how, a.name: dict(a_params), b.name: dict(b_params)}
            for how in norms for w in weights]

    def fit(data: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> Blended:
        fitted_a = cache_a.get(a, data, params[a.name], ctx)
        fitted_b = cache_b.get(b, data, params[b.name], ctx)
        return Blended(fitted_a, fitted_b, float(params["w"]), str(params["norm"]),
                       result=getattr(fitted_a, "result", None))

    return ModelSpec(name, fit, grid, history_only=a.history_only and b.history_only,
                     seeded=a.seeded or b.seeded)
