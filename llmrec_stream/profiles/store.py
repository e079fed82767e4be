"""The Redis side of profiles: keys, the Lua update, the recommendation cache.

A micro-batch is one pipelined round trip of per-user EVALSHA calls. Every call touches only
keys tagged ``{user_id}``, so each is atomic on one shard and works on Redis Cluster.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import redis.asyncio as aioredis
import redis.exceptions

from llmrec_stream.events import topics
from llmrec_stream.events.models import Follow, Purchase, Source, UserAttributes, UserEvent
from llmrec_stream.profiles import recs
from llmrec_stream.profiles.fusion import (
    MAX_ATTRIBUTES,
    FusionWeights,
    Vector,
    attribute_fields,
    event_kind,
)

_HERE = resources.files("llmrec_stream.profiles")
LUA = _HERE.joinpath("profile.lua").read_text("utf-8")
ERASE_LUA = _HERE.joinpath("erase.lua").read_text("utf-8")


class EncoderMismatch(RuntimeError):
    """A profile's vectors were written by another encoder than this worker's.

    Mixing them would rank with meaningless sums (or, with another dimension, fail to decode):
    the worker must not go on with this encoder against this Redis.
    """

    def __init__(self, user_id: str, stored: str, worker: str) -> None:
        super().__init__(
            f"the profile of user {user_id!r} was written by encoder {stored!r}, but this "
            f"worker's encoder is {worker!r}: start it with the encoder this Redis was built "
            "with, or rebuild the profiles (a new Redis, a replay from offset 0)"
        )
        self.user_id, self.stored, self.worker = user_id, stored, worker


_MISMATCH = "ENCODER_MISMATCH "


#: Codes of the user-event topics in name order: recent items with equal times are ordered
#: by (topic, partition, offset), as the trainer orders them. 0 marks items moved over from
#: the LIST layout of earlier versions.
TOPIC_CODES = {t: n for n, t in enumerate(sorted(topics.USER_EVENT_TOPICS), start=1)}


def topic_code(topic: str) -> int:
    """The code a recent entry of this topic carries (`TOPIC_CODES`)."""
    code = TOPIC_CODES.get(topic)
    if code is None:
        raise ValueError(f"{topic!r} is not a user-event topic")
    return code


def profile_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:p"


def recent_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:recent"


def bought_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:bought"


def vectors_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:v"


def recs_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:recs"


def follows_key(user_id: str) -> str:
    """The users this user follows (a sorted set: followee -> follow ts; social signals).

    Only users who follow someone have it, so it is not among `user_keys` (the keys every
    profile holds, what the per-user memory budget counts); erasure deletes it too.
    """
    return f"u:{{{user_id}}}:f"


def shadow_key(user_id: str) -> str:
    """Each model's previous top-k for this user while a model runs in shadow
    (`llmrec_stream.ranking.shadow`); it expires, and erasure deletes it too."""
    return f"u:{{{user_id}}}:sh"


def user_keys(user_id: str) -> list[str]:
    """Every key that holds something of this user."""
    return [
        profile_key(user_id),
        recent_key(user_id),
        bought_key(user_id),
        vectors_key(user_id),
        recs_key(user_id),
    ]


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
class Contribution:
    """One event ready for the script: its source and its precomputed vector contributions."""

    event: UserEvent
    source: Source
    text: Vector | None = None
    behaviour: Vector | None = None
    sketch: bytes = b""
    """A comment's sketch (`llmrec_stream.explain.sketch`), kept for explanations."""
    aspects: tuple[float, ...] = ()
    """A comment's additions to the user's aspect scores, in the heads' aspect order
    (`llmrec_stream.sentiment`)."""


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


def _event_args(c: Contribution) -> list[Any]:
    e = c.event
    attrs = ""
    if isinstance(e, Follow):
        # no item, no vector: the followee id rides in the attributes field (profile.lua)
        return ["f" if e.follow else "n", f"{c.source.topic}:{c.source.partition}",
                c.source.offset, e.ts, "", b"", b"", "0", e.followee_id, 0, b""]
    if isinstance(e, UserAttributes):
        # a flat [name, value, ...] array in name order: the script takes new names in order
        attrs = json.dumps([x for kv in sorted(attribute_fields(e).items()) for x in kv])
    elif c.aspects:
        # a comment's aspect additions ride in the same field, as [delta, ...]
        attrs = json.dumps(list(c.aspects))
    return [
        event_kind(e),
        f"{c.source.topic}:{c.source.partition}",
        c.source.offset,
        e.ts,
        getattr(e, "item_id", None) or "",
        b"" if c.text is None else c.text.astype("<f4").tobytes(),
        b"" if c.behaviour is None else c.behaviour.astype("<f4").tobytes(),
        repr(e.amount) if isinstance(e, Purchase) else "0",
        attrs,
        topic_code(c.source.topic),
        c.sketch,
    ]


