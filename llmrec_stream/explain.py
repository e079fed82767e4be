"""Why an item was recommended: the user's event that pulled it up most.

A reason names one event of the user by where it lives in the log (topic, partition, offset:
exact, and nothing personal) and, for a click, purchase or review, the item it was about.
Raw comment text is never kept: a comment is remembered as a *sketch*, the sign bits of a
fixed random projection of its text vector (SimHash), so that the angle between a comment and
an item can be estimated from ``SKETCH_BITS`` bits (Charikar 2002: P[bit differs] = angle/π).

The profile keeps its recent items with their coordinates and the last few comments' sketches
(``profile.lua``); this module scores each candidate event against a recommended item as
similarity × decay(age), the same half-life the profile sums use, and names the best one. It is
an attribution of the profile's sum to its terms: the fused query is a decayed sum of exactly
these event vectors, so the event whose term aligns most with the item contributed most.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.events import topics
from llmrec_stream.profiles.fusion import Vector
from llmrec_stream.profiles.recs import MAX_REASONS
from llmrec_stream.profiles.store import TOPIC_CODES, ProfileState
from llmrec_stream.retrieval.protocol import ItemIndex

if TYPE_CHECKING:
    from llmrec_stream.ranking.aspects import Lift
    from llmrec_stream.sentiment import AspectAnchors

#: Bits per comment sketch: 16 bytes, angle error ~ π·sqrt(1/4/128) ≈ 0.14 rad (1 σ), enough
#: to tell a comment about the item from one about something else.
SKETCH_BITS = 128
_SEED = 0x11EC5
_TOPICS = {code: topic for topic, code in TOPIC_CODES.items()}
_KINDS = {topics.COMMENTS: "comment", topics.CLICKS: "click", topics.PURCHASES: "purchase"}
#: How far below an aspect's mention threshold a comment's *sketched* cosine to the anchor may
#: fall and still be the comment cited for it: about one standard error of a 128-bit sketch
#: at these angles (0.14 rad near a cosine of 0.25).
ASPECT_SKETCH_MARGIN = 0.15


@lru_cache(maxsize=4)
def _projection(dim: int) -> npt.NDArray[np.float32]:
    """The fixed projection every worker shares (seeded: same bits on every machine)."""
    rng = np.random.default_rng(_SEED + dim)
    return rng.standard_normal((dim, SKETCH_BITS)).astype(np.float32)


def sketches(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """One ``SKETCH_BITS / 8``-byte sketch per row."""
    bits = (np.atleast_2d(vectors) @ _projection(vectors.shape[-1])) > 0
    return np.packbits(bits, axis=1)


def sketch(vector: Vector) -> bytes:
    """The sketch of one vector, as the profile stores it."""
    return sketches(vector)[0].tobytes()


def sketch_cosine(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Estimated cosine between every sketch of ``a`` (n × B) and of ``b`` (m × B): n × m."""
    differ = np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2)
    return np.cos(np.pi * differ / SKETCH_BITS)


@dataclass(frozen=True, slots=True)
class Reason:
    """The user's event that contributed most to one recommended item."""

    kind: str  # "click", "purchase", "comment" or "aspect"
    topic: str
    partition: int
    offset: int
    item_id: str | None
    """The item the event was about (a click, a purchase, a review); None for a comment
    that named no item."""
    similarity: float
    """Cosine of the event's vector to the item's (estimated from the sketch for a comment);
    not published: a reason is ids only."""
    aspect: str | None = None
    """For kind ``aspect``: the aspect (price, quality...) whose ranking term brought the item
    into the list; the coordinates are the user's comment that set that aspect's score."""

    def record(self) -> dict[str, Any]:
        """The form in ``schemas/recommendation.json`` (``reasons``)."""
        out: dict[str, Any] = {
            "kind": self.kind, "topic": self.topic, "partition": self.partition,
            "offset": self.offset,
        }
        if self.item_id is not None:
            out["item_id"] = self.item_id
        if self.aspect is not None:
            out["aspect"] = self.aspect
        return out


@dataclass(frozen=True, slots=True)
class _Candidate:
    topic: str
    partition: int
    offset: int
    ts: int
    item_id: str | None


