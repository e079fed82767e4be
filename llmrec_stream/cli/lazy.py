"""Tooling commands registered by name and imported only when invoked.

The tooling commands (bench, demo, eval, train, ...) live with their rooms and need extras the
production image leaves out (torch, scipy, the embedded servers). `TOOLING` names each one,
its extras and its ``--help`` line, and `LazyGroup` imports a command when it is invoked, so
``--help`` lists them without loading them and the runtime install alone starts: click's
documented "lazily loading subcommands" pattern. A missing extra is a clear error naming the
``pip install`` that fixes it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class Tooling:
    """A command behind extras: where it lives, what it needs, and its line in ``--help``
    (written here so that listing the commands imports nothing)."""

    target: str  # "module:attribute"
    extras: tuple[str, ...]
    help: str


TOOLING: dict[str, Tooling] = {
    "bench": Tooling("llmrec_stream.bench.cli:bench_group", ("bench", "dev"),
                     "Benchmarks: figures as JSON + PNG under --out, and a table on stdout."),
    "demo": Tooling("llmrec_stream.demo.cli:demo", ("dev",),
                    "Run the whole pipeline on a replay and show it live, then a summary."),
    "eval": Tooling("llmrec_stream.eval.cli:eval_cmd", ("eval",),
                    "Evaluate the project's model and its peers on one full-ranking protocol."),
    "eval-table": Tooling("llmrec_stream.eval.cli:eval_table_cmd", ("eval",),
                          "Merge eval results folders into one table, as one run over all "
                          "their rows would write it."),
    "live-offline": Tooling("llmrec_stream.eval.live_offline_cli:live_offline_cmd",
                            ("bench", "dev"),
                            "Top-10 published by the live pipeline vs the offline evaluator's, "
                            "user by user."),
    "train": Tooling("llmrec_stream.trainer.cli:train_cmd", ("eval",),
                     "Train the ranking model, export it to ONNX with a sha256 manifest, and "
                     "publish it."),
    "serve": Tooling("llmrec_stream.serve.cli:serve", ("serve",),
                     "Serve the pull API: recommendations from Redis, events into Kafka."),
    "models": Tooling("llmrec_stream.ranking.models_cli:models_group", (),
                      "Publish a ranking model (live or in shadow); compare a shadow online."),
    "train-sentiment": Tooling("llmrec_stream.trainer.sentiment:train_sentiment", ("sentiment",),
                               "Learn the sentiment head and aspect anchors from rated reviews, "
                               "test them on a held-out category, ship them in the encoder "
                               "artifact."),
}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[([^\]]*)\])?[^;]*;.*extra\s*==\s*"
                          r"[\"']([^\"']+)[\"']")


def missing_distributions(extras: tuple[str, ...]) -> list[str]:
    """The distributions the given extras of this package name that are not installed.

    Read from the installed package's metadata, so the extras in pyproject.toml stay the one
    list; an extra that names this package's other extras (``eval`` needs ``train``) is
    followed. Without metadata (a bare source tree) nothing can be checked: empty.
    """
    try:
        requires = importlib.metadata.requires("llmrec-stream") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    by_extra: dict[str, list[tuple[str, str]]] = {}
    for line in requires:
        m = _REQUIREMENT.match(line)
        if m:
            by_extra.setdefault(m.group(3), []).append((m.group(1), m.group(2) or ""))
    missing: list[str] = []
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for name, nested in by_extra.get(extra, []):
            if name == "llmrec-stream":
                todo += [e.strip() for e in nested.split(",") if e.strip()]
                continue
            try:
                importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                if name not in missing:
                    missing.append(name)
    return missing


def _needs(name: str, extras: tuple[str, ...], missing: str) -> click.ClickException:
    spec = ",".join(extras)
    return click.ClickException(
        f"`llmrec-stream {name}` is a tooling command and needs the [{spec}] extra, which "
        f"this install lacks ({missing}): pip install 'llmrec-stream[{spec}]' "
        f"(from a checkout: pip install -e '.[cpu,{spec}]')"
    )


class LazyGroup(click.Group):
    """A group whose tooling commands are imported when invoked, not when listed."""

    def __init__(self, *args: Any, tooling: Mapping[str, Tooling], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tooling = dict(tooling)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.tooling})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.tooling and cmd_name not in self.commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, name: str) -> click.Command:
        entry = self.tooling[name]
        absent = missing_distributions(entry.extras)
        if absent:
            raise _needs(name, entry.extras, "not installed: " + ", ".join(absent))
        module_name, attribute = entry.target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            # our own modules failing to import is a bug, not a missing extra
            if (exc.name or "").split(".")[0] == "llmrec_stream":
                raise
            raise _needs(name, entry.extras, f"no module {exc.name!r}") from exc
        command = getattr(module, attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with the tooling commands' lines from `TOOLING`: no import to list."""
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        for name in names:
            command = self.commands.get(name)
            if command is None:
                rows.append((name, click.utils.make_default_short_help(
                    self.tooling[name].help, limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