class ProfileStore:
    """Applies micro-batches to profiles in Redis and caches recommendations."""

    def __init__(
        self,
        client: aioredis.Redis,
        dim: int,
        weights: FusionWeights,
        recent_items: int = 50,
        seen_items: int = 500,
        *,
        encoder_id: str = "",
        max_attributes: int = MAX_ATTRIBUTES,
        explain_comments: int = 2,
        max_follows: int = 200,
    ) -> None:
        self.client = client
        self.dim = dim
        self.weights = weights
        self.recent_items = recent_items
        self.seen_items = seen_items
        self.encoder_id = encoder_id
        """Stored with each profile; a profile with another id raises `EncoderMismatch`."""
        self.max_attributes = max_attributes
        self.explain_comments = explain_comments
        """Last comments a profile keeps (as sketches) so a reason can name one."""
        self.max_follows = max_follows
        """Followees a user keeps; a follow past it evicts the oldest follow."""
        self._script = client.register_script(LUA)
        self._erase = client.register_script(ERASE_LUA)

    async def apply(self, batch: Mapping[str, Sequence[Contribution]]) -> list[ProfileState]:
        """Apply each user's events in order; one round trip for the whole batch."""
        if not batch:
            return []
        half_life_ms = self.weights.half_life_s * 1000.0
        pipe = self.client.pipeline(transaction=False)
        users = list(batch)
        for user_id in users:
            contributions = batch[user_id]
            args: list[Any] = [
                self.dim, half_life_ms, self.recent_items, self.seen_items, len(contributions),
                self.encoder_id, self.max_attributes, self.explain_comments, self.max_follows,
            ]
            for c in contributions:
                args.extend(_event_args(c))
            await self._script(
                keys=[
                    profile_key(user_id),
                    recent_key(user_id),
                    bought_key(user_id),
                    vectors_key(user_id),
                    follows_key(user_id),
                ],
                args=args,
                client=pipe,
            )
        replies = await pipe.execute(raise_on_error=False)
        for user_id, reply in zip(users, replies, strict=True):
            if isinstance(reply, Exception):  # a cluster pipeline returns a node's failure
                if isinstance(reply, redis.exceptions.ResponseError) and str(reply).startswith(
                    _MISMATCH
                ):
                    stored = str(reply)[len(_MISMATCH):]
                    raise EncoderMismatch(user_id, stored, self.encoder_id)
                raise reply
        return [self._state(u, r) for u, r in zip(users, replies, strict=True)]

    def _state(self, user_id: str, reply: list[Any]) -> ProfileState:
        flags, vectors, _wt, _wb, bought, recent, dropped, follows = reply
        state = decode_vector_state(vectors, self.dim)
        return ProfileState(
            user_id=user_id,
            applied=tuple(ch == ord("1") for ch in flags),
            text=state.text,
            behaviour=state.behaviour,
            bought=frozenset(b.decode("utf-8") for b in bought),
            recent=tuple(r.decode("utf-8") for r in recent),
            refused=tuple(ch == ord("x") for ch in flags),
            attributes_dropped=int(dropped),
            recent_events=tuple(decode_recent(vectors, self.dim)),
            comments=tuple(decode_comments(vectors, self.dim)),
            follows=tuple(f.decode("utf-8") for f in follows),
            aspects=decode_aspects(vectors, self.dim),
        )

    async def cache_recommendations(self, records: dict[str, bytes]) -> None:
        """Store the latest published recommendations per user, for pull (one round trip).

        ``records`` are the published JSON records; the cache keeps them in the compact
        layout of ``profiles.recs``.
        """
        if not records:
            return
        pipe = self.client.pipeline(transaction=False)
        for user_id, payload in records.items():
            pipe.set(recs_key(user_id), recs.encode(payload))
        await pipe.execute()

    async def recommendations(self, user_id: str) -> dict[str, Any] | None:
        """The user's cached recommendations (``profiles.recs.decode``), or None."""
        raw: Any = await self.client.get(recs_key(user_id))
        return None if raw is None else recs.decode(user_id, bytes(raw))

    async def erase(self, user_id: str, erased_at: int, source: Source) -> bool:
        """Right to erasure, in one atomic step: delete everything personal of the user and
        keep a marker (erased-at, the offset watermarks) that refuses their earlier events.

        ``erased_at`` is the erasure event's time (ms), ``source`` where the erasure came from:
        an erasure applied already (a replay of ``llmrec.users.erase``) changes nothing and
        returns False.
        """
        done = await self._erase(
            keys=[*user_keys(user_id), follows_key(user_id), shadow_key(user_id)],
            args=[erased_at, f"{source.topic}:{source.partition}", source.offset],
        )
        return bool(done)
