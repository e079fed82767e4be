"""The contract of a ranking model as the worker serves it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from llmrec_stream.profiles.store import ProfileState
    from llmrec_stream.retrieval.protocol import ItemIndex

#: Top-k ``(item id, score)``, best first.
TopK = list[tuple[str, float]]
#: What a ranker says for one user: the version that ranked them and their top-k, or None
#: when it has no signal for them yet (nothing is published then).
Ranked = tuple[str, TopK] | None


class Ranker(Protocol):
    """Ranks the catalog for the profiles of one micro-batch; its version tags every output."""

    @property
    def version(self) -> str: ...

    def rank(self, states: Sequence[ProfileState], k: int, index: ItemIndex) -> list[Ranked]:
        """One entry per profile, in order."""


def rank_by_queries(
    queries: npt.NDArray[np.float32],
    states: Sequence[ProfileState],
    k: int,
    index: ItemIndex,
    version: str,
) -> list[Ranked]:
    """Search ``index`` with one query row per profile; all-zero rows mean "no signal yet".

    Items the user bought are never recommended back.
    """
    out: list[Ranked] = [None] * len(states)
    live = [i for i in range(len(states)) if np.any(queries[i])]
    if live:
        found = index.search(queries[live], k, exclude=[states[i].bought for i in live])
        for i, top in zip(live, found, strict=True):
            out[i] = (version, top)
    return out
