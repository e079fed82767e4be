"""Shadow evaluation: a published model ranks beside the live one, unseen, and is scored online.

A record on ``llmrec.models`` with ``shadow: true`` is checked like any model and then, instead
of the live pointer, sets the shadow pointer ``{models}:shadow`` (`ShadowRegistry.start`).
Every worker follows it (`ShadowRun.follow`) and, for each micro-batch, ranks the same
profiles with the shadow model beside the live one; the shadow's lists are never published.
Per user, one hash ``u:{uid}:sh`` (the user's hash tag: one slot on Redis Cluster) keeps each
model's previous top-k and the version that made it, overwritten at every batch and expiring
after ``shadow_ttl_s``; erasure deletes it with the profile. When the user's next events come,
one script call per user (pipelined) checks, per event with an item, whether that item was in
each model's previous top-k, then stores the new lists: the online hit rate@k of both models
on the same events. The batch's sums go to ``{models}:online:<shadow version>`` in one atomic
script call, by the live version they were paired with (`paired_hits` reads them back).

Only applied events count (a replayed event is skipped by the profile's watermarks, so it is
never counted twice); a crash between the per-user call and the counters loses that batch's
counts (at most once): the estimate stays unbiased, only a little smaller.

With ``shadow_promote_online`` on, promotion asks the shadow's online record too
(`OnlineRule`): enough paired events, and the lower bound of the paired interval of
(shadow − live) above 0. ``llmrec-stream models compare`` prints the same figures.

The pointer, the counters read back and the promotion rule live in `shadow_gate` (re-exported
here); this module is each worker's side: ranking beside the live model and scoring it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.store import profile_key, shadow_key
from llmrec_stream.ranking.model import ModelArtifactError
from llmrec_stream.ranking.online_stats import PairedHits
from llmrec_stream.ranking.protocol import Ranked, Ranker
from llmrec_stream.ranking.registry import load_ranker
from llmrec_stream.ranking.shadow_gate import (
    COUNTS,
    SHADOW_KEY,
    OnlineRule,
    ShadowRegistry,
    count_field,
    online_stats,
    shadow_record,
    stats_key,
)

if TYPE_CHECKING:
    from llmrec_stream.profiles.store import Contribution, ProfileState
    from llmrec_stream.retrieval.protocol import ItemIndex

__all__ = [
    "SHADOW_KEY", "OnlineRule", "ShadowRegistry", "ShadowRun", "online_stats", "shadow_record",
    "stats_key",
]

log = logging.getLogger(__name__)

# One user, one slot. KEYS[1] u:{uid}:sh, KEYS[2] the profile hash (its erasure marker).
# ARGV: newest applied event ts of the batch (ms), ttl (s), the batch's id (its events'
# coordinates), live version, live top-k (JSON array), shadow version, shadow top-k, then the
# item of each applied event. Returns {} when nothing was scored, else {previous live version,
# events, live hits, shadow hits, both hits}. Events count only against lists of the running
# shadow version; the lists the same batch made (a retry after an outage) are not scored again.
_SCORE = """
local x = tonumber(redis.call("HGET", KEYS[2], "x"))
if x ~= nil and tonumber(ARGV[1]) <= x then return {} end
local prev = redis.call("HMGET", KEYS[1], "lv", "l", "sv", "s", "b")
if prev[5] == ARGV[3] then return {} end
local out = {}
if prev[1] and prev[3] == ARGV[6] and #ARGV > 7 then
  local live, shadow = {}, {}
  for _, id in ipairs(cjson.decode(prev[2])) do live[id] = true end
  for _, id in ipairs(cjson.decode(prev[4])) do shadow[id] = true end
  local n, lh, sh, bh = 0, 0, 0, 0
  for i = 8, #ARGV do
    n = n + 1
    local a, b = live[ARGV[i]], shadow[ARGV[i]]
    if a then lh = lh + 1 end
    if b then sh = sh + 1 end
    if a and b then bh = bh + 1 end
  end
  out = {prev[1], n, lh, sh, bh}
end
redis.call("HSET", KEYS[1], "lv", ARGV[4], "l", ARGV[5], "sv", ARGV[6], "s", ARGV[7],
           "b", ARGV[3])
redis.call("EXPIRE", KEYS[1], ARGV[2])
return out
"""

# KEYS[1] a shadow's stats hash; ARGV: k, then field, increment pairs. One call: atomic.
_COUNT = """
redis.call("HSET", KEYS[1], "k", ARGV[1])
for i = 2, #ARGV, 2 do redis.call("HINCRBY", KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

