"""What a model is to the harness (`ModelSpec`), what a fit may use (`EvalContext`), and the
registry model packages add their specs to.

The registry keeps the arrows one way: ``trainer/specs.py`` registers its torch models here
when it is imported; the harness's CLI imports the providers it is asked for by module name
(`PROVIDERS`), at call time, so ``eval/`` never imports ``trainer/`` at import time and the
harness core needs no torch.
"""

from __future__ import annotations

import importlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from llmrec_stream.datasets.fitstore import FitStore
from llmrec_stream.datasets.metrics import Scorer
from llmrec_stream.datasets.sequences import SeqDataset

#: Modules that register specs when imported (with torch: imported only when asked for).
PROVIDERS: tuple[str, ...] = ("llmrec_stream.trainer.specs",)


class Fitted(Protocol):
    def scorer(self, split: str) -> Scorer: ...


@dataclass(frozen=True)
class EvalContext:
    """What fits may need beyond the data: the encoder for item text, per-run bounds, paths.

    ``max_minutes`` 0 means no wall-clock cap. ``fixed_epochs`` is set by the harness for the
    refit of a neural model: train exactly that many epochs, evaluate nothing.
    """

    encoder_dir: Path | None = None
    cache_dir: Path | None = None
    max_minutes: float = 0.0
    max_epochs: int = 200
    patience: int = 10
    threads: int = 1
    progress: bool = True
    seed: int = 0
    fixed_epochs: int | None = None
    #: The harness's grid cut (None: whole grids), for a model that chooses a component's point.
    grid_points: int | None = None
    #: The run's shared fits (`FitCache`), set by the harness; not a setting.
    fits: FitCache | None = field(default=None, repr=False, compare=False)

    def settings(self) -> dict[str, Any]:
        """The fields a results file records (everything but the fit cache)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fits"}


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
    #: The fit depends on the seed; otherwise one run stands for every seed.
    seeded: bool = True
    #: Fits of other models this one reads, ``(model, point)``; point None: any point of that
    #: model's grid. The harness keeps those fits (`FitCache`) so that the two models share them.
    reads: tuple[tuple[str, dict[str, Any] | None], ...] = ()
    #: Its fits go to the run's `FitStore`, when it has one (trained models: hours to redo).
    stored: bool = False


def point_key(params: dict[str, Any]) -> str:
    """A grid point as a canonical string (a cache key; equal points, equal keys)."""
    return json.dumps(params, sort_keys=True, default=str)


class FitCache:
    """Fits that two models of one run share, so that neither repeats the other's training.

    A blend reads its components' fits; when a component also runs as a model of its own, the
    harness fits it through this cache, so each (model, data view, point, seed, epoch count)
    is trained once (a model without a seed: once per view and point). Only the points some
    model ``reads`` are kept, ``size`` bounds the entries (least recently used out first), and
    the harness clears the cache after each data set: a dense item-item model of a 12k-item
    catalog is about 1 GB. The data set object is kept in its entry, so an ``id`` cannot be
    reused while it is cached.
    """

    def __init__(self, reads: Iterable[tuple[str, dict[str, Any] | None]] = (),
                 size: int | None = None, store: FitStore | None = None) -> None:
        self.size = size
        self.store = store
        self._keep: dict[str, set[str] | None] = {}
        self._entries: OrderedDict[tuple[Any, ...], tuple[SeqDataset, Fitted]] = OrderedDict()
        self._derived: dict[tuple[Any, ...], tuple[SeqDataset, Any]] = {}
        for name, params in reads:
            kept = self._keep.get(name, set())
            if params is None or kept is None:
                self._keep[name] = None
            else:
                self._keep[name] = kept | {point_key(params)}

    @classmethod
    def for_models(cls, specs: Iterable[ModelSpec], store: FitStore | None = None) -> FitCache:
        return cls((r for s in specs for r in s.reads), store=store)

    def __len__(self) -> int:
        return len(self._entries)

    def reads_every_point(self, name: str) -> bool:
        """Some model reads ``name`` at its validation choice, so at every point of its grid."""
        return name in self._keep and self._keep[name] is None

    def recall(self, key: tuple[Any, ...], data: SeqDataset) -> Any | None:
        """What `remember` kept for ``key`` on this data set object, or None."""
        hit = self._derived.get((*key, id(data)))
        return hit[1] if hit is not None and hit[0] is data else None

    def remember(self, key: tuple[Any, ...], data: SeqDataset, value: Any) -> None:
        """Keep a result derived from cached fits (a validation choice) until `clear`, so that
        a second model of the run does not derive it again. A bounded cache (a blend's own,
        outside a harness run) keeps none: the result would outlive the fits it came from."""
        if self.size is None:
            self._derived[(*key, id(data))] = (data, value)

    def kept(self, name: str, params: dict[str, Any]) -> bool:
        if name not in self._keep:
            return False
        points = self._keep[name]
        return points is None or point_key(params) in points

    def fit(self, spec: ModelSpec, data: SeqDataset, params: dict[str, Any],
            ctx: EvalContext) -> Fitted:
        """``spec.fit``, from the cache when a model reads this fit (and through the store,
        when there is one and the model is ``stored``)."""
        if not self.kept(spec.name, params):
            return self._fit(spec, data, params, ctx)
        seeded = (ctx.seed, ctx.fixed_epochs) if spec.seeded else ()
        key = (spec.name, id(data), point_key(params), *seeded)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is data:
            self._entries.move_to_end(key)
            return hit[1]
        fitted = self._fit(spec, data, params, ctx)
        self._entries[key] = (data, fitted)
        while self.size is not None and len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return fitted

    def _fit(self, spec: ModelSpec, data: SeqDataset, params: dict[str, Any],
             ctx: EvalContext) -> Fitted:
        if self.store is not None and spec.stored:
            return self.store.fit(spec, data, params, ctx)
        return spec.fit(data, dict(params), ctx)

    def clear(self) -> None:
        self._entries.clear()
        self._derived.clear()


_registered: list[Callable[[], list[ModelSpec]]] = []


def register(provider: Callable[[], list[ModelSpec]]) -> Callable[[], list[ModelSpec]]:
    """Add a function returning specs (usable as a decorator); registering twice is a no-op."""
    if provider not in _registered:
        _registered.append(provider)
    return provider


def registered_specs(providers: Sequence[str] = PROVIDERS) -> dict[str, ModelSpec]:
    """Every registered spec by name, after importing ``providers`` (which register)."""
    for module in providers:
        importlib.import_module(module)
    return {s.name: s for provider in _registered for s in provider()}
