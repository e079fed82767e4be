"""The aspect term of the ranking score: what a user says of price, quality, delivery and fit.

A user's aspect scores (`llmrec_stream.sentiment`: per aspect, a decayed sum over their
comments of mention × sentiment, kept in the profile by ``profile.lua``) and an item's aspect
mentions (the same anchor directions read on the item's vector, 0..1) make one more term of
the score of every candidate::

    score = ranker score + weight × Σ_a user[a] × item[a]

The sign, said plainly. With a positive weight the term rewards agreement: an item whose text
is about an aspect the user writes well of rises, and one whose text is about an aspect the
user complains of falls. A user who wrote "far too expensive for what it is" is steered away
from the items whose text is about price (on the Amazon replay's catalog, whose descriptions
are the words of the items' own reviews, that is the items whose reviewers talk of the price;
on a catalog that advertises "budget" or "great value" it is those). A negative weight reads a
complaint as a need instead (steer the price complainer toward the items that talk of price).
Which reading serves users is an empirical question: the default weight was chosen on a
validation replay (`llmrec_stream.eval.sentiment_replay --aspects`, docs/features.md), and is
0 (off) when no weight beat the plain ranker there.

The term re-ranks the ranker's best ``k + pool`` candidates (any `Ranker`: the fused profile,
a trained model, the shadow), so no index or model needs to know about it. An item's mentions
are read from the vector the worker's item index already holds: four dot products a
candidate, nothing encoded again, nothing more stored in Redis (the user side is the four
int16 the profile already keeps). The ranker's score is a cosine for the built-in ranker, so a
weight of 1 moves an item that fully mentions an aspect (1) for a user whose score on it is
±0.5 by ±0.5 of cosine; for a trained model it is in that model's units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llmrec_stream.ranking.protocol import Ranked, Ranker, TopK

if TYPE_CHECKING:
    from llmrec_stream.metrics import Metrics
    from llmrec_stream.profiles.store import ProfileState
    from llmrec_stream.retrieval.protocol import ItemIndex
    from llmrec_stream.sentiment import AspectAnchors


@dataclass(frozen=True, slots=True)
class Lift:
    """Why an item is in a list it would not be in by the ranker's score alone."""

    aspect: str
    """The aspect whose term put it there: its own largest positive term, or, for an item
    that only moved up because others fell, the aspect that pushed most of them out."""
    term: float
    """The item's own aspect term (weight × Σ user × item); may be 0."""


def user_vector(aspects: Sequence[float], n: int) -> npt.NDArray[np.float64]:
    """A profile's aspect scores as ``n`` floats (a profile with fewer, or none, pads 0)."""
    out = np.zeros(n)
    m = min(n, len(aspects))
    out[:m] = np.asarray(aspects[:m], dtype=np.float64)
    return out


def rerank(
    top: TopK,
    user: npt.NDArray[np.float64],
    items: npt.NDArray[np.float64],
    weight: float,
    k: int,
    names: Sequence[str],
) -> tuple[TopK, dict[str, Lift]]:
    """The best ``k`` of ``top`` (the ranker's candidates, best first) by score plus the
    aspect term, and the items that only the term brought into those ``k``.

    ``user``: the user's aspect scores; ``items``: each candidate's mentions (len(top) ×
    aspects). Ties go to the smaller id, as in the indexes. The published score is the sum.
    """
    if not top:
        return [], {}
    ids = [i for i, _ in top]
    base = np.array([s for _, s in top], dtype=np.float64)
    terms = weight * items * user[None, :]  # candidates × aspects
    total = base + terms.sum(axis=1)
    order = sorted(range(len(ids)), key=lambda j: (-total[j], ids[j]))[:k]
    before = set(ids[:k])
    out = [(ids[j], float(total[j])) for j in order]
    entered = [j for j in order if ids[j] not in before]
    if not entered:
        return out, {}
    # the aspect that pushed the fallen items out: their most negative summed term
    kept = set(order)
    fallen = [j for j in range(min(k, len(ids))) if j not in kept]
    push = terms[fallen].sum(axis=0) if fallen else np.zeros(len(names))
    lifts: dict[str, Lift] = {}
    for j in entered:
        own = terms[j]
        a = int(np.argmax(own)) if own.max() > 0 else int(np.argmin(push))
        lifts[ids[j]] = Lift(names[a], float(own.sum()))
    return out, lifts


class AspectTerm:
    """The aspect term with its weight and candidate pool, as the worker applies it."""

    def __init__(self, anchors: AspectAnchors, weight: float, pool: int,
                 metrics: Metrics | None = None) -> None:
        self.anchors = anchors
        self.weight = weight
        self.pool = pool
        self.metrics = metrics

    def item_mentions(self, ids: Sequence[str], index: ItemIndex) -> npt.NDArray[np.float64]:
        """Each candidate's mentions, from the vector the index holds (0 for one gone)."""
        zero = np.zeros(index.dim, np.float32)
        if not ids:
            return np.zeros((0, len(self.anchors.names)))
        vecs = np.stack([v if (v := index.vector(i)) is not None else zero for i in ids])
        return self.anchors.mentions_many(vecs)

    def rank(
        self, ranker: Ranker, states: Sequence[ProfileState], k: int, index: ItemIndex
    ) -> tuple[list[Ranked], list[dict[str, Lift]]]:
        """``ranker``'s lists re-ranked with the term, and per user the items it brought in.

        A user with no aspect score gets the ranker's own top ``k`` (the first ``k`` of the
        same candidates).
        """
        ranked = ranker.rank(states, k + self.pool, index)
        n = len(self.anchors.names)
        out: list[Ranked] = []
        lifted: list[dict[str, Lift]] = []
        for state, result in zip(states, ranked, strict=True):
            user = user_vector(state.aspects, n)
            if result is None or not np.any(user) or self.weight == 0:
                out.append(None if result is None else (result[0], result[1][:k]))
                lifted.append({})
                continue
            version, top = result
            items = self.item_mentions([i for i, _ in top], index)
            new, lifts = rerank(top, user, items, self.weight, k, self.anchors.names)
            out.append((version, new))
            lifted.append(lifts)
            if self.metrics is not None:
                self.metrics.aspect_rank_lists.inc()
                for lift in lifts.values():
                    self.metrics.aspect_rank_lifted.labels(lift.aspect).inc()
        return out, lifted

    def wrap(self, ranker: Ranker) -> Ranker:
        """``ranker`` with the term applied (what the shadow ranks with, like the live one);
        uncounted: the metrics count published lists only."""
        return AspectRanker(ranker, AspectTerm(self.anchors, self.weight, self.pool))


class AspectRanker:
    """A `Ranker` that applies an `AspectTerm` to another; it keeps the other's version (the
    term is a setting of the worker, not a model: live and shadow get the same one)."""

    def __init__(self, inner: Ranker, term: AspectTerm) -> None:
        self.inner, self.term = inner, term

    @property
    def version(self) -> str:
        return self.inner.version

    def rank(self, states: Sequence[ProfileState], k: int, index: ItemIndex) -> list[Ranked]:
        return self.term.rank(self.inner, states, k, index)[0]
