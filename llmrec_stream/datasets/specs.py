"""What a model is to the harness (`ModelSpec`), what a fit may use (`EvalContext`), and the
registry model packages add their specs to.

The registry keeps the arrows one way: ``trainer/specs.py`` registers its torch models here
when it is imported; the harness's CLI imports the providers it is asked for by module name
(`PROVIDERS`), at call time, so ``eval/`` never imports ``trainer/`` at import time and the
harness core needs no torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
