"""Exact top-k by one matrix product: right for catalogs up to ~100k items on a CPU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from llmrec_stream.retrieval.protocol import Exclude, Hits, Vectors
from llmrec_stream.retrieval.rows import RowMap, RowsBacked, check_shape


class ExactIndex(RowsBacked):
    """Item vectors in one growable float32 matrix; search is ``Q @ Mᵀ`` plus argpartition."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self._dim = dim
        self._matrix = np.zeros((max(capacity, 1), dim), dtype=np.float32)
        self._rows = RowMap()  # rows are overwritten in place: none ever dies
        self._shared = 0  # rows [0, _shared) of _matrix are lent out by `snapshot`

    @property
    def ids(self) -> list[str]:
        """Item ids in row order (a copy)."""
        return self._rows.ids()

    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        """The item vectors in row order, as ``ids`` (a read-only view, no copy)."""
        view = self._matrix[: len(self._rows)]
        view.flags.writeable = False
        return view

    def snapshot(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """``ids`` and ``vectors`` as they are now, for another thread to read while this
        index goes on changing: no copy now; the first later upsert that would overwrite one
        of these rows in place copies the matrix first (copy on write)."""
        self._shared = len(self._rows)
        return self.ids, self.vectors

    def upsert(self, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        check_shape(ids, vectors, self._dim)
        for item_id, vec in zip(ids, vectors, strict=True):
            row = self._rows.place(item_id)
            if row < self._shared:  # a lent row: write to a copy, never under the reader
                self._matrix, self._shared = self._matrix.copy(), 0
            if row == self._matrix.shape[0]:
                grown = np.zeros((2 * row, self._dim), dtype=np.float32)
                grown[:row] = self._matrix
                self._matrix, self._shared = grown, 0
            self._matrix[row] = vec

    def vector(self, item_id: str) -> npt.NDArray[np.float32] | None:
        row = self._rows.get(item_id)
        return None if row is None else self._matrix[row].copy()

    def search(self, queries: Vectors, k: int, exclude: Exclude = ()) -> Hits:
        n = len(self._rows)
        if n == 0 or len(queries) == 0:
            return [[] for _ in range(len(queries))]
        scores = queries.astype(np.float32) @ self._matrix[:n].T
        for q, excluded in enumerate(exclude):
            scores[q, self._rows.rows_of(excluded)] = -np.inf
        k = min(k, n)
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
        out: list[list[tuple[str, float]]] = []
        for q in range(len(queries)):
            # every row scoring at least the k-th score (ties at the cut included), then a
            # total order: score descending, item id ascending; so ties never depend on
            # insertion order
            cut = np.flatnonzero(scores[q] >= kth[q])
            cand = sorted(
                (-float(scores[q, r]), self._rows.id_at(r))
                for r in cut.tolist()
                if np.isfinite(scores[q, r])
            )
            out.append([(item_id, -neg) for neg, item_id in cand[:k]])
        return out
