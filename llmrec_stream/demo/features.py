"""The demo's business features (``--features``): campaigns to place, what the view marks.

Reasons are in every record; ``reasons`` shows them next to the lists. ``sponsored`` publishes a
few campaigns before the replay and, at the end, what they spent, counted from the records.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.table import Table

from llmrec_stream.demo.watch import Observed
from llmrec_stream.events import topics
from llmrec_stream.sources.base import OutboundEvent, Replay, envelope
from llmrec_stream.sources.synthetic import SyntheticReplay

FEATURES = ("reasons", "sponsored")
HOUR_MS = 3_600_000


def parse_features(spec: str) -> frozenset[str]:
    """``"reasons,sponsored"`` or ``"all"`` → the feature names; an unknown name is an error."""
    names = {n.strip() for n in spec.split(",") if n.strip()}
    if "all" in names:
        return frozenset(FEATURES)
    unknown = names - set(FEATURES)
    if unknown:
        raise ValueError(f"unknown demo features {sorted(unknown)}; known: {FEATURES} or all")
    return frozenset(names)


def demo_campaigns(replay: Replay, n: int = 3, bid: float = 0.05,
                   budget: float = 1.0) -> list[OutboundEvent]:
    """A few campaigns over the replay's items: one per category (targeting it) in a synthetic
    world, otherwise on a few items untargeted. Half their time is gone when the demo starts,
    so pacing lets them spend about half the budget."""
    now = int(time.time() * 1000)
    picks: list[tuple[str, list[str]]] = []
    if isinstance(replay, SyntheticReplay):
        for cat in replay.categories[:n]:
            items = sorted(i for i, c in replay.item_category.items() if c == cat)
            picks.append((items[len(items) // 2], [cat]))
    else:
        picks = [(e.key, []) for e in replay.items[:n]]
    out = []
    for k, (item, cats) in enumerate(picks):
        cid = f"demo-camp-{k}"
        value = {**envelope(f"{cid}-v1", 0), "campaign_id": cid, "item_id": item, "bid": bid,
                 "budget": budget, "start_ts": now - HOUR_MS, "end_ts": now + HOUR_MS}
        if cats:
            value["categories"] = cats
        out.append(OutboundEvent(topics.SPONSORED, cid, value))
    return out


def sponsored_table(observed: Observed, campaigns: list[OutboundEvent]) -> Table:
    """Impressions and spend per campaign, counted from every record received."""
    shown: Counter[str] = Counter()
    for rec in observed.all_records:
        for p in rec.get("placements") or []:
            if p:
                shown[p["campaign_id"]] += 1
    t = Table(title="sponsored slots (counted from the published records)")
    for col in ("campaign", "item", "impressions", "spend", "budget", "within budget"):
        t.add_column(col, justify="right" if col != "campaign" else "left")
    for c in campaigns:
        v = c.value
        spend = shown[c.key] * float(v["bid"])
        t.add_row(c.key, str(v["item_id"]), str(shown[c.key]), f"{spend:.2f}",
                  f"{float(v['budget']):.2f}", "yes" if spend <= float(v["budget"]) else "NO")
    return t


def reason_text(reason: dict[str, object] | None) -> str:
    """A reason as the view shows it: ids only, as the record carries them."""
    if reason is None:
        return ""
    where = f"{reason['topic']}[{reason['partition']}]@{reason['offset']}"
    item = reason.get("item_id")
    return f"{reason['kind']} {item} ({where})" if item else f"your comment ({where})"
