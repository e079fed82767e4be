"""The contract every item index keeps, exact or approximate."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

#: Unit-length item or query vectors, one per row.
Vectors = npt.NDArray[np.float32]
#: Per query row, the item ids its results must leave out.
Exclude = Sequence[Collection[str]]
#: Per query row, the top-k (item id, score), best first.
Hits = list[list[tuple[str, float]]]


class ItemIndex(Protocol):
    """Item vectors by id, searchable by inner product (vectors are unit length)."""

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def __contains__(self, item_id: object) -> bool: ...

    def upsert(self, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Add items or replace their vectors."""

    def vector(self, item_id: str) -> npt.NDArray[np.float32] | None:
        """The item's vector, or None if unknown."""

    def search(self, queries: Vectors, k: int, exclude: Exclude = ()) -> Hits:
        """Top-k (id, score) per query row, best first, without the excluded ids."""
