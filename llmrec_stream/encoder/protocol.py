"""The contract every text encoder meets, so callers never depend on ONNX, CUDA or torch.

Profiles, retrieval and the stream agents take a `TextEncoder`; tests can hand them a tiny
fake, and the CPU and GPU builds of the ONNX encoder are interchangeable behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextEncoder(Protocol):
    """Maps texts to unit-length float32 vectors; cosine similarity is then a dot product."""

    #: Identifies the model that made the vectors, so vectors from different models never mix.
    name: str

    @property
    def dim(self) -> int:
        """Length of each vector."""
        ...

    @property
    def providers(self) -> list[str]:
        """Execution providers actually in use (not merely requested), best first."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return float32 of shape (len(texts), dim), L2-normalised rows, in input order.

        An empty input returns shape (0, dim); a non-str item raises TypeError.
        """
        ...