class ShadowRun:
    """One worker's shadow model: follows the pointer, ranks beside the live model, scores."""

    def __init__(
        self,
        client: aioredis.Redis,
        text_dim: int,
        fallback: Ranker,
        metrics: Metrics,
        *,
        ttl_s: int = 7 * 86_400,
        retry_s: float = 30.0,
        encoder: str = "",
    ) -> None:
        self.client, self.text_dim, self.fallback = client, text_dim, fallback
        self.encoder = encoder  # this worker's encoder_family, as ModelFollower's
        self.metrics, self.ttl_s, self.retry_s = metrics, ttl_s, retry_s
        self.ranker: Ranker | None = None
        self.sha256: str | None = None
        self._failed: dict[str, float] = {}
        self._score = client.register_script(_SCORE)
        self._count = client.register_script(_COUNT)

    async def follow(self) -> bool:
        """Load the shadow the pointer names, or drop ours when it is gone; True on a change.

        A model that fails its checks is retried after ``retry_s``; meanwhile none runs.
        """
        try:
            record = await shadow_record(self.client)
        except ModelArtifactError as exc:  # the pointer holds what ShadowRegistry checked
            log.error("shadow pointer unreadable: %s", exc)
            record = None
        if record is None:
            changed = self.ranker is not None
            self.ranker, self.sha256 = None, None
            self.metrics.shadow_model.clear()
            return changed
        if record.sha256 == self.sha256 or time.monotonic() < self._failed.get(record.sha256, 0):
            return False
        try:
            ranker = await asyncio.to_thread(load_ranker, record, self.text_dim, self.fallback,
                                             encoder=self.encoder)
        except ModelArtifactError as exc:
            log.error("shadow model %s not loaded (%s): %s", record.version, exc.reason, exc)
            now = time.monotonic()
            self._failed = {k: t for k, t in self._failed.items() if t > now}
            self._failed[record.sha256] = now + self.retry_s
            self.ranker, self.sha256 = None, None
            return False
        self.ranker, self.sha256 = ranker, record.sha256
        self.metrics.shadow_model.clear()
        self.metrics.shadow_model.labels(ranker.version).set(1)
        log.info("shadow model %s loaded", ranker.version)
        return True

    async def record(
        self,
        states: Sequence[ProfileState],
        inputs: Sequence[ProfileState],
        live: Sequence[Ranked],
        live_version: str,
        batch: Mapping[str, Sequence[Contribution]],
        k: int,
        index: ItemIndex,
        rerank: Callable[[Ranker], Ranker] | None = None,
    ) -> dict[str, PairedHits]:
        """Rank ``inputs`` with the shadow, score both models' previous lists against this
        batch's applied events, store the new lists; the paired hits by live version.
        ``rerank``: what the live ranking added to the live model (the aspect term), applied
        to the shadow too, so the two differ by their models only."""
        shadow = self.ranker
        if shadow is None or not states:
            return {}
        try:
            ranked = (shadow if rerank is None else rerank(shadow)).rank(inputs, k, index)
        except Exception:  # a shadow must never stop the live path: drop it, retry it later
            log.exception("shadow model %s failed to rank; dropped for %.0fs", shadow.version,
                          self.retry_s)
            if self.sha256 is not None:
                self._failed[self.sha256] = time.monotonic() + self.retry_s
            self.ranker, self.sha256 = None, None
            self.metrics.shadow_model.clear()
            return {}
        pipe = self.client.pipeline(transaction=False)
        scored = 0
        for state, mine, theirs in zip(states, live, ranked, strict=True):
            applied = [c for c, ok in zip(batch[state.user_id], state.applied, strict=True)
                       if ok]
            if not applied:  # a replay: nothing new, nothing to score or store
                continue
            items = [i for c in applied if (i := getattr(c.event, "item_id", None))]
            await self._score(
                keys=[shadow_key(state.user_id), profile_key(state.user_id)],
                args=[max(c.event.ts for c in applied), self.ttl_s, _batch_id(applied),
                      live_version, _ids(mine), shadow.version, _ids(theirs), *items],
                client=pipe,
            )
            scored += 1
        if not scored:
            return {}
        sums: dict[str, list[int]] = {}
        for reply in await pipe.execute():
            if reply:
                prev_live = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
                row = sums.setdefault(prev_live, [0, 0, 0, 0])
                for j in range(4):
                    row[j] += int(reply[1 + j])
        if not sums:
            return {}
        args: list[Any] = [k]
        for live_version_, row in sums.items():
            for count, n in zip(COUNTS, row, strict=True):
                args += [count_field(live_version_, count), n]
        await self._count(keys=[stats_key(shadow.version)], args=args)
        out = {v: PairedHits(*row) for v, row in sums.items()}
        for v, hits in out.items():
            for role, version, n in (("live", v, hits.live), ("shadow", shadow.version,
                                                              hits.shadow)):
                self.metrics.shadow_events.labels(version, role).inc(hits.events)
                self.metrics.shadow_hits.labels(version, role).inc(n)
        return out


def _batch_id(applied: Sequence[Contribution]) -> str:
    """The applied events' log coordinates: the same batch, retried, has the same id."""
    first, last = applied[0].source, applied[-1].source
    return f"{first.topic}:{first.partition}:{first.offset}/{last.topic}:{last.partition}:" \
        f"{last.offset}/{len(applied)}"


def _ids(ranked: Ranked) -> str:
    """A ranker's organic top-k ids as the hash keeps them (JSON: any id round-trips)."""
    return "[]" if ranked is None else json.dumps([i for i, _ in ranked[1]])
