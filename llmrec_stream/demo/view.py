"""What the demo shows: live progress while events flow, then the summary."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table

from llmrec_stream.demo.features import aspect_effect_text, aspects_text, reason_text
from llmrec_stream.demo.watch import Observed
from llmrec_stream.sources.base import OutboundEvent


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


def progress_view(
    sent: int,
    total: int,
    elapsed: float,
    observed: Observed,
    titles: dict[str, str],
    last_comment: dict[str, str],
    users: int = 3,
    features: frozenset[str] = frozenset(),
) -> Group:
    """Counters and a few users' top-3 with the comment that drove it."""
    stats = Table.grid(padding=(0, 2))
    stats.add_row(
        f"events {sent}/{total}",
        f"{sent / elapsed if elapsed > 0 else 0:.0f} events/s",
        f"recommendations {observed.recommendations}",
        f"freshness p50 {_ms(observed.percentile(50))} p99 {_ms(observed.percentile(99))}",
        f"dead letters {sum(observed.dead_letters.values())}",
    )
    recs = Table(title="latest top-3 (users who wrote something first)", expand=True)
    recs.add_column("user", no_wrap=True)
    recs.add_column("what they wrote", ratio=2)
    recs.add_column("top-3 recommended", ratio=3)
    newest = list(reversed(list(observed.latest)))
    shown = ([u for u in newest if u in last_comment] + newest)[:users]
    for user_id in dict.fromkeys(shown):
        rec = observed.latest[user_id]
        lines = []
        for n, item in enumerate(rec["items"][:3]):
            line = titles.get(item, item)[:60]
            placement = (rec.get("placements") or [None] * 3)[n]
            if placement and "sponsored" in features:
                line += f" [sponsored: {placement['campaign_id']}]"
            if "reasons" in features:
                line += f"\n   because: {reason_text((rec.get('reasons') or [None] * 3)[n])}"
            lines.append(line)
        wrote = last_comment.get(user_id, "(no comment: clicks and purchases only)")[:90]
        if "sentiment" in features and aspects_text(rec):
            wrote += f"\n   aspects: {aspects_text(rec)}"
            if aspect_effect_text(rec):  # the aspect term beside the list it changed
                wrote += f"\n   aspect term: {aspect_effect_text(rec)}"
        recs.add_row(
            user_id,
            wrote,
            "\n".join(lines),
        )
    return Group(stats, recs)


def summary_table(
    events: int, seconds: float, observed: Observed, taste_hit_rate: float | None
) -> Table:
    t = Table(title="llmrec-stream demo: summary")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("events replayed", str(events))
    t.add_row("wall time (first event → worker caught up)", f"{seconds:.1f} s")
    t.add_row("throughput", f"{events / seconds if seconds else 0:.0f} events/s")
    t.add_row("recommendation records received", str(observed.recommendations))
    t.add_row("users with recommendations", str(len(observed.latest)))
    for q in (50, 95, 99):
        t.add_row(f"freshness p{q} (event ts → record received)", _ms(observed.percentile(q)))
    for reason, n in sorted(observed.dead_letters.items()):
        t.add_row(f"dead letters: {reason}", str(n))
    if taste_hit_rate is not None:
        t.add_row("users whose top-10 is mostly their taste", f"{taste_hit_rate:.0%}")
    return t


def item_titles(items: list[OutboundEvent]) -> dict[str, str]:
    return {e.key: str(e.value.get("title", e.key)) for e in items}
