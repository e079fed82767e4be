"""Non-sequential peers: popularity, and BPR and ALS from the `implicit` library.

Every model in the harness trains on the same interactions: the training split, never a
validation target. At test time a model reads the user's history *including* the validation
item. Popularity ignores histories; ALS recomputes the user's factors from the given history
(so it also serves histories it never saw: cold start). BPR can only score a user by the row
it trained, so for the test split alone it is refit on train + validation interactions, with
the hyper-parameters chosen on validation; otherwise it could never see the validation item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from llmrec_stream.eval.data import IntArray, SeqDataset
from llmrec_stream.eval.metrics import Scorer


def interactions(data: SeqDataset, split: str) -> sp.csr_matrix:
    """Binary user x (n_items + 1) matrix of the inputs of ``split`` (column 0 stays empty)."""
    histories = data.inputs(split)
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if histories else np.zeros(0, np.int64)
    matrix = sp.csr_matrix(
        (np.ones(len(cols), np.float32), (rows, cols)),
        shape=(len(histories), data.n_items + 1),
    )
    matrix.data[:] = 1.0  # duplicates summed by the constructor count once
    return matrix


@dataclass
class Popularity:
    """Items ranked by how many training interactions they have, the same for every user."""

    data: SeqDataset
    params: dict[str, Any] = field(default_factory=dict)

    def scorer(self, split: str) -> Scorer:
        counts = np.bincount(  # training interactions only, for every split
            np.concatenate(self.data.train), minlength=self.data.n_items + 1
        ).astype(np.float32)

        def score(users: IntArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float32]:
            return np.broadcast_to(counts, (len(histories), len(counts)))

        return score


def fit_popularity(data: SeqDataset, params: dict[str, Any]) -> Popularity:
    return Popularity(data, params)


@dataclass
class ImplicitMF:
    """BPR or ALS (``params["algo"]``) from `implicit`, CPU, fixed seed."""

    data: SeqDataset
    params: dict[str, Any]
    threads: int = 1
    _fitted: dict[str, Any] = field(default_factory=dict)

    def _model(self, split: str) -> Any:
        if split not in self._fitted:
            self._fitted.clear()  # one split at a time keeps memory flat
            self._fitted[split] = self._fit(interactions(self.data, split))
        return self._fitted[split]

    def _fit(self, matrix: sp.csr_matrix) -> Any:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        with threadpool_limits(1, "blas"):  # implicit threads itself; nested BLAS threads thrash
            return self._fit_unlimited(matrix)

    def _fit_unlimited(self, matrix: sp.csr_matrix) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # type: ignore[import-untyped]

        p = dict(self.params)
        algo = p.pop("algo")
        common = {"num_threads": self.threads, "random_state": 0}
        if algo == "als":
            alpha = float(p.pop("alpha", 1.0))
            model: Any = AlternatingLeastSquares(**p, **common)
            model.fit((matrix * alpha).tocsr(), show_progress=False)
            model.alpha_ = alpha
        elif algo == "bpr":
            model = BayesianPersonalizedRanking(**p, **common)
            model.fit(matrix, show_progress=False)
        else:
            raise ValueError(f"unknown implicit algo {algo!r}")
        return model

    def scorer(self, split: str) -> Scorer:
        model = self._model(split if self.params["algo"] == "bpr" else "valid")
        items = np.asarray(model.item_factors)
        n = self.data.n_items + 1

        def score(users: IntArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float32]:
            if self.params["algo"] == "als":
                rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
                cols = np.concatenate(histories) if len(histories) else np.zeros(0, np.int64)
                vals = np.full(len(cols), model.alpha_, np.float32)
                mat = sp.csr_matrix((vals, (rows, cols)), shape=(len(histories), n))
                mat.data[:] = model.alpha_  # a repeated item counts once, as in training
                factors = np.asarray(model.recalculate_user(np.arange(len(histories)), mat))
            else:
                factors = np.asarray(model.user_factors)[users]
            return np.asarray(factors.reshape(len(histories), -1) @ items.T, dtype=np.float32)

        return score


def fit_implicit(data: SeqDataset, params: dict[str, Any], threads: int = 1) -> ImplicitMF:
    return ImplicitMF(data, params, threads)
