"""The campaign table every worker holds, and the atomic charge of one impression.

Like the catalog, the table is a global table: ``llmrec.sponsored`` is consumed by whichever
worker owns a campaign's partition, which stores the campaign (and its encoded targeting query)
in Redis under one hash tag, ``{sponsored}``, and bumps a version counter; every worker mirrors
the table in memory and reloads it when the version moved (one GET per check).

Budgets are not in the table: each campaign has its own hash ``sp:{<campaign id>}`` (its own
slot, so it works on Redis Cluster) that ``charge.lua`` checks and charges in one step, so any
number of workers never spend more than the budget. Money is kept in integer micro-units.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from llmrec_stream.events.models import Campaign

TABLE = "{sponsored}:campaigns"
QUERIES = "{sponsored}:queries"
VERSION = "{sponsored}:version"
MICROS = 1_000_000
CHARGE_LUA = resources.files("llmrec_stream.sponsored").joinpath("charge.lua").read_text("utf-8")


def budget_key(campaign_id: str) -> str:
    return f"sp:{{{campaign_id}}}"


def micros(amount: float) -> int:
    return round(amount * MICROS)


@dataclass(frozen=True, slots=True)
class LiveCampaign:
    """A campaign as a worker mirrors it, with its targeting query's vector."""

    campaign: Campaign
    query: npt.NDArray[np.float32] | None

    def active(self, now_ms: int) -> bool:
        return self.campaign.start_ts <= now_ms < self.campaign.end_ts


@dataclass(frozen=True, slots=True)
class Charge:
    charged: bool
    why: str
    exhausted_now: bool
    bid_micros: int


class CampaignTable:
    """The Redis side and the in-memory mirror of the campaigns."""

    def __init__(self, client: aioredis.Redis, dim: int, refresh_s: float = 0.5) -> None:
        self.client = client
        self.dim = dim
        self.refresh_s = refresh_s
        """Checks for changes at most this often (each check is a round trip)."""
        self.campaigns: dict[str, LiveCampaign] = {}
        self._version: int | None = None
        self._checked = -float("inf")
        self._charge = client.register_script(CHARGE_LUA)

    async def upsert(
        self, campaigns: Sequence[Campaign], queries: Sequence[npt.NDArray[np.float32] | None]
    ) -> None:
        """Store campaigns (a later version of one replaces it; its spend so far stays)."""
        pipe = self.client.pipeline(transaction=False)
        for c, q in zip(campaigns, queries, strict=True):
            pipe.hset(TABLE, c.campaign_id, json.dumps(_fields(c)))
            if q is None:
                pipe.hdel(QUERIES, c.campaign_id)
            else:
                pipe.hset(QUERIES, c.campaign_id, q.astype("<f4").tobytes())
            pipe.hset(budget_key(c.campaign_id), mapping={
                "budget": micros(c.budget), "bid": micros(c.bid),
                "start": c.start_ts, "end": c.end_ts,
            })
            pipe.hsetnx(budget_key(c.campaign_id), "spent", 0)
            # a raised budget may make room again
            pipe.hdel(budget_key(c.campaign_id), "exhausted")
        pipe.incr(VERSION)
        await pipe.execute()

    async def withdraw(self, campaign_ids: Sequence[str]) -> None:
        """A tombstone: the campaign stops (its spend record stays, for accounting)."""
        pipe = self.client.pipeline(transaction=False)
        for cid in campaign_ids:
            pipe.hdel(TABLE, cid)
            pipe.hdel(QUERIES, cid)
            pipe.hset(budget_key(cid), "end", 0)
        pipe.incr(VERSION)
        await pipe.execute()

    async def refresh(self) -> bool:
        """Reload the mirror if the table changed since the last look; True when it did."""
        if time.monotonic() - self._checked < self.refresh_s:
            return False
        self._checked = time.monotonic()
        raw: Any = await self.client.get(VERSION)
        version = int(raw) if raw is not None else 0
        if version == self._version:
            return False
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(TABLE)
        pipe.hgetall(QUERIES)
        table, queries = await pipe.execute()
        loaded: dict[str, LiveCampaign] = {}
        for cid_raw, value in table.items():
            cid = _text(cid_raw)
            q = queries.get(cid_raw)
            vec = None if q is None else np.frombuffer(q, dtype="<f4").astype(np.float32)
            if vec is not None and vec.shape != (self.dim,):
                vec = None  # another encoder's vector: no targeting match rather than a crash
            loaded[cid] = LiveCampaign(_campaign(cid, json.loads(value)), vec)
        self.campaigns = loaded
        self._version = version
        return True

    async def charge(self, campaign_ids: Sequence[str], now_ms: int | None = None) -> list[Charge]:
        """Charge one impression to each campaign named (one round trip for all)."""
        if not campaign_ids:
            return []
        now = int(time.time() * 1000) if now_ms is None else now_ms
        pipe = self.client.pipeline(transaction=False)
        for cid in campaign_ids:
            await self._charge(keys=[budget_key(cid)], args=[now], client=pipe)
        out: list[Charge] = []
        for charged, why, exhausted, bid in await pipe.execute():
            out.append(Charge(bool(charged), _text(why), bool(exhausted), int(bid)))
        return out

    async def spent(self, campaign_id: str) -> int:
        """Micro-units charged so far."""
        raw: Any = await self.client.hget(budget_key(campaign_id), "spent")
        return 0 if raw is None else int(raw)


def _fields(c: Campaign) -> dict[str, Any]:
    return {
        "event_id": c.event_id, "ts": c.ts, "item_id": c.item_id, "bid": c.bid,
        "budget": c.budget, "start_ts": c.start_ts, "end_ts": c.end_ts,
        "categories": list(c.categories), "query": c.query is not None,
    }


def _campaign(cid: str, f: dict[str, Any]) -> Campaign:
    # the query's text is not kept: only its vector is needed, and whether it had one
    return Campaign(f["event_id"], f["ts"], cid, f["item_id"], f["bid"], f["budget"],
                    f["start_ts"], f["end_ts"], tuple(f["categories"]),
                    "" if f["query"] else None)


def _text(v: bytes | str) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else v
