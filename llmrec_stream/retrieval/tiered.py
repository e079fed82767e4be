"""Exact search while the catalog is small, HNSW once it is large: the index a worker uses.

Below ``ann_min_items`` items an exact matrix product is both exact and fast enough. When an
upsert brings the catalog to the threshold, an `AnnIndex` is built from the exact vectors in
a background thread while the exact index goes on answering; then the graph takes over and
the exact matrix is dropped. From there on items are added and replaced incrementally as item
events arrive, and when replaced items' tombstones pass ``max_stale`` a fresh graph is built
the same way, in the background, while the old one answers. A catalog only grows (items are
never removed), so the switch goes one way. faiss is imported only when the switch happens.

Why a thread: building the graph takes seconds per 10k items (4-5 s at 10k on one machine,
more with 384-dim vectors on a busy one), and upserts are called from the worker's event
loop: built inline, the worker would process no events and answer no Kafka heartbeats for
that long. faiss releases the GIL while it inserts, so the loop keeps running meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llmrec_stream.retrieval.exact import ExactIndex
from llmrec_stream.retrieval.protocol import Exclude, Hits, Vectors
from llmrec_stream.retrieval.rows import check_shape

if TYPE_CHECKING:
    from llmrec_stream.config import RetrievalSettings
    from llmrec_stream.retrieval.ann import AnnIndex

log = logging.getLogger(__name__)

#: A build swaps in once the upserts logged since its last catch-up are this few, replaying
#: them under the lock (upserts wait meanwhile); until then it replays them without the lock.
_SWAP_ROWS = 256
#: At most this many catch-up rounds without the lock (the log shrinks each round, or the
#: build swaps in at once).
_CATCH_UP_ROUNDS = 8
#: Rows read from the snapshot (under the lock: a few ms) and inserted at a time.
_CHUNK = 8_192

_Reader = Callable[[int, int], npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class HnswParams:
    """How the ANN side is built and searched (see `AnnIndex`; the same defaults, repeated
    here so that choosing them does not import faiss)."""

    connectivity: int = 32
    expansion_add: int = 80
    expansion_search: int = 256
    max_stale: float = 0.25


class TieredIndex:
    """`ItemIndex` that is an `ExactIndex` below ``ann_min_items`` and an `AnnIndex` from there.

    Graphs are built in a daemon thread, one at a time, from a snapshot of the vectors; the
    current index (exact, or the old graph) answers meanwhile and takes every upsert, and the
    upserts that arrive during the build are also logged and replayed onto the new graph
    before it replaces the current index (one attribute assignment, under a lock). So every
    call answers exactly as if the graph had been built inline, only from the exact index
    (or the old graph) for a little longer. ``wait_ready`` waits for a running build.

    Memory: while a graph is built the vectors exist twice: the exact matrix (lent to the
    builder without a copy) and the new graph, or for a rebuild the old graph and the new one
    (which the builder fills a chunk of ``_CHUNK`` rows at a time). In a switch, the exact
    matrix is copied once more if an item is replaced meanwhile (copy on write), and the log
    holds a copy of each upsert made during the build.

    Blocking: searches never wait. An upsert waits at most for the builder to copy one chunk
    out of the old graph (a few ms), and, at the swap, for it to replay the last logged rows
    (at most ``_SWAP_ROWS``, unless upserts outpace the graph's inserts). The builder leaves
    one core to the event loop.

    Threads: call ``upsert`` and ``search`` from one thread (the event loop), as with any
    `ItemIndex`; the builder thread touches only its own graph and the snapshot, and the log
    and the swap under the lock. A first load that alone reaches the threshold (a start-up
    with a large catalog: nothing to answer from meanwhile) is built in the calling thread,
    with one copy of the vectors; `Catalog.bootstrap` runs it off the event loop.
    """

    def __init__(
        self, dim: int, ann_min_items: int = 50_000, hnsw: HnswParams | None = None
    ) -> None:
        if ann_min_items < 1:
            raise ValueError(f"ann_min_items must be >= 1, got {ann_min_items}")
        self._dim = dim
        self.ann_min_items = ann_min_items
        self.hnsw = hnsw or HnswParams()
        self._active: ExactIndex | AnnIndex = ExactIndex(dim)  # answers; swapped whole
        self._lock = threading.Lock()
        # Upserts since the running build's snapshot; None while no build runs.
        self._pending: list[tuple[list[str], npt.NDArray[np.float32]]] | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.builds = 0  # graphs built in the background and swapped in
        self.build_error: Exception | None = None  # the last failed build's reason

    @classmethod
    def from_settings(cls, dim: int, retrieval: RetrievalSettings) -> TieredIndex:
        """The index the ``retrieval`` section describes."""
        hnsw = HnswParams(
            connectivity=retrieval.ann_connectivity,
            expansion_search=retrieval.ann_expansion_search,
            max_stale=retrieval.ann_max_stale,
        )
        return cls(dim, retrieval.ann_min_items, hnsw)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        """``exact`` or ``ann``: which side answers searches now."""
        return "exact" if isinstance(self._active, ExactIndex) else "ann"

    @property
    def active(self) -> ExactIndex | AnnIndex:
        """The index that answers now (a graph being built is not it yet)."""
        return self._active

    @property
    def building(self) -> bool:
        """A graph is being built in the background."""
        return not self._idle.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for the running build, if any, to be swapped in (or to fail: see
        ``build_error``); False if it is still running after ``timeout`` seconds."""
        return self._idle.wait(timeout)

    def __len__(self) -> int:
        return len(self._active)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._active

    def upsert(self, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Add or replace items; starts a background graph build when the catalog reaches
        the threshold or the graph's tombstones pass ``max_stale``."""
        check_shape(ids, vectors, self._dim)
        with self._lock:
            active = self._active
            if isinstance(active, ExactIndex) and not len(active) and self._pending is None:
                if len(dict.fromkeys(ids)) >= self.ann_min_items:
                    graph = self._new_ann()
                    graph.upsert(ids, vectors)
                    self._active = graph
                    return
            if self._pending is not None:  # replayed onto the new graph before the swap
                self._pending.append((list(ids), np.array(vectors, dtype=np.float32)))
            active.upsert(ids, vectors)
            if self._pending is not None:
                return
            if isinstance(active, ExactIndex):
                if len(active) < self.ann_min_items:
                    return
                items, lent = active.snapshot()  # no copy; later writes copy on write
                read = _slicer(lent)
            elif active.needs_rebuild:
                items, rows = active.live_rows()  # vectors read by the builder, by chunks
                read = _row_reader(active, rows)
            else:
                return
            self._pending = []
            self._idle.clear()
        name = "hnsw-switch" if isinstance(active, ExactIndex) else "hnsw-rebuild"
        try:
            thread = threading.Thread(
                target=self._build, args=(items, read), name=name, daemon=True
            )
            thread.start()
        except Exception as exc:  # no thread (a process at its limit): retried later
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        log.error("building the HNSW graph failed; still answering from %s", self.kind,
                  exc_info=exc)
        with self._lock:
            self._pending, self.build_error = None, exc
        self._idle.set()

    def _build(self, ids: list[str], read: _Reader) -> None:
        """Builder thread: the graph from the snapshot, the log replayed, then the swap."""
        try:
            graph = self._new_ann()
            for at in range(0, len(ids), _CHUNK):
                # The old graph's storage moves only in upsert, which holds the lock.
                with self._lock:
                    block = read(at, at + _CHUNK)
                graph.upsert(ids[at : at + _CHUNK], block)
            del ids, read  # the snapshot: not needed past here
            behind = len(graph) + 1  # rows logged since the last catch-up (a bound, first)
            for catch_up in range(_CATCH_UP_ROUNDS + 1):
                with self._lock:
                    assert self._pending is not None  # noqa: S101 - only this thread clears it
                    batches, self._pending = self._pending, []
                    rows, behind = behind, sum(len(b) for b, _ in batches)
                    # Swap once the log is short. If it stopped shrinking, upserts outpace
                    # the graph's inserts and catching up never ends: swap now as well
                    # (overloaded: inline inserts after the swap would not keep up either).
                    if behind <= _SWAP_ROWS or behind >= rows or catch_up == _CATCH_UP_ROUNDS:
                        # Replayed holding the lock, so that no upsert slips in between; an
                        # upsert waits for these, about what they cost it after the swap.
                        self._replay(graph, batches)
                        self._active, self._pending = graph, None
                        self.builds += 1
                        self._idle.set()
                        return
                self._replay(graph, batches)  # while upserts go on (the log refills)
        except Exception as exc:  # the current index goes on answering; retried later
            self._failed(exc)

    @staticmethod
    def _replay(
        graph: AnnIndex, batches: list[tuple[list[str], npt.NDArray[np.float32]]]
    ) -> None:
        for ids, vectors in batches:
            graph.upsert(ids, vectors)

    def _new_ann(self) -> AnnIndex:
        from llmrec_stream.cpu import usable_cores
        from llmrec_stream.retrieval.ann import AnnIndex

        return AnnIndex(
            self._dim,
            connectivity=self.hnsw.connectivity,
            expansion_add=self.hnsw.expansion_add,
            expansion_search=self.hnsw.expansion_search,
            max_stale=self.hnsw.max_stale,
            auto_rebuild=False,  # rebuilt here, in the background
            threads=max(1, usable_cores() - 1),  # a core left to the event loop
        )

    def vector(self, item_id: str) -> npt.NDArray[np.float32] | None:
        return self._active.vector(item_id)

    def search(self, queries: Vectors, k: int, exclude: Exclude = ()) -> Hits:
        return self._active.search(queries, k, exclude)


def _slicer(vectors: npt.NDArray[np.float32]) -> _Reader:
    return lambda start, stop: vectors[start:stop]


def _row_reader(graph: AnnIndex, rows: npt.NDArray[np.int64]) -> _Reader:
    return lambda start, stop: graph.read_rows(rows[start:stop])
