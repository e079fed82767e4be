"""The contract every item index keeps, exact or approximate."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt


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

    def search(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        exclude: Sequence[Collection[str]] = (),
    ) -> list[list[tuple[str, float]]]:
        """Top-k (id, score) per query row, best first, without the excluded ids."""