def explain(
    state: ProfileState,
    items: Sequence[str],
    index: ItemIndex,
    half_life_s: float,
    max_events: int = 3,
) -> list[Reason | None]:
    """One reason per item of ``items`` (None when the profile holds no event to cite).

    One list cites at most ``max_events`` distinct events: each item's reason is its best
    event when the items' best events are that few (the usual case: a top-k gathers around a
    user's few strongest interests); otherwise the events are chosen greedily to cover the
    items best (`_cover`) and each item names the best of those. The bound keeps the cached
    list inside the per-user budget (``profiles.recs``).
    """
    if not items:
        return []
    # an item that left the catalog since ranking has no vector: it matches nothing (0)
    zero = np.zeros(index.dim, np.float32)
    targets = np.stack([_unit(v) if (v := index.vector(i)) is not None else zero for i in items])
    cands: list[_Candidate] = []
    blocks: list[npt.NDArray[np.float64]] = []
    # behaviour: the recent items with a known topic (0 = moved from the old LIST: no offset)
    rows: list[Vector] = []
    for e in state.recent_events:
        topic = _TOPICS.get(e.topic_code, "")
        vec = index.vector(e.item_id) if topic in _KINDS else None
        if vec is not None:
            cands.append(_Candidate(topic, e.partition, e.offset, e.ts, e.item_id))
            rows.append(_unit(vec))
    if rows:
        blocks.append(targets.astype(np.float64) @ np.stack(rows).T.astype(np.float64))
    # text: the last comments, by sketch
    kept = [c for c in state.comments if len(c.sketch) * 8 == SKETCH_BITS]
    if kept:
        reviewed = {(d.topic, d.partition, d.offset): d.item_id for d in cands}
        for c in kept:
            item = reviewed.get((topics.COMMENTS, c.partition, c.offset))
            cands.append(_Candidate(topics.COMMENTS, c.partition, c.offset, c.ts, item))
        ours = np.frombuffer(b"".join(c.sketch for c in kept), np.uint8).reshape(len(kept), -1)
        blocks.append(sketch_cosine(sketches(targets), ours))
    if not cands:
        return [None] * len(items)
    sims = np.concatenate(blocks, axis=1)
    # a review is a candidate twice (its item, its text): one event, its better similarity
    columns: dict[tuple[str, int, int], int] = {}
    for j, cand in enumerate(cands):
        columns.setdefault((cand.topic, cand.partition, cand.offset), j)
    if len(columns) < len(cands):
        slot = {key: n for n, key in enumerate(columns)}
        merged = np.full((sims.shape[0], len(columns)), -np.inf)
        for j, cand in enumerate(cands):
            col = slot[(cand.topic, cand.partition, cand.offset)]
            merged[:, col] = np.maximum(merged[:, col], sims[:, j])
        cands = [cands[j] for j in columns.values()]
        sims = merged
    newest = max(c.ts for c in cands)
    ages = np.array([newest - c.ts for c in cands], dtype=np.float64)
    weights = np.exp(-math.log(2) * ages / (half_life_s * 1000.0))
    best = _cover(sims * weights[None, :], max_events)
    out: list[Reason | None] = []
    for row, col in enumerate(best):
        pick = cands[int(col)]
        out.append(Reason(_KINDS[pick.topic], pick.topic, pick.partition, pick.offset,
                          pick.item_id, float(sims[row, col])))
    return out


def _cover(scores: npt.NDArray[np.float64], max_events: int) -> npt.NDArray[np.intp]:
    """Per row, the column it names: its best one, among at most ``max_events`` columns.

    When the rows' best columns are more than that, pick columns one by one by how much they
    raise the rows' best score so far (greedy facility location, within 1 - 1/e of the best
    choice of that many), then let each row name its best picked column.
    """
    best = np.argmax(scores, axis=1)
    if len(set(best.tolist())) <= max_events:
        return best
    picked: list[int] = []
    current = np.full(scores.shape[0], -np.inf)
    for _ in range(max_events):
        floor = np.where(np.isfinite(current), current, scores.min() - 1.0)
        gains = np.maximum(scores - floor[:, None], 0.0).sum(axis=0)
        gains[picked] = -1.0
        col = int(np.argmax(gains))
        picked.append(col)
        current = np.maximum(current, scores[:, col])
    cols = np.array(picked)
    return cols[np.argmax(scores[:, cols], axis=1)]


def _unit(v: Vector) -> Vector:
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


def with_aspects(
    reasons: Sequence[Reason | None],
    items: Sequence[str],
    lifts: Mapping[str, Lift],
    state: ProfileState,
    anchors: AspectAnchors,
) -> list[Reason | None]:
    """``reasons`` with an ``aspect`` reason for the items the aspect term brought into the
    list (`llmrec_stream.ranking.aspects`): what lifted them most is not an event's vector but
    what the user said of an aspect.

    The reason cites the comment that set the aspect: of the comments the profile keeps (their
    sketches; never their text), the one closest to the aspect's anchor, if it is close enough
    to have mentioned it (`ASPECT_SKETCH_MARGIN`); when the comment that set it is no longer
    kept, the item keeps its event reason. One list cites one aspect reason at most (the
    aspect that brought in most of its items): the cached list has a per-user byte budget.
    """
    mine = {i: lift for i, lift in lifts.items() if i in set(items)}
    kept = [c for c in state.comments if len(c.sketch) * 8 == SKETCH_BITS]
    if not mine or not kept:
        return list(reasons)
    counts = Counter(lift.aspect for lift in mine.values())
    aspect = max(anchors.names, key=lambda n: (counts[n], -anchors.names.index(n)))
    a = anchors.names.index(aspect)
    ours = np.frombuffer(b"".join(c.sketch for c in kept), np.uint8).reshape(len(kept), -1)
    cos = sketch_cosine(sketches(anchors.anchors[a : a + 1]), ours)[0]
    best = int(np.argmax(cos))
    if cos[best] < anchors.thresholds[a] - ASPECT_SKETCH_MARGIN:
        return list(reasons)
    c = kept[best]
    reason = Reason("aspect", topics.COMMENTS, c.partition, c.offset, None, float(cos[best]),
                    aspect)
    out = [reason if (lift := mine.get(i)) is not None and lift.aspect == aspect else r
           for i, r in zip(items, reasons, strict=True)]
    # distinct as the record and the cache count them (ids, not the similarity)
    if len({_cited(r) for r in out if r is not None}) > MAX_REASONS:
        return list(reasons)  # explain_max_events at its bound: no room for one more
    return out


def _cited(r: Reason) -> tuple[str, str, int, int, str | None, str | None]:
    return r.kind, r.topic, r.partition, r.offset, r.item_id, r.aspect
