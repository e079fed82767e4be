"""The demo's ``shadow`` feature: a model trained on the replay's own log, run in shadow.

Part-way through the replay the demo pauses the producer, waits for the worker to catch up,
and trains the project's ranking model on what the event log holds by then, exactly as
``llmrec-stream train`` does (`trainer.event_log.dataset_from_kafka`, `trainer.train.train`):
one grid point of the two-tower model (loss ``ce``) and at most ``max_epochs`` epochs, on one
thread (with two, torch took 19 s instead of under 1 s on a busy 2-core machine). That takes
seconds on a demo-sized log (8 s for 22 users and 240 items, 17 s for 165 users and 400 items,
most of it encoding the item texts and exporting the ONNX graph), so no stand-in is needed.
The artifact is published on ``llmrec.models`` with ``shadow: true``, the record
`llmrec-stream models publish --shadow` sends; the worker checks it, ranks with it beside
the live model for the rest of the replay, and scores both online. At the end the demo reads
the counters `llmrec-stream models compare` reads (`ranking.shadow.online_stats`) and shows
them with the same intervals and the promotion rule's online verdict.

Training needs torch (the ``train`` extra); without it the feature is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.util
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from llmrec_stream.config import Settings
from llmrec_stream.ranking.online_stats import PairedHits, paired_difference, wilson
from llmrec_stream.ranking.registry import LIVE_KEY, ModelRecord
from llmrec_stream.ranking.shadow import OnlineRule, online_stats


def shadow_unavailable() -> str | None:
    """Why the demo cannot train a shadow model here, or None when it can."""
    if importlib.util.find_spec("torch") is None:
        return ("torch is not installed, so no model can be trained: install the `train` "
                "extra (`pip install -e '.[train]'`, or `make`)")
    return None


@dataclass
class ShadowDemo:
    """One shadow run in the demo: the plan, then what happened (filled in by `run_demo`)."""

    at: float = 0.5
    """Share of the replay's events sent before the model is trained on the log."""
    max_epochs: int = 30
    max_minutes: float = 0.75
    say: Callable[[str], None] = print
    version: str | None = None
    """The shadow model's version once it was published."""
    trained: str = ""
    """What the training saw and reached (users, items, epochs, validation NDCG@10)."""
    paused_s: float = 0.0
    """How long the replay stood still: reading the log, training, publishing, loading."""
    after: int = 0
    """The replay's events sent before the model was trained."""
    skipped: str = ""
    """Why no shadow ran, when none did."""
    live: str | None = None
    k: int | None = None
    by_live: dict[str, PairedHits] = field(default_factory=dict)

    def warm(self) -> threading.Thread:
        """Import torch and the trainer in the background (seconds of the pause otherwise)."""
        def load() -> None:
            importlib.import_module("llmrec_stream.trainer.train")
            importlib.import_module("llmrec_stream.trainer.event_log")

        thread = threading.Thread(target=load, name="shadow-imports", daemon=True)
        thread.start()
        return thread

    def train_and_publish(self, bootstrap: str, encoder_dir: Path, out: Path) -> bool:
        """Train on the log as it is now and publish the artifact in shadow; False (with
        ``skipped`` set) when the log has no user to train on yet."""
        from llmrec_stream.events import topics
        from llmrec_stream.replay import producer
        from llmrec_stream.trainer.event_log import dataset_from_kafka
        from llmrec_stream.trainer.train import train

        data = dataset_from_kafka(bootstrap, name="demo")
        if data.n_users == 0:
            self.skipped = "no user had 3 or more item events when the model was to be trained"
            return False
        self.say(f"[bold]shadow[/]: training the ranking model on the event log so far "
                 f"({data.n_users} users, {data.n_items} items)...")
        version = f"demo-shadow-{int(time.time())}"
        result = train(data, out / version, loss="ce", budget=1, encoder_dir=encoder_dir,
                       cache_dir=out / ".cache", max_minutes=self.max_minutes,
                       max_epochs=self.max_epochs, threads=1, progress=False, version=version)
        record = dataclasses.replace(ModelRecord.for_artifact(result.path), shadow=True)
        prod = producer(bootstrap)
        prod.produce(topics.MODELS, record.dumps(), b"model")  # as `models publish --shadow`
        if prod.flush(30):
            raise SystemExit("the shadow model's record was not delivered within 30 s")
        self.version = record.version
        valid = result.metrics["valid"]["ndcg@10"]
        self.trained = (f"{data.n_users} users, {data.n_items} items, "
                        f"{result.metrics['best_epoch']} epochs, valid NDCG@10 {valid:.4f}, "
                        f"{result.metrics['train_seconds']:.1f} s")
        self.say(f"[bold]shadow[/]: published {version} in shadow ({self.trained})")
        return True

    def running(self, pointer: bytes | str | None) -> bool:
        """Whether the worker's models agent took the record: the shadow pointer
        (`ranking.shadow.SHADOW_KEY`) names it."""
        return self.version is not None and pointer in (self.version, self.version.encode())

    def read(self, redis_url: str) -> None:
        """The online counters of the shadow, as `llmrec-stream models compare` reads them."""
        from llmrec_stream.redis_conn import async_client

        version = self.version
        if version is None:
            return

        async def read() -> tuple[str | None, int | None, dict[str, PairedHits]]:
            client = async_client(Settings(redis_url=redis_url).redis)
            try:
                live = await client.hget(LIVE_KEY, "version")
                k, by_live = await online_stats(client, version)
                return (live.decode() if isinstance(live, bytes) else live), k, by_live
            finally:
                await client.aclose()

        self.live, self.k, self.by_live = asyncio.run(read())


def shadow_table(demo: ShadowDemo, settings: Settings) -> Table:
    """Live vs shadow online hit rate@k on the same events: hits, rate, Wilson interval per
    model, then the paired difference (Newcombe) and the promotion rule's online verdict."""
    rule = OnlineRule(settings.shadow.min_events, settings.shadow.confidence)
    level = rule.level
    k = demo.k or settings.ranking.top_k
    t = Table(title=f"shadow evaluation: online hit rate@{k} on the same events "
                    f"(as `llmrec-stream models compare`)")
    for col in ("role", "model", "paired events", "hits", f"hit rate@{k}", f"{level:.0%} CI"):
        t.add_column(col, justify="left" if col in ("role", "model") else "right")
    # the current live model's row first, as `models compare` orders them
    for live, hits in sorted(demo.by_live.items(), key=lambda kv: kv[0] != demo.live):
        for role, name, n in (("live", live, hits.live), ("shadow", demo.version, hits.shadow)):
            low, high = wilson(n, hits.events, level)
            rate = n / hits.events if hits.events else 0.0
            t.add_row(role, str(name), str(hits.events), str(n), f"{rate:.4f}",
                      f"[{low:.4f}, {high:.4f}] Wilson")
        diff, low, high = paired_difference(hits, level)
        won, why = rule.verdict(hits)
        t.add_row("shadow - live", "", str(hits.events), "", f"{diff:+.4f}",
                  f"[{low:+.4f}, {high:+.4f}] Newcombe")
        t.add_row("verdict", "shadow wins" if won else "shadow does not win", "", "", "", why)
    t.caption = (f"{demo.version} was trained on the log after {demo.after} events "
                 f"({demo.trained}); the replay paused {demo.paused_s:.1f} s for it")
    return t
