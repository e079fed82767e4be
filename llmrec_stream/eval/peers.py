"""Non-sequential peers: popularity, EASE, item-KNN, and BPR and ALS from `implicit`.

Every peer trains on ``data.train`` and nothing else. The harness applies one refit rule to
every model: grid points are compared on the validation split of a fit on the training
sequences; the test figure comes from a fresh fit, with the chosen hyper-parameters, on the
training sequences plus the validation item (``SeqDataset.refit_view``), whose "valid" split is
the test split. Popularity ignores histories; EASE, item-KNN and ALS score any given history
(ALS by recomputing the user's factors), so they also serve cold histories; BPR scores a user
by the row it trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]

from llmrec_stream.datasets.metrics import Scorer
from llmrec_stream.datasets.sequences import IntArray, SeqDataset


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

    seed: int = 0

    def _model(self) -> Any:
        if "model" not in self._fitted:
            self._fitted["model"] = self._fit(interactions(self.data, "valid"))  # = train
        return self._fitted["model"]

    def _fit(self, matrix: sp.csr_matrix) -> Any:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        with threadpool_limits(1, "blas"):  # implicit threads itself; nested BLAS threads thrash
            return self._fit_unlimited(matrix)

    def _fit_unlimited(self, matrix: sp.csr_matrix) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # type: ignore[import-untyped]

        p = dict(self.params)
        algo = p.pop("algo")
        common = {"num_threads": self.threads, "random_state": self.seed}
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
        model = self._model()
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


def fit_implicit(data: SeqDataset, params: dict[str, Any], threads: int = 1,
                 seed: int = 0) -> ImplicitMF:
    fitted = ImplicitMF(data, params, threads, seed=seed)
    fitted._model()  # fit now, so the harness's timing and errors belong to the fit
    return fitted


def history_matrix(histories: Sequence[IntArray], n_cols: int) -> sp.csr_matrix:
    """Binary rows x ``n_cols`` matrix of the given histories (a repeated item counts once)."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if len(histories) else np.zeros(0, np.int64)
    mat = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                        shape=(len(histories), n_cols))
    mat.data[:] = 1.0
    return mat


@dataclass
class ItemItem:
    """A model that scores a history by ``h @ weights``: EASE and item-KNN."""

    data: SeqDataset
    params: dict[str, Any]
    weights: Any  # dense ndarray (EASE) or csr matrix (item-KNN), (n + 1) x (n + 1)

    def scorer(self, split: str) -> Scorer:
        n = self.data.n_items + 1

        def score(users: IntArray, histories: Sequence[IntArray]) -> npt.NDArray[np.float32]:
            out = history_matrix(histories, n) @ self.weights
            out = out.toarray() if sp.issparse(out) else out
            return np.asarray(out, dtype=np.float32)

        return score


def spd_inverse(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Inverse of a symmetric positive-definite matrix by Cholesky (about half LU's work).

    ``matrix`` is overwritten: EASE's Gram matrix is 1 GB on Beauty and not needed after.
    """
    from scipy.linalg import lapack  # type: ignore[import-untyped]

    chol, info = lapack.dpotrf(matrix, lower=0, clean=0, overwrite_a=1)
    if info:
        raise np.linalg.LinAlgError(f"matrix not positive definite (dpotrf info {info})")
    inv, info = lapack.dpotri(chol, lower=0, overwrite_c=1)
    if info:
        raise np.linalg.LinAlgError(f"dpotri failed (info {info})")
    upper = np.triu(inv)
    return upper + np.triu(upper, 1).T


def fit_ease(data: SeqDataset, params: dict[str, Any], threads: int = 1) -> ItemItem:
    """EASE (Steck, WWW 2019): ``B = I - P diag(1/diag(P))``, ``P = (X'X + lambda I)^-1``.

    Closed form, so no seed: the one hyper-parameter is the L2 weight ``lam``.
    """
    from threadpoolctl import threadpool_limits

    lam = float(params["lam"])
    if lam <= 0:
        raise ValueError(f"EASE needs lam > 0, got {lam}")
    x = interactions(data, "valid")  # the training sequences
    with threadpool_limits(threads, "blas"):
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += lam
        p = spd_inverse(gram)
        del gram
        b = p / (-np.diag(p))[None, :]
        del p
    b[np.diag_indices_from(b)] = 0.0
    return ItemItem(data, params, b.astype(np.float32))


def fit_item_knn(data: SeqDataset, params: dict[str, Any], chunk: int = 2048) -> ItemItem:
    """Item-KNN: cosine similarity of item columns, each item's ``k`` nearest kept.

    ``shrink`` damps similarities built on few co-occurrences (``c / (|i||j| + shrink)``).
    """
    k, shrink = int(params["k"]), float(params.get("shrink", 0.0))
    if k < 1 or shrink < 0:
        raise ValueError(f"item-KNN needs k >= 1 and shrink >= 0, got {k}, {shrink}")
    x = interactions(data, "valid").tocsc()
    co = (x.T @ x).tocsr().astype(np.float32)
    norms = np.sqrt(co.diagonal()).astype(np.float32)
    n = co.shape[0]
    rows_out, cols_out, vals_out = [], [], []
    for start in range(0, n, chunk):
        block = co[start : start + chunk].toarray()
        block /= norms[start : start + chunk, None] * norms[None, :] + shrink + 1e-12
        block[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0
        keep = min(k, n - 1)
        top = np.argpartition(-block, keep - 1, axis=1)[:, :keep]
        vals = np.take_along_axis(block, top, axis=1)
        live = vals > 0
        rows_out.append(np.repeat(np.arange(start, start + len(block)), keep)[live.ravel()])
        cols_out.append(top.ravel()[live.ravel()])
        vals_out.append(vals.ravel()[live.ravel()])
    sim = sp.csr_matrix((np.concatenate(vals_out), (np.concatenate(rows_out),
                         np.concatenate(cols_out))), shape=(n, n))
    return ItemItem(data, params, sim)
