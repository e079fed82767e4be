"""What an evaluation run yields: one `ModelResult` per model and data set, and the paired
`Comparison`s of the reference model with the others (`harness` makes them, `report` writes
them; apart from both so that neither imports the other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass
class ModelResult:
    model: str
    dataset: str
    params: dict[str, Any] = field(default_factory=dict)
    #: Seed-0 validation metrics of the chosen point (what selected it).
    valid: dict[str, float] = field(default_factory=dict)
    #: Means over seeds (all history masked); ``test_sd`` the sample sd; ``unmasked`` the
    #: RecBole-style means (nothing masked).
    test: dict[str, float] = field(default_factory=dict)
    test_sd: dict[str, float] = field(default_factory=dict)
    unmasked: dict[str, float] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    #: The model does not depend on a seed (one run stands for all).
    deterministic: bool = False
    per_seed: list[dict[str, Any]] = field(default_factory=list)
    cold: dict[str, dict[str, float]] = field(default_factory=dict)
    tried: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str = ""
    #: sha256 of the test split's users and targets in order (`datasets.sequences.users_sha256`):
    #: per-user arrays of two results pair user by user only when these agree ("" in results
    #: written before the fingerprint existed).
    users_sha256: str = ""
    #: Per-user test NDCG@10, mean over seeds (for the bootstrap; not written to JSON).
    user_ndcg: npt.NDArray[np.float64] | None = field(default=None, repr=False)


@dataclass
class Comparison:
    dataset: str
    reference: str
    other: str
    diff: float
    low: float
    high: float
    significant: bool
    best_peer: bool = False
