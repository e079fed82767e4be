"""Sponsored slots (issue 14, item 1) through the real broker, live workers and the real Redis.

Two workers of one group place one campaign for more users than its budget pays for: the
impressions counted from the published records never cost more than the budget, and match
what Redis charged. The charge script itself is checked against Redis under concurrency and
pacing, and the slot rules on plain lists.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from llmrec_stream.demo.watch import OutputWatcher
from llmrec_stream.devstack import DevStack
from llmrec_stream.events import topics
from llmrec_stream.events.models import Campaign
from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.store import ProfileState, profile_key
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.retrieval.exact import ExactIndex
from llmrec_stream.sources.base import OutboundEvent, envelope
from llmrec_stream.sources.synthetic import SyntheticReplay, comment_text_for
from llmrec_stream.sponsored.campaigns import MICROS, CampaignTable
from llmrec_stream.sponsored.slots import SlotRules, Sponsor, insert, parse_positions
from llmrec_stream.waiting import wait_until
from tests.integration.live import LiveWorker
from tests.integration.module_fixtures import own_stack, replay_world

DAY_MS = 86_400_000


stack = own_stack()
# categories larger than a top-20: a campaign's item is not in every organic list already
world = replay_world(n_items=480, n_users=10, n_events=50, seed=21)


def _campaign(cid: str, item: str, bid: float, budget: float, start: int, end: int,
              **extra: object) -> OutboundEvent:
    value = {**envelope(f"{cid}-v1", 0), "campaign_id": cid, "item_id": item, "bid": bid,
             "budget": budget, "start_ts": start, "end_ts": end, **extra}
    return OutboundEvent(topics.SPONSORED, cid, value)


def test_two_workers_never_spend_more_than_the_budget(
    stack: DevStack, encoder_dir: Path, world: SyntheticReplay,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    logdir = tmp_path_factory.mktemp("sponsored")
    app_id = f"sponsored-{int(time.time())}"
    workers = [LiveWorker(stack, encoder_dir, logdir, app_id=app_id, worker_id=f"{app_id}-{n}")
               for n in range(2)]
    watcher = OutputWatcher(stack.kafka_bootstrap, keep_all=True)
    watcher.start(stack.partitions)
    try:
        for w in workers:
            w.start()
        feed = workers[0]
        feed.publish(world.items)
        feed.wait_catalog(len(world.items))
        category = world.categories[2]
        in_category = sorted(i for i, c in world.item_category.items() if c == category)
        now = int(time.time() * 1000)
        # bid 1, budget 5: five impressions; pacing nearly spent (started 10 days ago, 1 h left)
        feed.publish([_campaign("camp-b", in_category[0], 1.0, 5.0, now - 10 * DAY_MS,
                                now + 3_600_000, categories=[category])])
        wait_until(lambda: feed.redis.hexists("{sponsored}:campaigns", "camp-b"), 60,
                   "the campaign")
        time.sleep(1.5)  # every worker's table refresh (0.5 s) has seen it
        # both workers hold comments partitions before the demand arrives (a worker's catalog
        # can be ready before Faust assigned it anything): both then compete for the budget
        wait_until(lambda: all(_holds(w, topics.COMMENTS) for w in workers), 120, "both assigned")
        rng = random.Random(4)
        users = [f"sp-{n}" for n in range(24)]
        feed.publish([
            OutboundEvent(topics.COMMENTS, u, {**envelope(f"{u}-c", 0), "user_id": u,
                                               "text": comment_text_for(category, rng)})
            for u in users
        ])
        wait_until(lambda: set(users) <= set(watcher.snapshot().latest), 60, "a record per user")
        records = [r for r in watcher.snapshot().all_records if r.get("user_id") in users]
        placed = [(r, n) for r in records for n, p in enumerate(r["placements"]) if p]
        assert all(r["placements"][n] == {"sponsored": True, "campaign_id": "camp-b"}
                   for r, n in placed)
        spent = int(feed.redis.hget("sp:{camp-b}", "spent") or 0)
        # demand (24 users who wrote about the category) is far above what the budget pays
        assert len(placed) * 1.0 <= 5.0
        assert spent == len(placed) * MICROS
        assert len(placed) == 5, [r["user_id"] for r, _ in placed]
        assert feed.redis.hget("sp:{camp-b}", "exhausted") == b"1"
        for r, n in placed:
            assert n == 2  # the first configured slot, position 3
            assert r["items"][n] == in_category[0]
            organic = [s for m, s in enumerate(r["scores"]) if m != n]
            assert organic == sorted(organic, reverse=True)  # organic order kept
            assert r["reasons"][n] is not None
        samples = [w.metrics() for w in workers]
        per_worker = [m.get("llmrec_sponsored_impressions_total", 0.0) for m in samples]
        assert sum(per_worker) == len(placed), per_worker
        # both workers asked for the same budget: what one did not get was refused to it
        asked = [sum(v for k, v in m.items() if k.startswith(
            ("llmrec_sponsored_impressions_total", "llmrec_sponsored_charges_refused_total")))
            for m in samples]
        assert all(a > 0 for a in asked), asked
        exhausted = [w.metrics().get("llmrec_sponsored_campaigns_exhausted_total", 0.0)
                     for w in workers]
        assert sum(exhausted) == 1, exhausted
        print(f"impressions per worker {per_worker}, charges asked per worker {asked}, "
              f"spent {spent / MICROS} of 5.0")
        # bad input is a dead letter, a tombstone withdraws the campaign
        feed.publish([_campaign("camp-bad", in_category[1], 1.0, 5.0, now, now - 1)])
        feed.publish_raw(topics.SPONSORED, b"camp-b", None)  # type: ignore[arg-type]
        wait_until(lambda: watcher.snapshot().dead_letters.get("schema_violation") == 1, 30,
              "the bad campaign's dead letter")
        wait_until(lambda: not feed.redis.hexists("{sponsored}:campaigns", "camp-b"), 30,
              "the withdrawal")
        assert not feed.redis.hexists("{sponsored}:campaigns", "camp-bad")
        assert int(feed.redis.hget("sp:{camp-b}", "spent") or 0) == spent  # accounting stays
    finally:
        watcher.stop()
        for w in workers:
            assert w.stop() == 0, w.proc.log_tail()


def test_the_charge_is_atomic_across_clients_and_paced(stack: DevStack) -> None:
    async def run() -> None:
        clients = [aioredis.Redis.from_url(stack.redis_url) for _ in range(4)]
        tables = [CampaignTable(c, 4) for c in clients]
        now = int(time.time() * 1000)
        over = Campaign("e", now, "race", "i1", 0.1, 0.7, now - DAY_MS * 10_000, now + 60_000)
        paced = Campaign("e", now, "paced", "i1", 1.0, 10.0, now - 50_000, now + 50_000)
        await tables[0].upsert([over, paced], [None, np.ones(4, np.float32)])
        try:
            results = await asyncio.gather(
                *(t.charge(["race"] * 25, now) for t in tables)
            )
            charged = sum(c.charged for rs in results for c in rs)
            assert charged == 7  # 0.7 / 0.1, exactly, out of 100 asks from 4 clients
            assert await tables[1].spent("race") == 700_000
            assert sum(c.exhausted_now for rs in results for c in rs) == 1
            # half the time gone: spend follows the clock, at most one bid ahead of it
            got = await tables[0].charge(["paced"] * 10, now)
            assert [c.charged for c in got] == [True] * 6 + [False] * 4
            assert {c.why for c in got[6:]} == {"paced"}
            assert not (await tables[0].charge(["paced"], now + 60_000))[0].charged  # ended
            await tables[2].refresh()
            assert {"race", "paced"} <= set(tables[2].campaigns)
            assert tables[2].campaigns["paced"].query is not None
        finally:
            for c in clients:
                await c.aclose()

    asyncio.run(run())


def test_sponsored_items_go_to_their_slots_and_organic_order_stays() -> None:
    organic = [(f"o{n}", 1.0 - n / 10) for n in range(10)]
    got = insert(organic, [(8, "s2", 0.4), (3, "s1", 0.5)], 10)
    assert [i for i, _ in got] == ["o0", "o1", "s1", "o2", "o3", "o4", "o5", "s2", "o6", "o7"]
    assert [i for i, _ in got if i.startswith("o")] == [f"o{n}" for n in range(8)]
    assert insert(organic[:2], [(8, "s", 0.1)], 10)[-1] == ("s", 0.1)  # short list: appended
    assert parse_positions(" 8, 3") == (3, 8)
    with pytest.raises(ValueError, match="1-based"):
        parse_positions("0,3")


def test_frequency_cap_per_user_and_window_in_the_users_own_hash(stack: DevStack) -> None:
    """Cap 2 a window: a user gets the campaign twice, then not, then again next window; the
    count lives in their profile hash, pruned to the current window."""
    dim = 8

    def unit(v: list[float]) -> np.ndarray:
        a = np.array(v, np.float32)
        return a / np.linalg.norm(a)

    async def run() -> None:
        client = aioredis.Redis.from_url(stack.redis_url)
        try:
            index = ExactIndex(dim)
            index.upsert(["o1", "o2", "ad"], np.stack([unit([1, 0.1, 0, 0, 0, 0, 0, 0]),
                                                      unit([1, 0, 0.2, 0, 0, 0, 0, 0]),
                                                      unit([1, 0, 0, 0.5, 0, 0, 0, 0])]))
            catalog = Catalog(client, index)
            table = CampaignTable(client, dim, refresh_s=0)
            now = int(time.time() * 1000)
            camp = Campaign("e", now, "cap-c", "ad", 0.01, 100.0, now - 1000 * DAY_MS,
                            now + DAY_MS)
            await table.upsert([camp], [None])
            rules = SlotRules(positions=(2,), max_items=1, floor=0.3, frequency_cap=2,
                              frequency_window_s=3600)
            sponsor = Sponsor(table, client, rules, Metrics(), mix_text=0.5)
            user = ProfileState("cap-user", (), unit([1, 0, 0, 0, 0, 0, 0, 0]),
                                np.zeros(dim, np.float32), frozenset())
            organic = [("o1", 0.99), ("o2", 0.98)]
            shown = []
            for t in (now, now + 1, now + 2, now + 3_600_000):
                [(top, marks)] = await sponsor.place([user], [list(organic)], catalog, 3, t)
                shown.append([i for i, _ in top])
                assert marks == [None, "cap-c", None] or marks == [None, None]
            assert shown == [["o1", "ad", "o2"], ["o1", "ad", "o2"], ["o1", "o2"],
                             ["o1", "ad", "o2"]]
            fields = await client.hgetall(profile_key("cap-user"))
            window = (now + 3_600_000) // 3_600_000
            assert fields == {b"ad:cap-c": f"1:{window}".encode()}
            bought = ProfileState("cap-user-2", (), user.text, user.behaviour, frozenset({"ad"}))
            [(top, _)] = await sponsor.place([bought], [list(organic)], catalog, 3, now)
            assert [i for i, _ in top] == ["o1", "o2"]  # never an item the user bought
        finally:
            await client.aclose()

    asyncio.run(run())


def _holds(worker: LiveWorker, topic: str) -> bool:
    """Whether the worker reports partitions of ``topic`` as assigned (its lag series)."""
    return any(k.startswith("llmrec_consumer_lag{") and f'topic="{topic}"' in k
               for k in worker.metrics())
