"""The demo's business features (``--features``): campaigns to place, what the view marks.

Reasons are in every record; ``reasons`` shows them next to the lists. ``sponsored`` publishes a
few campaigns before the replay and, at the end, what they spent, counted from the records.
``social`` adds newcomers without history who follow users of one taste (``llmrec.follows``),
late in the replay, and shows what the people they follow brought into their lists.
``sentiment`` turns the worker's text signals on (the sentiment head and aspect anchors that
``llmrec-stream train-sentiment`` ships in the encoder artifact): unrated comments are signed
by what they say, and each list shows the user's aspect scores beside it; the aspect term of
the ranking is on (``LLMREC_ASPECT_RANK_WEIGHT``, `DEMO_ASPECT_WEIGHT` unless set), so a list
says which of its items a user's aspect scores brought in. ``shadow`` trains
the ranking model on the replay's log half-way through, runs it in shadow and shows live vs
shadow online hit rates at the end (`llmrec_stream.demo.shadow`).
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

from rich.table import Table

from llmrec_stream.demo.watch import Observed
from llmrec_stream.events import topics
from llmrec_stream.sources.base import OutboundEvent, Replay, envelope
from llmrec_stream.sources.synthetic import SyntheticReplay

FEATURES = ("reasons", "sponsored", "social", "sentiment", "shadow")
#: The aspect term's weight in the demo, to show what it does: not the default (0, off), which
#: the validation replay chose (docs/features.md).
DEMO_ASPECT_WEIGHT = 2.0
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
    if reason["kind"] == "aspect":
        return f"what you said of {reason.get('aspect')} (your comment {where})"
    item = reason.get("item_id")
    return f"{reason['kind']} {item} ({where})" if item else f"your comment ({where})"


# --- social: newcomers who follow people of one taste --------------------------------------


def social_newcomers(replay: Replay, n: int = 2, followees: int = 3
                     ) -> tuple[Replay, dict[str, tuple[str, list[str]]]]:
    """The replay with ``n`` newcomers who follow ``followees`` users each, 90% of the way in
    (the followees have a history by then): newcomer -> (the followees' taste, followees).

    In a synthetic world each newcomer follows users of one taste category, a different one
    per newcomer; otherwise the most active users. A follow is the newcomer's only event, so
    whatever their list holds came from the people they follow.
    """
    counts = Counter(e.value.get("user_id") for e in replay.events)
    plan: dict[str, tuple[str, list[str]]] = {}
    if isinstance(replay, SyntheticReplay):
        by_taste: dict[str, list[str]] = defaultdict(list)
        for user, _ in counts.most_common():
            if user in replay.user_taste:
                by_taste[replay.user_taste[user]].append(str(user))
        cats = [c for c in replay.categories if len(by_taste[c]) >= followees][:n]
        for k, cat in enumerate(cats):
            plan[f"demo-newcomer-{k}"] = (cat, by_taste[cat][:followees])
    else:
        active = [str(u) for u, _ in counts.most_common(followees)]
        for k in range(n):
            plan[f"demo-newcomer-{k}"] = ("(most active users)", active)
    at = len(replay.events) * 9 // 10
    ts = replay.events[at - 1].value["ts"] if at else 0
    follows = [
        OutboundEvent(topics.FOLLOWS, newcomer,
                      {**envelope(f"{newcomer}-f{j}", ts), "user_id": newcomer,
                       "followee_id": followee, "action": "follow"})
        for newcomer, (_, people) in plan.items() for j, followee in enumerate(people)
    ]
    events = [*replay.events[:at], *follows, *replay.events[at:]]
    return replace(replay, events=events), plan


def social_table(observed: Observed, plan: dict[str, tuple[str, list[str]]],
                 replay: Replay, titles: dict[str, str]) -> Table:
    """Each newcomer's list next to whom they follow: the influence, counted from the record."""
    t = Table(title="social signals: newcomers with no history of their own")
    for col in ("newcomer", "follows", "their taste", "newcomer's top-3", "top-10 in that taste"):
        t.add_column(col)
    cats = replay.item_category if isinstance(replay, SyntheticReplay) else {}
    for newcomer, (taste, people) in plan.items():
        rec = observed.latest.get(newcomer)
        items = [] if rec is None else list(rec["items"])
        share = (f"{sum(cats.get(i) == taste for i in items[:10])}/{len(items[:10])}"
                 if cats and items else "-")
        top = "\n".join(titles.get(i, i)[:50] for i in items[:3]) or "(no record yet)"
        t.add_row(newcomer, ", ".join(people), taste, top, share)
    return t


# --- sentiment and aspects ------------------------------------------------------------------


def enable_sentiment(encoder_dir: Path | None) -> str:
    """Turn the worker's text signals on (it inherits this process's environment) and say
    whether the artifact has the heads they need (``train-sentiment`` ships them)."""
    from llmrec_stream.encoder.artifact import default_encoder_dir, read_manifest
    from llmrec_stream.sentiment import HEADS_NAME

    os.environ["LLMREC_TEXT_SIGNALS"] = "1"
    weight = os.environ.setdefault("LLMREC_ASPECT_RANK_WEIGHT", f"{DEMO_ASPECT_WEIGHT:g}")
    path = encoder_dir or default_encoder_dir()
    try:
        has = HEADS_NAME in read_manifest(path).files
    except ValueError:
        has = False
    if has:
        return (f"sentiment head and aspect anchors: from {path}; aspect term in the ranking: "
                f"weight {weight} (the default is 0, off: docs/features.md)")
    return (f"{path} has no sentiment head: unrated comments keep +0.5 and no aspects show. Ship "
            "one with `llmrec-stream train-sentiment --encoder-dir <that dir> --data "
            "../shared/data/amazon2018 --train All_Beauty_5 --train Appliances_5 "
            "--test AMAZON_FASHION_5` (docs/features.md)")


def aspects_text(rec: dict[str, object]) -> str:
    """A record's aspect scores as the view shows them, e.g. ``price +0.410, fit -0.200``."""
    aspects = rec.get("aspects")
    if not isinstance(aspects, dict) or not aspects:
        return ""
    return ", ".join(f"{name} {float(v):+.3f}" for name, v in aspects.items())


def aspect_effect_text(rec: dict[str, object]) -> str:
    """What the aspect term did to a list, from its reasons, e.g. ``2 of 20 items brought in
    by price``; "" when it brought in none."""
    reasons = rec.get("reasons")
    items = rec.get("items")
    if not isinstance(reasons, list) or not isinstance(items, list):
        return ""
    by = Counter(str(r.get("aspect")) for r in reasons
                 if isinstance(r, dict) and r.get("kind") == "aspect")
    if not by:
        return ""
    named = ", ".join(f"{n} by {aspect}" for aspect, n in sorted(by.items()))
    return f"{sum(by.values())} of {len(items)} items brought in ({named})"


def sentiment_table(observed: Observed) -> Table:
    """Aspect scores over the users' latest records: who mentions what, and how they feel."""
    t = Table(title="aspects from what users wrote (latest record per user)")
    for col in ("aspect", "users", "positive", "negative", "mean score",
                "lists it changed", "items it brought in"):
        t.add_column(col, justify="right" if col != "aspect" else "left")
    scores: dict[str, list[float]] = defaultdict(list)
    lists: Counter[str] = Counter()
    brought: Counter[str] = Counter()
    for rec in observed.latest.values():
        for name, v in (rec.get("aspects") or {}).items():
            scores[name].append(float(v))
        cited = [str(r.get("aspect")) for r in rec.get("reasons") or []
                 if isinstance(r, dict) and r.get("kind") == "aspect"]
        brought.update(cited)
        lists.update(set(cited))
    for name, vals in sorted(scores.items()):
        t.add_row(name, str(len(vals)), str(sum(v > 0 for v in vals)),
                  str(sum(v < 0 for v in vals)), f"{sum(vals) / len(vals):+.3f}",
                  str(lists[name]), str(brought[name]))
    return t


#: What each demo complainer writes, one comment an aspect: badly of all four, so whichever
#: aspect a category's items talk of, the term has something to act on.
ASPECT_COMPLAINTS = (
    "Way too expensive, overpriced, not worth the money.",
    "Poor quality, it fell apart after a week, flimsy material.",
    "Shipping took forever, it arrived late and the package was damaged.",
    "Runs small, far too tight, I had to order a size up; the fit is wrong.",
)


def aspect_complainers(replay: Replay, n: int = 8) -> tuple[Replay, dict[str, str]]:
    """The replay with one complainer per item category (at most ``n``), 90% of the way in:
    each clicks two items of its category, then writes `ASPECT_COMPLAINTS` (no item named).
    Returns complainer -> category; `aspect_table` shows what the aspect term did to their
    lists (the items it brought in carry an ``aspect`` reason)."""
    by_cat: dict[str, list[str]] = defaultdict(list)
    for e in replay.items:
        by_cat[str(e.value.get("category") or "(none)")].append(e.key)
    plan: dict[str, str] = {}
    at = len(replay.events) * 9 // 10
    ts = replay.events[at - 1].value["ts"] if at else 0
    added: list[OutboundEvent] = []
    for k, (cat, items) in enumerate(sorted(by_cat.items())[:n]):
        if len(items) < 2:
            continue
        user = f"demo-aspects-{k}"
        plan[user] = cat
        for j, item in enumerate(items[:2]):
            added.append(OutboundEvent(topics.CLICKS, user, {
                **envelope(f"{user}-c{j}", ts), "user_id": user, "item_id": item}))
        added += [OutboundEvent(topics.COMMENTS, user, {
            **envelope(f"{user}-w{j}", ts), "user_id": user, "text": text})
            for j, text in enumerate(ASPECT_COMPLAINTS)]
    events = [*replay.events[:at], *added, *replay.events[at:]]
    return replace(replay, events=events), plan


def aspect_table(observed: Observed, plan: dict[str, str]) -> Table:
    """Each complainer's aspect scores beside what the aspect term did to their list."""
    t = Table(title="aspect term in the ranking: users who complained of every aspect")
    for col in ("user", "clicked in", "their aspect scores", "items the term brought in"):
        t.add_column(col)
    for user, cat in plan.items():
        rec = observed.latest.get(user)
        if rec is None:
            t.add_row(user, cat, "(no record yet)", "")
            continue
        t.add_row(user, cat, aspects_text(rec), aspect_effect_text(rec) or "none")
    return t
