"""Sponsored items into a micro-batch's top-k lists: who is eligible, where they go, who pays.

For each user, a campaign is a candidate when it is live, its item is in the catalog, not in
the user's organic top-k and not bought by them, its targeting matches (one of its categories
among the categories of the user's organic top-k; its query's cosine to the user's profile at
least the floor), the item's relevance (cosine to the user's fused profile: the fused ranker's
own score) passes the floor, and the user saw it fewer than ``frequency_cap`` times in the
current window. Candidates go by bid × relevance (expected value per impression) into the
configured slots; each placement is charged in Redis first (`CampaignTable.charge`), and a
refused charge (budget spent, pacing, ended) passes the slot to the next candidate. Organic
items keep their order: sponsored ones are inserted at their slots, the rest shift down and
the list is cut back to k.

Frequency counts live in the user's own profile hash (``ad:<campaign>`` fields of
``u:{uid}:p``, ``cap.lua``): the user's slot, written only by the worker that owns the user's
partition, removed with everything else by an erasure, and pruned to the current window (epoch-
aligned), so a user holds one ~30-byte field per campaign seen in that window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import redis.asyncio as aioredis

from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.fusion import Vector, fuse
from llmrec_stream.profiles.store import ProfileState, profile_key
from llmrec_stream.ranking.protocol import TopK
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.sponsored.campaigns import MICROS, CampaignTable, LiveCampaign

CAP_LUA = resources.files("llmrec_stream.sponsored").joinpath("cap.lua").read_text("utf-8")

#: Rounds of charging per batch: a refused charge hands the slot to the next candidate.
ROUNDS = 3


@dataclass(frozen=True, slots=True)
class SlotRules:
    """Where and how often sponsored items may appear (settings ``sponsored_*``)."""

    positions: tuple[int, ...] = (3, 8)
    """1-based positions in the top-k."""
    max_items: int = 2
    floor: float = 0.3
    frequency_cap: int = 3
    frequency_window_s: float = 86_400.0


def parse_positions(spec: str) -> tuple[int, ...]:
    """``"3,8"`` → (3, 8); positions are 1-based, distinct, ascending."""
    out = tuple(sorted({int(p) for p in spec.split(",") if p.strip()}))
    if any(p < 1 for p in out):
        raise ValueError(f"sponsored positions are 1-based: {spec!r}")
    return out


def insert(organic: TopK, placed: Sequence[tuple[int, str, float]], k: int) -> TopK:
    """Put ``(1-based position, item, score)`` into the organic list; organic order kept."""
    out = list(organic)
    for pos, item, score in sorted(placed):
        out.insert(min(pos - 1, len(out)), (item, score))
    return out[:k]


@dataclass(slots=True)
class _User:
    idx: int
    query: Vector
    candidates: list[tuple[float, float, LiveCampaign]]  # (bid × relevance, relevance, campaign)
    slots: list[int]
    placed: list[tuple[int, str, float, str]]  # (position, item, relevance, campaign id)


class Sponsor:
    """Places sponsored items for one micro-batch; one per worker."""

    def __init__(
        self, table: CampaignTable, client: aioredis.Redis, rules: SlotRules, metrics: Metrics,
        mix_text: float,
    ) -> None:
        self.table = table
        self.client = client
        self.rules = rules
        self.metrics = metrics
        self.mix_text = mix_text
        self._cap = client.register_script(CAP_LUA)

    async def place(
        self, states: Sequence[ProfileState], tops: list[TopK], catalog: Catalog, k: int,
        now_ms: int | None = None,
    ) -> list[tuple[TopK, list[str | None]]]:
        """Per user, the list with its sponsored items placed, and per entry the campaign
        that placed it (None for an organic one)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        await self.table.refresh()
        live = [c for c in self.table.campaigns.values()
                if c.active(now) and c.campaign.item_id in catalog.index]
        out: list[tuple[TopK, list[str | None]]] = [(t, [None] * len(t)) for t in tops]
        slots = [p for p in self.rules.positions if p <= k][: self.rules.max_items]
        if not live or not slots:
            return out
        categories = await self._categories(live, tops, catalog)
        users = [u for i, s in enumerate(states)
                 if (u := self._candidates(i, s, tops[i], live, categories, catalog))
                 is not None]
        await self._drop_capped(users, states, now)
        await self._charge(users, slots, now)
        await self._count(users, states, now)
        for u in users:
            if u.placed:
                top = insert(tops[u.idx], [(p, i, r) for p, i, r, _ in u.placed], k)
                by_item = {i: c for _, i, _, c in u.placed}
                out[u.idx] = (top, [by_item.get(item) for item, _ in top])
        return out

    def _candidates(
        self, idx: int, state: ProfileState, top: TopK, live: list[LiveCampaign],
        categories: dict[str, str | None], catalog: Catalog,
    ) -> _User | None:
        query = fuse(state.text, state.behaviour, self.mix_text)
        if not np.any(query):
            return None
        organic = {item for item, _ in top}
        wanted = {categories.get(item) for item in organic} - {None}
        found: list[tuple[float, float, LiveCampaign]] = []
        for lc in live:
            c = lc.campaign
            if c.item_id in organic or c.item_id in state.bought:
                continue
            if c.categories and not wanted & set(c.categories):
                continue
            if c.query is not None and (
                lc.query is None or _cos(query, lc.query) < self.rules.floor
            ):
                continue
            vec = catalog.index.vector(c.item_id)
            relevance = _cos(query, vec) if vec is not None else -1.0
            if relevance >= self.rules.floor:
                found.append((c.bid * relevance, relevance, lc))
        if not found:
            return None
        found.sort(key=lambda f: (-f[0], f[2].campaign.campaign_id))
        return _User(idx, query, found, [], [])

    async def _categories(
        self, live: list[LiveCampaign], tops: list[TopK], catalog: Catalog
    ) -> dict[str, str | None]:
        """Categories of the organic items, only when some live campaign targets categories."""
        if not any(lc.campaign.categories for lc in live):
            return {}
        ids = sorted({item for top in tops for item, _ in top})
        meta = await catalog.meta(ids)
        return {i: (meta.get(i) or {}).get("category") for i in ids}

    async def _drop_capped(
        self, users: list[_User], states: Sequence[ProfileState], now: int
    ) -> None:
        """Remove candidates the user saw ``frequency_cap`` times in the current window."""
        if not users:
            return
        pipe = self.client.pipeline(transaction=False)
        for u in users:
            fields = [_cap_field(lc.campaign.campaign_id) for _, _, lc in u.candidates]
            pipe.hmget(profile_key(states[u.idx].user_id), fields)
        window = self._window(now)
        for u, counts in zip(users, await pipe.execute(), strict=True):
            u.candidates = [cand for cand, raw in zip(u.candidates, counts, strict=True)
                            if _seen(raw, window) < self.rules.frequency_cap]

    async def _charge(self, users: list[_User], slots: list[int], now: int) -> None:
        """Fill each user's slots in order, charging every placement before it counts."""
        for u in users:
            u.slots = list(slots)
        for _ in range(ROUNDS):
            asks = [(u, u.candidates.pop(0)) for u in users if u.slots and u.candidates]
            if not asks:
                return
            results = await self.table.charge([c.campaign.campaign_id for _, (_, _, c) in asks],
                                              now)
            for (u, (_, relevance, lc)), res in zip(asks, results, strict=True):
                cid = lc.campaign.campaign_id
                if res.exhausted_now:
                    self.metrics.sponsored_exhausted.inc()
                if not res.charged:
                    self.metrics.sponsored_refused.labels(res.why).inc()
                    continue
                self.metrics.sponsored_impressions.inc()
                self.metrics.sponsored_spend.inc(res.bid_micros / MICROS)
                self.metrics.sponsored_relevance.observe(relevance)
                u.placed.append((u.slots.pop(0), lc.campaign.item_id, relevance, cid))

    async def _count(
        self, users: list[_User], states: Sequence[ProfileState], now: int
    ) -> None:
        """Record each charged impression against the user's frequency cap."""
        shown = [u for u in users if u.placed]
        if not shown:
            return
        window = self._window(now)
        pipe = self.client.pipeline(transaction=False)
        for u in shown:
            await self._cap(keys=[profile_key(states[u.idx].user_id)],
                            args=[window, *(cid for *_, cid in u.placed)], client=pipe)
        await pipe.execute()

    def _window(self, now_ms: int) -> int:
        """Windows are aligned to the epoch: the same for every worker, one number to store."""
        return int(now_ms // (self.rules.frequency_window_s * 1000))


def _cap_field(campaign_id: str) -> str:
    return f"ad:{campaign_id}"


def _seen(raw: bytes | str | None, window: int) -> int:
    """Impressions in ``window`` of a ``"<impressions>:<window>"`` field (cap.lua)."""
    if raw is None:
        return 0
    text = raw.decode() if isinstance(raw, bytes) else raw
    seen, _, when = text.partition(":")
    return int(seen) if when == str(window) else 0


def _cos(a: Vector, b: Vector) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b) / (na * nb) if na > 0 and nb > 0 else -1.0
