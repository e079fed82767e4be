"""A score blend of two harness models: ``w * norm(a) + (1 - w) * norm(b)`` per user.

Why a spec and not a new model: the blend must reuse the components exactly as the harness
fits them (the same fit functions, the same refit rule, the same history masking), so that
at ``w = 1`` it *is* model ``a`` and at ``w = 0`` model ``b``. Its grid is the blend weight
and the per-user normalisation, declared before any run and chosen on validation like every
other grid. Each component's point is either fixed in the blend's declaration or, for ``a``,
"the validation choice": on each data set ``a``'s own grid is fit with seed 0 on the training
sequences and the point with the best validation NDCG@10 is blended, by the harness's own
selection (`harness.select_point`, passed in as ``choose``), so the blend never sees a test
target before its choice either.

Each grid point would otherwise refit both components: the fits go through the run's
`FitCache` (the harness's, shared with the components' own rows when they run in the same
run), keyed by (data view, component, point, seed, epoch count), so a twelve-point grid costs
one fit of each component per seed and data view, and ``a``'s grid costs nothing extra when
``a`` runs as a model of its own beside the blend.

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

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata  # type: ignore[import-untyped]

from llmrec_stream.datasets.metrics import Scorer
from llmrec_stream.datasets.sequences import IntArray, SeqDataset
from llmrec_stream.datasets.specs import EvalContext, FitCache, Fitted, ModelSpec

NORMS: tuple[str, ...] = ("z", "rank")
#: The blend weights of model ``a``, frozen before any run (0 is ``b`` alone, 1 ``a`` alone).
BLEND_WEIGHTS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: A component point that is the component's own validation choice on each data set.
VALIDATION_CHOICE = "validation choice"
#: ``choose(spec, data, ctx) -> point``: a component's validation choice on ``data``.
Choose = Callable[[ModelSpec, SeqDataset, EvalContext], dict[str, Any]]


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
    epoch count its validation run chose and reports how that run stopped. ``point`` is the
    grid point as fit, a validation choice resolved to the component's point."""

    a: Fitted
    b: Fitted
    w: float
    how: str
    result: Any = None
    point: dict[str, Any] = field(default_factory=dict)

    def scorer(self, split: str) -> Scorer:
        score_a, score_b = self.a.scorer(split), self.b.scorer(split)

        def score(users: IntArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float64]:
            return blend_scores(score_a(users, histories), score_b(users, histories), self.w,
                                self.how)

        return score


def blend_spec(
    name: str, a: ModelSpec, a_params: dict[str, Any] | None, b: ModelSpec,
    b_params: dict[str, Any], weights: Sequence[float] = BLEND_WEIGHTS,
    norms: Sequence[str] = NORMS, choose: Choose | None = None,
) -> ModelSpec:
    """``name`` blends ``a`` at ``a_params`` with ``b`` at ``b_params``; grid: norm x weight.

    ``a_params`` None: ``a`` at its own validation choice on each data set, made by ``choose``
    (the harness passes its own selection, `harness.validation_choice`) on the original data
    set, once per data set.
    Every grid point names the component points too, so the results file and the grid digest
    say exactly what was blended. Only ``a`` may train by epochs: the harness's refit passes
    one epoch count (``a``'s, from its validation run) and both components see it.
    """
    if a_params is None and choose is None:
        raise ValueError(f"{name}: a validation choice of {a.name} needs `choose`")
    reads = ((a.name, None if a_params is None else dict(a_params)), (b.name, dict(b_params)))
    local = FitCache(reads, size=4)  # for a fit called outside a harness run
    choices: dict[int, tuple[SeqDataset, dict[str, Any]]] = {}
    a_point: Any = VALIDATION_CHOICE if a_params is None else dict(a_params)
    grid = [{"w": float(w), "norm": how, a.name: a_point, b.name: dict(b_params)}
            for how in norms for w in weights]

    def resolve(data: SeqDataset, ctx: EvalContext) -> dict[str, Any]:
        original = data.parent if data.refit else data
        if original is None:
            raise ValueError(f"{data.name}: a refit view without its original data set")
        hit = choices.get(id(original))
        if hit is None or hit[0] is not original:
            assert choose is not None  # noqa: S101 - checked when the spec was built
            hit = choices[id(original)] = (original, dict(choose(a, original, ctx)))
        return hit[1]

    def fit(data: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> Blended:
        if ctx.fits is None:
            ctx = dataclasses.replace(ctx, fits=local)
        fits = ctx.fits
        assert fits is not None  # noqa: S101 - set just above
        point = dict(params)
        if point[a.name] == VALIDATION_CHOICE:
            point[a.name] = resolve(data, ctx)
        fitted_a = fits.fit(a, data, point[a.name], ctx)
        fitted_b = fits.fit(b, data, point[b.name], ctx)
        return Blended(fitted_a, fitted_b, float(point["w"]), str(point["norm"]),
                       result=getattr(fitted_a, "result", None), point=point)

    return ModelSpec(name, fit, grid, history_only=a.history_only and b.history_only,
                     seeded=a.seeded or b.seeded, reads=reads)
