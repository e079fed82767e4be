"""The Redis side of profiles: keys, the Lua update, the recommendation cache.

A micro-batch is one pipelined round trip of per-user EVALSHA calls. Every call touches only
keys tagged ``{user_id}``, so each is atomic on one shard and works on Redis Cluster.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from llmrec_stream.events.models import Purchase, Source, UserAttributes, UserEvent
from llmrec_stream.profiles import recs
from llmrec_stream.profiles.fusion import FusionWeights, Vector, attribute_fields, event_kind

LUA = resources.files("llmrec_stream.profiles").joinpath("profile.lua").read_text("utf-8")


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
    """Decode the string the Lua script writes (layout in ``profile.lua``).

    Two float32 scales and ``dim`` int16 codes per vector: a component is code × scale, so
    it is within max|v| / 65534 of the float64 sum the script computed. Empty bytes (no
    vector yet) decode to zeros.
    """
    if not blob:
        zeros = np.zeros(dim, dtype=np.float32)
        return VectorState(None, 0.0, 0.0, zeros, zeros.copy())
    if len(blob) != _STATE_HEAD.size + 4 * dim:
        raise ValueError(f"vector state of {len(blob)} bytes does not hold 2 x {dim} int16")
    t_ref, w_text, w_beh, t_scale, b_scale = _STATE_HEAD.unpack_from(blob)
    codes = np.frombuffer(blob, dtype="<i2", offset=_STATE_HEAD.size).reshape(2, dim)
    scales = np.array([[t_scale], [b_scale]], dtype=np.float32)
    vectors = codes.astype(np.float32) * scales
    return VectorState(int(t_ref), w_text, w_beh, vectors[0].copy(), vectors[1].copy())


@dataclass(frozen=True, slots=True)
class Contribution:
    """One event ready for the script: its source and its precomputed vector contributions."""

    event: UserEvent
    source: Source
    text: Vector | None = None
    behaviour: Vector | None = None


@dataclass(frozen=True, slots=True)
class ProfileState:
    """A user's profile after the batch, as the script returned it."""

    user_id: str
    applied: tuple[bool, ...]
    text: Vector
    behaviour: Vector
    bought: frozenset[str]
    recent: tuple[str, ...] = ()
    """Recent item ids, newest first (what a sequence model reads)."""


def _event_args(c: Contribution) -> list[Any]:
    e = c.event
    attrs = json.dumps(attribute_fields(e), sort_keys=True) if isinstance(e, UserAttributes) else ""
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
    ) -> None:
        self.client = client
        self.dim = dim
        self.weights = weights
        self.recent_items = recent_items
        self.seen_items = seen_items
        self._script = client.register_script(LUA)

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
                self.dim, half_life_ms, self.recent_items, self.seen_items, len(contributions)
            ]
            for c in contributions:
                args.extend(_event_args(c))
            await self._script(
                keys=[
                    profile_key(user_id),
                    recent_key(user_id),
                    bought_key(user_id),
                    vectors_key(user_id),
                ],
                args=args,
                client=pipe,
            )
        replies = await pipe.execute()
        return [self._state(u, r) for u, r in zip(users, replies, strict=True)]

    def _state(self, user_id: str, reply: list[Any]) -> ProfileState:
        flags, vectors, _wt, _wb, bought, recent = reply
        state = decode_vector_state(vectors, self.dim)
        return ProfileState(
            user_id=user_id,
            applied=tuple(ch == ord("1") for ch in flags),
            text=state.text,
            behaviour=state.behaviour,
            bought=frozenset(b.decode("utf-8") for b in bought),
            recent=tuple(r.decode("utf-8") for r in recent),
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

    async def erase(self, user_id: str) -> int:
        """Delete everything stored for one user (right to erasure)."""
        return int(await self.client.delete(*user_keys(user_id)))
