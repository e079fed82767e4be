"""Exact top-k by one matrix product: right for catalogs up to ~100k items on a CPU."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt


class ExactIndex:
    """Item vectors in one growable float32 matrix; search is ``Q @ Mᵀ`` plus argpartition."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self._dim = dim
        self._matrix = np.zeros((max(capacity, 1), dim), dtype=np.float32)
        self._ids: list[str] = []
        self._row: dict[str, int] = {}

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def upsert(self, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        if vectors.shape != (len(ids), self._dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self._dim})")
        for item_id, vec in zip(ids, vectors, strict=True):
            row = self._row.get(item_id)
            if row is None:
                row = len(self._ids)
                if row == self._matrix.shape[0]:
                    grown = np.zeros((2 * row, self._dim), dtype=np.float32)
                    grown[:row] = self._matrix
                    self._matrix = grown
                self._ids.append(item_id)
                self._row[item_id] = row
            self._matrix[row] = vec

    def vector(self, item_id: str) -> npt.NDArray[np.float32] | None:
        row = self._row.get(item_id)
        return None if row is None else self._matrix[row].copy()

    def search(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        exclude: Sequence[Collection[str]] = (),
    ) -> list[list[tuple[str, float]]]:
        n = len(self._ids)
        if n == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores = queries.astype(np.float32) @ self._matrix[:n].T
        for q, excluded in enumerate(exclude):
            scores[q, [self._row[i] for i in excluded if i in self._row]] = -np.inf
        k = min(k, n)
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
        out: list[list[tuple[str, float]]] = []
        for q in range(len(queries)):
            # every row scoring at least the k-th score (ties at the cut included), then a
            # total order: score descending, item id ascending; so ties never depend on
            # insertion order
            cut = np.flatnonzero(scores[q] >= kth[q])
            cand = sorted(
                (-float(scores[q, r]), self._ids[r]) for r in cut if np.isfinite(scores[q, r])
            )
            out.append([(item_id, -neg) for neg, item_id in cand[:k]])
        return out
