"""Item ids ↔ rows of an index's vector storage: the bookkeeping both indexes share.

``ExactIndex`` overwrites a replaced item's row in place (``place``); an HNSW graph cannot
remove a vector, so ``AnnIndex`` gives the item a new row and the old one dies (``move``),
to be filtered out of searches and dropped at the next rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt


class RowMap:
    """Which row holds which item, and which rows are still the current one of their item."""

    def __init__(self) -> None:
        self._row: dict[str, int] = {}
        self._ids: list[str] = []  # row -> id; a dead row keeps the id it had
        self._alive = np.zeros(1024, dtype=np.bool_)  # row -> live; grown by doubling
        self._dead = 0

    def __len__(self) -> int:
        """Live items."""
        return len(self._row)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    @property
    def size(self) -> int:
        """Rows in use, dead ones included."""
        return len(self._ids)

    @property
    def dead(self) -> int:
        return self._dead

    def get(self, item_id: str) -> int | None:
        return self._row.get(item_id)

    def id_at(self, row: int) -> str:
        return self._ids[row]

    def rows_of(self, item_ids: Iterable[str]) -> list[int]:
        """The rows of those ids that are known (unknown ids are skipped)."""
        return [r for i in item_ids if (r := self._row.get(i)) is not None]

    def ids(self) -> list[str]:
        """Live ids in row order."""
        if not self._dead:
            return list(self._ids)
        return [self._ids[r] for r in self.live_rows().tolist()]

    def live_rows(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.alive()).astype(np.int64)

    def alive(self) -> npt.NDArray[np.bool_]:
        """A bool per row (a view: read it before the next ``place`` or ``move``)."""
        return self._alive[: len(self._ids)]

    def place(self, item_id: str) -> int:
        """The item's row: its current one, or a new row at the end."""
        row = self._row.get(item_id)
        return self._append(item_id) if row is None else row

    def move(self, item_id: str) -> int:
        """A new row at the end for the item; its previous row, if any, dies."""
        old = self._row.get(item_id)
        if old is not None:
            self._alive[old] = False
            self._dead += 1
        return self._append(item_id)

    def _append(self, item_id: str) -> int:
        row = len(self._ids)
        if row == len(self._alive):
            grown = np.zeros(2 * row, dtype=np.bool_)
            grown[:row] = self._alive
            self._alive = grown
        self._alive[row] = True
        self._ids.append(item_id)
        self._row[item_id] = row
        return row


def last_of_each(ids: Sequence[str]) -> dict[str, int]:
    """Position of the last occurrence of each id (the vector that wins in a batch)."""
    return {item_id: at for at, item_id in enumerate(ids)}


def check_shape(ids: Sequence[str], vectors: npt.NDArray[np.float32], dim: int) -> None:
    if vectors.shape != (len(ids), dim):
        raise ValueError(f"expected vectors of shape ({len(ids)}, {dim})")


class RowsBacked:
    """``dim``, ``len`` and membership of an index whose items are a `RowMap` (``_rows``)."""

    _dim: int
    _rows: RowMap

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows
