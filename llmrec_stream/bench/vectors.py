"""Synthetic catalogs for the retrieval benchmark: random but clustered unit vectors.

Text embeddings of a catalog are not uniform on the sphere: items bunch around topics, and a
user's profile sits inside the topics the user reads. Uniform random vectors would make every
neighbour list a coin toss (nothing for an index to exploit) and a single tight blob would make
it trivial; a mixture of Gaussian clusters sits between. ``spread`` sets how tight a cluster
is: at 1.0 an item's cosine to its centre is about 0.7, and two items of one topic about 0.5,
which is where all-MiniLM-L6-v2 puts related product texts. Inside a cluster the noise is
isotropic in all 384 dimensions, the hard case for a graph index (real embeddings have a
lower intrinsic dimension), so recall measured here is a floor rather than a flattering figure.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

DEFAULT_DIM = 384


def default_clusters(n: int) -> int:
    """About sqrt(n) topics: 100 for 10k items, 1,000 for 1M (1,000 items per topic)."""
    return max(8, round(math.sqrt(n)))


def clustered_vectors(
    n: int,
    dim: int = DEFAULT_DIM,
    *,
    clusters: int | None = None,
    spread: float = 1.0,
    seed: int = 0,
    centers: npt.NDArray[np.float32] | None = None,
    chunk: int = 65_536,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """`n` unit vectors drawn around random cluster centres; returns (vectors, centres).

    Pass the ``centers`` of a catalog to draw queries from the same topics. Generated in
    chunks so a 1M x 384 catalog needs no float64 temporaries of its full size.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    if centers is None:
        k = clusters if clusters is not None else default_clusters(n)
        centers = _unit(rng.standard_normal((k, dim), dtype=np.float32))
    out = np.empty((n, dim), dtype=np.float32)
    scale = np.float32(spread / math.sqrt(dim))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        topic = rng.integers(0, len(centers), size=stop - start)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = _unit(centers[topic] + scale * noise)
    return out, centers


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
