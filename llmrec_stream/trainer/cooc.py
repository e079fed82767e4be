"""Item co-occurrence factors: a warm start for id embeddings from who-bought-what-with-what.

Matrix factorisation (ALS) is strong on catalogs where items bought by the same users go
together. A sequence model learns that signal too, but slowly and only from adjacent pairs;
starting its id embeddings from a truncated SVD of the (popularity-normalised) user x item
matrix hands it the whole co-occurrence structure on step one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped]
from scipy.sparse.linalg import svds  # type: ignore[import-untyped]

from llmrec_stream.datasets.sequences import SeqDataset


def cooccurrence_factors(data: SeqDataset, dim: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """(n_items + 1, dim) item factors from the training sequences; row 0 (padding) is zero.

    Columns are scaled by ``1 / sqrt(popularity)`` so that popular items do not take every
    singular direction; the factors are rescaled to the std of the default id initialisation.
    """
    rows = np.repeat(np.arange(data.n_users), [len(s) for s in data.train])
    cols = np.concatenate(data.train)
    x = sp.csr_matrix((np.ones(len(cols), np.float64), (rows, cols)),
                      shape=(data.n_users, data.n_items + 1))
    x.data[:] = 1.0
    pop = np.asarray(x.sum(axis=0)).ravel()
    x = x @ sp.diags(1.0 / np.sqrt(np.maximum(pop, 1.0)))
    k = min(dim, min(x.shape) - 1)
    v0 = np.random.default_rng(seed).standard_normal(min(x.shape))
    _, s, vt = svds(x, k=k, v0=v0)
    factors = np.zeros((data.n_items + 1, dim), np.float64)
    factors[:, :k] = vt.T * np.sqrt(s)
    factors[0] = 0.0
    factors *= dim**-0.5 / max(float(factors[1:].std()), 1e-12)
    return factors.astype(np.float32)
