"""The decoded shapes of a profile: what the profile script returns and the vectors hash holds.

The script keeps a user's vectors, recent entries, last comments (as sketches) and aspect
scores in one binary value (profile.lua writes it); the decoders here read it back for the
store, the verifier and explanations, and `ProfileState` is a batch's result for one user.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from llmrec_stream.profiles import recs
from llmrec_stream.profiles.fusion import (
    Vector,
)

_STATE_HEAD = struct.Struct("<dddff")


@dataclass(frozen=True, slots=True)
class VectorState:
    """The decayed sums of a profile, as ``u:{uid}:v`` holds them."""

    t_ref: int | None
    """Newest event time (ms) the sums are referenced to; None before the first vector."""
    w_text: float
    w_behaviour: float
    text: Vector
    behaviour: Vector


def decode_vector_state(blob: bytes, dim: int) -> VectorState:
    """Decode the vectors of the string the Lua script writes (layout in ``profile.lua``).

    Two float32 scales and ``dim`` int16 codes per vector: a component is code × scale, so
    it is within max|v| / 65534 of the float64 sum the script computed. Empty bytes (no
    vector yet) decode to zeros; the recent items after the vectors are `decode_recent`'s.
    """
    if not blob:
        zeros = np.zeros(dim, dtype=np.float32)
        return VectorState(None, 0.0, 0.0, zeros, zeros.copy())
    if len(blob) < _STATE_HEAD.size + 4 * dim:
        raise ValueError(f"vector state of {len(blob)} bytes does not hold 2 x {dim} int16")
    t_ref, w_text, w_beh, t_scale, b_scale = _STATE_HEAD.unpack_from(blob)
    codes = np.frombuffer(blob, dtype="<i2", count=2 * dim, offset=_STATE_HEAD.size)
    scales = np.array([[t_scale], [b_scale]], dtype=np.float32)
    vectors = codes.reshape(2, dim).astype(np.float32) * scales
    return VectorState(
        None if math.isnan(t_ref) else int(t_ref),
        w_text, w_beh, vectors[0].copy(), vectors[1].copy(),
    )


@dataclass(frozen=True, slots=True)
class RecentEntry:
    """One item of the recent list with the key it is ordered by (newest first)."""

    ts: int
    topic_code: int
    partition: int
    offset: int
    item_id: str

    @property
    def order(self) -> tuple[int, int, int, int]:
        return (self.ts, self.topic_code, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class CommentEntry:
    """One of the last comments a profile keeps for explanations (no text: a sketch)."""

    ts: int
    topic_code: int
    partition: int
    offset: int
    sketch: bytes


def _entries(blob: bytes, pos: int) -> tuple[list[tuple[int, int, int, int, bytes]], int]:
    """One section of the recent layout in ``profile.lua``: entries and the position after."""
    count, pos = recs.read_varint(blob, pos)
    out: list[tuple[int, int, int, int, bytes]] = []
    ts = 0
    for i in range(count):
        delta, pos = recs.read_varint(blob, pos)
        ts = delta if i == 0 else ts - delta
        code, part = divmod(blob[pos], 32)
        pos += 1
        if part == 31:
            part, pos = recs.read_varint(blob, pos)
        offset, pos = recs.read_varint(blob, pos)
        size, pos = recs.read_varint(blob, pos)
        out.append((ts, code, part, offset, blob[pos : pos + size]))
        pos += size
    return out, pos


def decode_recent(blob: bytes, dim: int) -> list[RecentEntry]:
    """The recent items after the vectors in ``u:{uid}:v``, newest first (``profile.lua``)."""
    pos = _STATE_HEAD.size + 4 * dim
    if len(blob) <= pos:
        return []
    entries, _ = _entries(blob, pos)
    return [RecentEntry(ts, c, p, o, raw.decode("utf-8")) for ts, c, p, o, raw in entries]


def decode_comments(blob: bytes, dim: int) -> list[CommentEntry]:
    """The last comments after the recent items in ``u:{uid}:v``, newest first."""
    pos = _STATE_HEAD.size + 4 * dim
    if len(blob) <= pos:
        return []
    _, pos = _entries(blob, pos)
    if len(blob) <= pos:
        return []
    entries, _ = _entries(blob, pos)
    return [CommentEntry(*e) for e in entries]


def decode_aspects(blob: bytes, dim: int) -> tuple[float, ...]:
    """The aspect scores after the comments in ``u:{uid}:v`` (``profile.lua``); () if none."""
    pos = _STATE_HEAD.size + 4 * dim
    for _ in range(2):  # the recent items, then the comments
        if len(blob) <= pos:
            return ()
        _, pos = _entries(blob, pos)
    if len(blob) <= pos:
        return ()
    count, pos = recs.read_varint(blob, pos)
    codes = np.frombuffer(blob, dtype="<i2", count=count, offset=pos)
    return tuple(round(float(c) / 1000.0, 3) for c in codes)


@dataclass(frozen=True, slots=True)
class ProfileState:
    """A user's profile after the batch, as the script returned it."""

    user_id: str
    applied: tuple[bool, ...]
    text: Vector
    behaviour: Vector
    bought: frozenset[str]
    recent: tuple[str, ...] = ()
    """Recent item ids, newest first by event time (what a sequence model reads)."""
    refused: tuple[bool, ...] = ()
    """Per event: refused because the user was erased after it (see ``erase``)."""
    attributes_dropped: int = 0
    """Attribute keys this batch did not store (over the per-user bound, or too long)."""
    recent_events: tuple[RecentEntry, ...] = ()
    """The recent items with where their events came from (what explanations cite)."""
    comments: tuple[CommentEntry, ...] = ()
    """The last comments, as sketches with their coordinates (what explanations cite)."""
    follows: tuple[str, ...] = ()
    """The users this user follows, oldest follow first (``llmrec_stream.social`` reads them)."""
    aspects: tuple[float, ...] = ()
    """The user's aspect scores in the heads' aspect order; empty before any aspect heads."""

    @property
    def all_refused(self) -> bool:
        """Every event of the batch came from before an erasure: nothing to publish."""
        return bool(self.refused) and all(self.refused)
