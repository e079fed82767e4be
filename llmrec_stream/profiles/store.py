"""The Redis side of profiles: keys, the Lua update, the recommendation cache.

A micro-batch is one pipelined round trip of per-user EVALSHA calls. Every call touches only
keys tagged ``{user_id}``, so each is atomic on one shard and works on Redis Cluster.

The keys live in `keys`, the decoded shapes in `state`; both are re-exported here, where
callers have always found them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from llmrec_stream.events.models import Follow, Purchase, Source, UserAttributes, UserEvent
from llmrec_stream.profiles import recs
from llmrec_stream.profiles.fusion import (
    MAX_ATTRIBUTES,
    FusionWeights,
    Vector,
    attribute_fields,
    event_kind,
)
from llmrec_stream.profiles.keys import (
    TOPIC_CODES,
    bought_key,
    follows_key,
    profile_key,
    recent_key,
    recs_key,
    shadow_key,
    topic_code,
    user_keys,
    vectors_key,
)
from llmrec_stream.profiles.state import (
    CommentEntry,
    ProfileState,
    RecentEntry,
    VectorState,
    decode_aspects,
    decode_comments,
    decode_recent,
    decode_vector_state,
)

__all__ = [
    "ERASE_LUA", "LUA", "TOPIC_CODES", "CommentEntry", "Contribution", "EncoderMismatch",
    "ProfileState", "ProfileStore", "RecentEntry", "VectorState", "bought_key",
    "decode_aspects", "decode_comments", "decode_recent", "decode_vector_state",
    "follows_key", "profile_key", "recent_key", "recs_key", "shadow_key", "topic_code",
    "user_keys", "vectors_key",
]

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


@dataclass(eq=False)
class ProfileStore:
    """Applies micro-batches to profiles in Redis and caches recommendations."""

    client: aioredis.Redis
    dim: int
    weights: FusionWeights
    recent_items: int = 50
    seen_items: int = 500
    _: KW_ONLY
    encoder_id: str = ""
    """Stored with each profile; a profile with another id raises `EncoderMismatch`."""
    max_attributes: int = MAX_ATTRIBUTES
    explain_comments: int = 2
    """Last comments a profile keeps (as sketches) so a reason can name one."""
    max_follows: int = 200
    """Followees a user keeps; a follow past it evicts the oldest follow."""

    def __post_init__(self) -> None:
        self._script = self.client.register_script(LUA)
        self._erase = self.client.register_script(ERASE_LUA)

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
