"""Which model runs in shadow, and whether it has won online: the pointer ``{models}:shadow``,
the online counters ``{models}:online:<shadow version>`` read back as paired hits, and the
promotion rule over them (`OnlineRule`, asked by `ShadowRegistry.refusal`).

Apart from `shadow` (each worker's ranking and scoring beside the live model) because this is
the side that decides models: the registry and ``llmrec-stream models compare`` read it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from llmrec_stream.ranking.online_stats import PairedHits, paired_difference
from llmrec_stream.ranking.registry import ModelRecord

log = logging.getLogger(__name__)

SHADOW_KEY = "{models}:shadow"
#: The four counters kept per (shadow, live version) pair, in `PairedHits` order.
COUNTS = ("events", "live", "shadow", "both")


def stats_key(shadow_version: str) -> str:
    """The online counters of one shadow model (tag ``{models}``: the registry's slot)."""
    return f"{{models}}:online:{shadow_version}"


def count_field(live_version: str, count: str) -> str:
    """The field of one of `COUNTS` against one live version in a `stats_key` hash."""
    return f"{live_version}:{count}"


# KEYS[1] the shadow pointer; ARGV[1] a version just promoted: its shadow run is over.
_END = """
if redis.call("HGET", KEYS[1], "version") == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""


async def online_stats(
    client: aioredis.Redis, shadow_version: str
) -> tuple[int | None, dict[str, PairedHits]]:
    """(k, paired hits by live version) of one shadow model; k is None before any count."""
    raw: Mapping[Any, Any] = await client.hgetall(stats_key(shadow_version))
    fields = {(f.decode() if isinstance(f, bytes) else f): int(v) for f, v in raw.items()}
    k = fields.pop("k", None)
    by_live: dict[str, dict[str, int]] = {}
    for name, value in fields.items():
        live, _, count = name.rpartition(":")
        if count in COUNTS:
            by_live.setdefault(live, {})[count] = value
    return k, {live: PairedHits(*(c.get(n, 0) for n in COUNTS)) for live, c in by_live.items()}


async def shadow_record(client: aioredis.Redis) -> ModelRecord | None:
    """The model running in shadow now, if any."""
    raw = await client.hget(SHADOW_KEY, "record")
    return None if raw is None else ModelRecord.parse(raw)


@dataclass(frozen=True, slots=True)
class OnlineRule:
    """When a shadow has won online: ``min_events`` paired events at least, and the lower
    bound of the ``level`` interval of (shadow − live) hit rate above 0."""

    min_events: int = 500
    level: float = 0.95

    def verdict(self, hits: PairedHits | None) -> tuple[bool, str]:
        """(won, why) for the paired counts against the live model (None: never paired)."""
        if hits is None or hits.events < self.min_events:
            n = 0 if hits is None else hits.events
            return False, f"{n} paired events online, {self.min_events} needed"
        diff, low, high = paired_difference(hits, self.level)
        why = (f"online hit rate {hits.shadow_rate:.4f} vs live {hits.live_rate:.4f} on "
               f"{hits.events} events, difference {diff:+.4f} [{low:+.4f}, {high:+.4f}] "
               f"at {self.level:.0%}")
        return low > 0, why


@dataclass
class ShadowRegistry:
    """The side of the worker that decides models: starts shadows, gates promotions."""

    client: aioredis.Redis
    rule: OnlineRule | None = None
    """None: promotion looks at offline metrics only."""

    def __post_init__(self) -> None:
        self._end = self.client.register_script(_END)

    async def start(self, record: ModelRecord) -> None:
        """Run ``record`` in shadow from now on (it replaces any earlier shadow)."""
        await self.client.hset(SHADOW_KEY, mapping={
            "version": record.version, "sha256": record.sha256, "record": record.dumps(),
            "since_ms": int(time.time() * 1000)})
        log.info("model %s runs in shadow", record.version)

    async def refusal(self, record: ModelRecord, live: ModelRecord | None) -> str | None:
        """Why ``record`` may not replace ``live`` online, or None when it may (no rule, no
        live model, the same version, or a win)."""
        if self.rule is None or live is None or live.version == record.version:
            return None
        _, by_live = await online_stats(self.client, record.version)
        won, why = self.rule.verdict(by_live.get(live.version))
        return None if won else f"{record.version} vs live {live.version}: {why}"

    async def promoted(self, version: str) -> None:
        await self._end(keys=[SHADOW_KEY], args=[version])
