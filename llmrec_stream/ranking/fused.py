"""The built-in ranker: the fused profile itself is the query (no trained model needed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llmrec_stream.profiles.fusion import fuse
from llmrec_stream.ranking.protocol import Ranked, rank_by_queries

if TYPE_CHECKING:
    from llmrec_stream.profiles.store import ProfileState
    from llmrec_stream.retrieval.protocol import ItemIndex


class FusedProfileRanker:
    """Scores items by cosine to the mix of the user's text and behaviour directions.

    It is also the cold-start fallback once trained models exist: it needs nothing but the
    profile the pipeline keeps.
    """

    def __init__(self, mix_text: float = 0.5) -> None:
        self.mix_text = mix_text

    @property
    def version(self) -> str:
        return f"fused-v1(mix_text={self.mix_text:g})"

    def queries(self, states: Sequence[ProfileState]) -> npt.NDArray[np.float32]:
        if not states:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([fuse(s.text, s.behaviour, self.mix_text) for s in states])

    def rank(self, states: Sequence[ProfileState], k: int, index: ItemIndex) -> list[Ranked]:
        return rank_by_queries(self.queries(states), states, k, index, self.version)
