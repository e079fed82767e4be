"""The Redis side of profiles: keys, the Lua update, the recommendation cache.

A micro-batch is one pipelined round trip of per-user EVALSHA calls. Every call touches only
keys tagged ``{user_id}``, so each is atomic on one shard and works on Redis Cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from llmrec_stream.events.models import Purchase, Source, UserAttributes, UserEvent
from llmrec_stream.profiles.fusion import FusionWeights, Vector, attribute_fields, event_kind

LUA = resources.files("llmrec_stream.profiles").joinpath("profile.lua").read_text("utf-8")


def profile_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:p"


def recent_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:recent"


def bought_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:bought"


def recs_key(user_id: str) -> str:
    return f"u:{{{user_id}}}:recs"


def user_keys(user_id: str) -> list[str]:
    """Every key that holds something of this user."""
    return [profile_key(user_id), recent_key(user_id), bought_key(user_id), recs_key(user_id)]


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
                keys=[profile_key(user_id), recent_key(user_id), bought_key(user_id)],
                args=args,
                client=pipe,
            )
        replies = await pipe.execute()
        return [self._state(u, r) for u, r in zip(users, replies, strict=True)]

    def _state(self, user_id: str, reply: list[Any]) -> ProfileState:
        flags, tv, bv, _wt, _wb, bought, recent = reply
        zeros = np.zeros(self.dim, dtype=np.float32)
        return ProfileState(
            user_id=user_id,
            applied=tuple(ch == ord("1") for ch in flags),
            text=np.frombuffer(tv, dtype="<f4").copy() if tv else zeros,
            behaviour=np.frombuffer(bv, dtype="<f4").copy() if bv else zeros,
            bought=frozenset(b.decode("utf-8") for b in bought),
            recent=tuple(r.decode("utf-8") for r in recent),
        )

    async def cache_recommendations(self, records: dict[str, bytes]) -> None:
        """Store the latest published recommendations per user, for pull (one round trip)."""
        if not records:
            return
        pipe = self.client.pipeline(transaction=False)
        for user_id, payload in records.items():
            pipe.set(recs_key(user_id), payload)
        await pipe.execute()

    async def recommendations(self, user_id: str) -> dict[str, Any] | None:
        raw = await self.client.get(recs_key(user_id))
        return None if raw is None else dict(json.loads(raw))

    async def erase(self, user_id: str) -> int:
        """Delete everything stored for one user (right to erasure)."""
        return int(await self.client.delete(*user_keys(user_id)))
