"""Exact search while the catalog is small, HNSW once it is large: the index a worker uses.

Below ``ann_min_items`` items an exact matrix product is both exact and fast enough; at or
above it the index builds an `AnnIndex` once from the exact vectors (a multi-threaded bulk
add), drops the exact matrix (one copy of the vectors, not two), and from then on adds and
replaces items incrementally as item events arrive. A catalog only grows (items are never
removed), so the switch goes one way. faiss is imported only when the switch happens.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llmrec_stream.retrieval.exact import ExactIndex
from llmrec_stream.retrieval.rows import check_shape

if TYPE_CHECKING:
    from llmrec_stream.config import Settings
    from llmrec_stream.retrieval.ann import AnnIndex


@dataclass(frozen=True, slots=True)
class HnswParams:
    """How the ANN side is built and searched (see `AnnIndex`; the same defaults, repeated
    here so that choosing them does not import faiss)."""

    connectivity: int = 32
    expansion_add: int = 80
    expansion_search: int = 256
    max_stale: float = 0.25


class TieredIndex:
    """`ItemIndex` that is an `ExactIndex` below ``ann_min_items`` and an `AnnIndex` from there."""

    def __init__(
        self, dim: int, ann_min_items: int = 50_000, hnsw: HnswParams | None = None
    ) -> None:
        if ann_min_items < 1:
            raise ValueError(f"ann_min_items must be >= 1, got {ann_min_items}")
        self._dim = dim
        self.ann_min_items = ann_min_items
        self.hnsw = hnsw or HnswParams()
        self._exact: ExactIndex | None = ExactIndex(dim)
        self._ann: AnnIndex | None = None

    @classmethod
    def from_settings(cls, dim: int, settings: Settings) -> TieredIndex:
        hnsw = HnswParams(
            connectivity=settings.ann_connectivity,
            expansion_search=settings.ann_expansion_search,
            max_stale=settings.ann_max_stale,
        )
        return cls(dim, settings.ann_min_items, hnsw)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        """``exact`` or ``ann``: which side answers searches now."""
        return "exact" if self._ann is None else "ann"

    @property
    def active(self) -> ExactIndex | AnnIndex:
        index = self._exact if self._ann is None else self._ann
        assert index is not None  # noqa: S101 - exactly one side is set
        return index

    def __len__(self) -> int:
        return len(self.active)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.active

    def upsert(self, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Add or replace items; switches to ANN when the catalog reaches the threshold."""
        check_shape(ids, vectors, self._dim)
        exact = self._exact
        if exact is not None:
            grown = len(exact) + sum(1 for i in dict.fromkeys(ids) if i not in exact)
            if grown < self.ann_min_items:
                exact.upsert(ids, vectors)
                return
            if len(exact):  # fold the batch in, then build the graph from all vectors at once
                exact.upsert(ids, vectors)
                ids, vectors = exact.ids, exact.vectors
            # (a start-up load of a large catalog goes straight to the graph, no exact copy)
            self._ann, self._exact = self._new_ann(), None
        assert self._ann is not None  # noqa: S101 - exactly one side is set
        self._ann.upsert(ids, vectors)

    def _new_ann(self) -> AnnIndex:
        from llmrec_stream.retrieval.ann import AnnIndex

        return AnnIndex(
            self._dim,
            connectivity=self.hnsw.connectivity,
            expansion_add=self.hnsw.expansion_add,
            expansion_search=self.hnsw.expansion_search,
            max_stale=self.hnsw.max_stale,
        )

    def vector(self, item_id: str) -> npt.NDArray[np.float32] | None:
        return self.active.vector(item_id)

    def search(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        exclude: Sequence[Collection[str]] = (),
    ) -> list[list[tuple[str, float]]]:
        return self.active.search(queries, k, exclude)
