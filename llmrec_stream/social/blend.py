"""Blend the followees' profiles into a follower's query, read from Redis at ranking time.

The follow set lives in the follower's own keys (``u:{uid}:f``, kept by ``profile.lua`` with
the offset watermarks, so a replayed follow is not applied twice); followees live on other
partitions and in other hash slots. Their state strings ``u:{followee}:v`` are read with one
GET per key in one pipelined round trip, never a multi-key command, so this runs on Redis
Cluster too. An erased followee has no state string left (``erase.lua`` deletes it): they
stop counting at the next ranking. An unfollow removes them from the set.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.fusion import Vector, normalize
from llmrec_stream.profiles.store import ProfileState, decode_vector_state, vectors_key


@dataclasses.dataclass(frozen=True, slots=True)
class SocialRules:
    weight: float
    """How much the followees' mean direction counts beside the user's own (unit) direction."""
    half_life_s: float
    """A followee counts 2^(-age / half-life), age = the follower's event time minus the
    followee's newest event time (their t_ref): the profiles' own half-life."""


class SocialBlend:
    """Turns profile states into ranking inputs that include the people each user follows."""

    def __init__(self, client: aioredis.Redis, dim: int, rules: SocialRules,
                 metrics: Metrics) -> None:
        self.client = client
        self.dim = dim
        self.rules = rules
        self.metrics = metrics

    async def blend(self, states: Sequence[ProfileState],
                    now_ms: Sequence[int]) -> list[ProfileState]:
        """The states to rank: each with ``text``/``behaviour`` = own unit direction plus
        weight x the decayed mean of the followees' unit directions (per side).

        ``now_ms`` per state: the time the followees' recency is measured at (the follower's
        newest event of the batch, so a replay ranks as the live run did). States without
        followees come back unchanged (the same objects).
        """
        wanted = sorted({f for s in states for f in s.follows}) if self.rules.weight else []
        self.metrics.social_followees_read.observe(len(wanted))
        if not wanted:
            return list(states)
        pipe = self.client.pipeline(transaction=False)
        for followee in wanted:
            pipe.get(vectors_key(followee))  # one slot per key: per-key GETs, one round trip
        blobs: list[Any] = await pipe.execute()
        found = {f: decode_vector_state(bytes(b), self.dim)
                 for f, b in zip(wanted, blobs, strict=True) if b}
        out: list[ProfileState] = []
        for state, now in zip(states, now_ms, strict=True):
            if not state.follows:
                out.append(state)
                continue
            text = np.zeros(self.dim, np.float64)
            beh = np.zeros(self.dim, np.float64)
            for followee in state.follows:
                other = found.get(followee)
                if other is None or other.t_ref is None:
                    continue  # erased, or no vector yet: no influence
                age_ms = max(0, now - other.t_ref)
                d = math.exp(-math.log(2) * age_ms / (self.rules.half_life_s * 1000.0))
                text += d * normalize(other.text)
                beh += d * normalize(other.behaviour)
            n = len(state.follows)
            w = self.rules.weight / n
            out.append(dataclasses.replace(
                state,
                text=_mix(state.text, text, w),
                behaviour=_mix(state.behaviour, beh, w),
            ))
        return out


def _mix(own: Vector, social: np.ndarray, w: float) -> Vector:
    """The user's unit direction plus ``w`` x the summed followee directions (float32)."""
    return (normalize(own).astype(np.float64) + w * social).astype(np.float32)
