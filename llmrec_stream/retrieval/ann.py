"""Approximate top-k over an HNSW graph: for catalogs past ~100k items, where exact search
(one pass over the whole matrix per user) no longer fits a per-event latency budget.

Library choice: **faiss-cpu** (Meta's faiss, ``IndexHNSWFlat``, inner product). Of the three
well-known HNSW libraries:

* hnswlib's last release (0.8.0) dates from Dec 2023 and ships no wheel for this Python: every
  machine would need a C++ compiler to install it;
* usearch installs as a wheel and is keyed and removable, but its extension module crashes
  the process (SIGSEGV) when onnxruntime is imported after it (usearch 2.26.6 with
  onnxruntime 1.32.0, reproduced with a two-line import), and a stream worker imports both;
* faiss-cpu installs as a wheel, is actively released, imports cleanly with onnxruntime in
  either order, multi-threads bulk adds (OpenMP) and filters during graph search with an
  `IDSelector`.

faiss's HNSW cannot remove a vector, so a replaced item gets a new row and its old row becomes
a tombstone, filtered out inside the graph search by a bitmap selector (no over-fetch needed
for those). Tombstones still cost graph memory and search steps, so once they pass
``max_stale`` of the live items the graph is rebuilt from the live vectors (amortised: at the
default 0.25, each replacement pays for about four re-insertions). Exclusion (items a user
already has) is by over-fetching: ask for ``k`` plus the number of excluded ids actually
present, drop them, and fetch wider if still short.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from llmrec_stream.cpu import usable_cores
from llmrec_stream.retrieval.protocol import Exclude, Hits, Vectors
from llmrec_stream.retrieval.rows import RowMap, RowsBacked, check_shape, last_of_each

#: Graph degree (HNSW "M"): faiss's usual 32; ef, not M, is what buys recall@100 here.
DEFAULT_CONNECTIVITY = 32
#: Candidate list while inserting ("efConstruction").
DEFAULT_EXPANSION_ADD = 80
#: Candidate list while searching ("efSearch"); raised to the fetch size when that is larger.
DEFAULT_EXPANSION_SEARCH = 256
#: Rebuild the graph when dead rows exceed this share of live items.
DEFAULT_MAX_STALE = 0.25
_CHUNK = 65_536  # rows read back at a time while rebuilding


class AnnIndex(RowsBacked):
    """`ItemIndex` over a faiss HNSW graph (inner product; vectors are unit length).

    ``threads`` is used for bulk adds (default: the cores this process may use); a
    single-query search runs on the calling thread. ``max_stale`` bounds the tombstones that
    replaced items leave (a share of the live items) before the graph is rebuilt; with
    ``auto_rebuild=False`` the owner decides when (`TieredIndex` rebuilds in the background,
    from `live` and `needs_rebuild`).
    """

    def __init__(
        self,
        dim: int,
        *,
        connectivity: int = DEFAULT_CONNECTIVITY,
        expansion_add: int = DEFAULT_EXPANSION_ADD,
        expansion_search: int = DEFAULT_EXPANSION_SEARCH,
        max_stale: float = DEFAULT_MAX_STALE,
        threads: int | None = None,
        auto_rebuild: bool = True,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if max_stale < 0:
            raise ValueError(f"max_stale must be >= 0, got {max_stale}")
        self._dim = dim
        self._connectivity = connectivity
        self._expansion_add = expansion_add
        self._threads = threads if threads is not None else usable_cores()
        self._expansion_search = expansion_search
        self._max_stale = max_stale
        self._auto_rebuild = auto_rebuild
        self._index = self._new_graph()
        self._rows = RowMap()
        self._keep: npt.NDArray[np.uint8] | None = None  # packed live-row bitmap, cached
        self.rebuilds = 0

    def _new_graph(self) -> faiss.IndexHNSWFlat:
        index = faiss.IndexHNSWFlat(self._dim, self._connectivity, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self._expansion_add
        return index

    @property
    def expansion_search(self) -> int:
        return self._expansion_search

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        """Trade recall for latency at run time (no rebuild)."""
        if value < 1:
            raise ValueError(f"expansion_search must be >= 1, got {value}")
        self._expansion_search = value

    @property
    def tombstones(self) -> int:
        """Rows left behind by replaced items (still in the graph, never returned)."""
        return self._rows.dead

    @property
    def needs_rebuild(self) -> bool:
        """Tombstones are past ``max_stale`` of the live items."""
        return self._rows.dead > self._max_stale * len(self._rows)

    @property
    def memory_bytes(self) -> int:
        """Vectors plus graph links, as faiss stores them (the id maps not included)."""
        hnsw = self._index.hnsw
        # faiss's bundled stubs lag its SWIG API: these attributes exist at run time
        links = (
            hnsw.neighbors.size() * 4  # type: ignore[attr-defined]
            + hnsw.offsets.size() * 8  # type: ignore[attr-defined]
            + hnsw.levels.size() * 4
        )
        return int(self._index.ntotal * self._dim * 4 + links)

    def upsert(self, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Add items (one multi-threaded batch); a known id gets a new row, the old one dies.

        Past ``max_stale`` dead rows per live item, the graph is rebuilt without them.
        """
        check_shape(ids, vectors, self._dim)
        # The last vector wins when an id repeats within the batch, as in ExactIndex.
        last = last_of_each(ids)
        if not last:
            return
        if len(last) < len(ids):
            positions = np.fromiter(last.values(), dtype=np.int64, count=len(last))
            vectors = vectors[positions]
        for item_id in last:
            self._rows.move(item_id)
        self._keep = None
        self._add(np.ascontiguousarray(vectors, dtype=np.float32))
        if self._auto_rebuild and self.needs_rebuild:
            self.rebuild()

    def live(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """The live items and their vectors, in row order (a copy: the graph may change on)."""
        ids, rows = self.live_rows()
        chunks = [self.read_rows(rows[at : at + _CHUNK]) for at in range(0, len(rows), _CHUNK)]
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, self._dim), np.float32)
        return ids, vectors

    def live_rows(self) -> tuple[list[str], npt.NDArray[np.int64]]:
        """The live items and their rows, in row order (rows never change once written)."""
        rows = self._rows.live_rows()
        return [self._rows.id_at(r) for r in rows.tolist()], rows

    def read_rows(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """A copy of the vectors in these rows (not safe during an ``upsert``: it may move
        the storage)."""
        if not len(rows):
            return np.zeros((0, self._dim), np.float32)
        return np.asarray(self._index.reconstruct_batch(rows), dtype=np.float32)

    def rebuild(self) -> None:
        """A fresh graph of the live items only (drops every tombstone)."""
        ids, vectors = self.live()
        self._index, self._rows, self._keep = self._new_graph(), RowMap(), None
        for item_id in ids:
            self._rows.move(item_id)
        self._add(vectors)
        self.rebuilds += 1

    def _add(self, batch: npt.NDArray[np.float32]) -> None:
        previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self._threads)
        try:
            self._index.add(batch)
        finally:
            faiss.omp_set_num_threads(previous)

    def vector(self, item_id: str) -> npt.NDArray[np.float32] | None:
        row = self._rows.get(item_id)
        if row is None:
            return None
        return np.asarray(self._index.reconstruct(row), dtype=np.float32)

    def search(self, queries: Vectors, k: int, exclude: Exclude = ()) -> Hits:
        """Top-k (id, inner product) per query, best first (ties: id ascending)."""
        n = len(self._rows)
        if n == 0 or len(queries) == 0 or k < 1:
            return [[] for _ in range(len(queries))]
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self._dim)
        k = min(k, n)
        skip: list[frozenset[int]] = [frozenset(self._rows.rows_of(ex)) for ex in exclude]
        skip += [frozenset()] * (len(queries) - len(skip))
        fetch = k + max(len(s) for s in skip)
        out: list[list[tuple[str, float]]] = [[] for _ in range(len(queries))]
        todo = list(range(len(queries)))
        while todo:
            count = min(n, fetch)
            scores, rows = self._query(queries[todo], count)
            short: list[int] = []
            for at, q in enumerate(todo):
                hits = [
                    (self._rows.id_at(row), score)
                    for row, score in zip(rows[at].tolist(), scores[at].tolist(), strict=True)
                    if row >= 0 and row not in skip[q]
                ]
                hits.sort(key=lambda h: (-h[1], h[0]))
                out[q] = hits[:k]
                # The graph can come back short (a small ef, many filtered rows): go wider.
                if len(hits) < min(k, n - len(skip[q])) and count < n:
                    short.append(q)
            todo, fetch = short, 2 * fetch
        return out

    def _query(
        self, queries: npt.NDArray[np.float32], count: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = max(self._expansion_search, count)
        keep: Any = None
        if self._rows.dead:
            if self._keep is None:
                self._keep = np.packbits(self._rows.alive(), bitorder="little")
            keep = self._keep  # held here: the selector reads it during the search
            params.sel = faiss.IDSelectorBitmap(self._rows.size, faiss.swig_ptr(keep))
        scores, rows = self._index.search(queries, count, params=params)
        return scores, rows
