"""The contract of a ranking model as the worker serves it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from llmrec_stream.profiles.store import ProfileState


class Ranker(Protocol):
    """Turns profiles into query vectors in the item space; its version tags every output."""

    @property
    def version(self) -> str: ...

    def queries(self, states: Sequence[ProfileState]) -> npt.NDArray[np.float32]:
        """One query row per profile; an all-zero row means "no signal yet"."""
