"""One table from several ``llmrec-stream eval`` results folders (``llmrec-stream eval-table``).

The whole evaluation takes days of CPU, so it is run in parts, each writing its own folder. A
merge rebuilds every folder's `ModelResult`s from ``results.json`` plus ``user_ndcg.npz`` and
writes them with the same `write_results`, so the table, the comparisons and the files are the
ones a single run over all the rows would have written, plus where each row came from.

A merge can pair the wrong rows, so it refuses what it cannot vouch for (`MergeError`): the same
(data set, model) twice unless the later is preferred explicitly, and per-user arrays of one
data set that are not the same users in the same order (their `users_sha256` fingerprints
differ, or their lengths do). Rows written before the fingerprint existed pair on their length
alone, and the table marks those comparisons.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from llmrec_stream.eval.harness import compare
from llmrec_stream.eval.outcomes import ModelResult
from llmrec_stream.eval.report import ARRAYS_FILE, row_key, write_results

_FIELDS = {f.name for f in fields(ModelResult)} - {"user_ndcg"}


class MergeError(ValueError):
    """A merge that would table or pair the wrong rows; the message says which and why."""


@dataclass
class Run:
    """One results folder as read: its ``results.json`` and the per-user arrays it has."""

    folder: Path
    payload: dict[str, Any]
    results: list[ModelResult]
    arrays: Path | None = None


@dataclass
class Merged:
    results: list[ModelResult]
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _result(row: Mapping[str, Any], where: Path, run_seeds: Sequence[int]) -> ModelResult:
    """One row; ``run_seeds`` are the seeds its run was given (``settings.seeds``)."""
    unknown = sorted(set(row) - _FIELDS - {"source"})
    if unknown or not {"model", "dataset"} <= set(row):
        raise MergeError(f"{where}: a row with unknown fields {unknown} or no model/dataset: "
                         "not a results.json of llmrec-stream eval (or a newer one)")
    result = ModelResult(**{k: v for k, v in row.items() if k in _FIELDS})
    if "deterministic" not in row:
        # Written before the field existed: the harness ran a model that reads no seed once,
        # whatever --seeds said, so one seed in a run given several means exactly that.
        result.deterministic = len(result.seeds) == 1 and len(run_seeds) > 1
    return result


def load_run(folder: Path, arrays: Path | None = None) -> Run:
    """Read ``folder``; per-user arrays from ``arrays`` when given, else the folder's npz."""
    path = folder / "results.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        rows = payload["results"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MergeError(f"{folder}: no readable results.json with results ({exc})") from exc
    seeds = (payload.get("settings") or {}).get("seeds") or []
    run = Run(folder, payload, [_result(row, path, seeds) for row in rows])
    npz = arrays if arrays is not None else folder / ARRAYS_FILE
    if arrays is None and not npz.is_file():
        return run
    by_key = {row_key(r): r for r in run.results}
    try:
        with np.load(npz, allow_pickle=False) as z:
            loaded = {k: np.asarray(z[k], np.float64) for k in z.files}
    except (OSError, ValueError) as exc:
        raise MergeError(f"{npz}: not a readable npz of per-user arrays ({exc})") from exc
    strangers = sorted(set(loaded) - set(by_key))
    if strangers:
        raise MergeError(f"{npz} holds arrays for {strangers}, which {path} has no row for: "
                         "the arrays of another run?")
    for key, values in loaded.items():
        if values.ndim != 1:
            raise MergeError(f"{npz}[{key}]: shape {values.shape}, need one value per user")
        by_key[key].user_ndcg = values
    run.arrays = npz
    return run


def check_alignment(results: Sequence[ModelResult]) -> None:
    """Per data set, the rows with per-user arrays must be the same users in the same order."""
    for name in dict.fromkeys(r.dataset for r in results):
        paired = [r for r in results if r.dataset == name and r.user_ndcg is not None]
        lengths = {r.model: len(r.user_ndcg) for r in paired if r.user_ndcg is not None}
        if len(set(lengths.values())) > 1:
            raise MergeError(f"{name}: per-user arrays of different lengths {lengths}: not the "
                             "same users, they cannot be paired")
        prints = {r.model: r.users_sha256[:12] for r in paired if r.users_sha256}
        if len(set(prints.values())) > 1:
            raise MergeError(f"{name}: the runs scored different users or targets (users_sha256 "
                             f"{prints}): they cannot be paired")


def merge_runs(runs: Sequence[Run], base: Path, *, prefer_later: bool = False) -> Merged:
    """The rows of all ``runs``, grouped by data set; source paths relative to ``base``."""
    chosen: dict[tuple[str, str], tuple[ModelResult, Run]] = {}
    merged = Merged([])
    for run in runs:
        for r in run.results:
            key = (r.dataset, r.model)
            if key in chosen:
                before = chosen[key][1].folder
                if not prefer_later:
                    raise MergeError(f"{row_key(r)} is in both {before} and "
                                     f"{run.folder}: drop one, or pass --prefer-later to keep "
                                     "the later")
                merged.notes.append(f"{row_key(r)}: the row of "
                                    f"{os.path.relpath(run.folder, base)} replaces the one of "
                                    f"{os.path.relpath(before, base)} (--prefer-later).")
            chosen[key] = (r, run)
    order = list(dict.fromkeys(key[0] for key in chosen))
    for key in sorted(chosen, key=lambda k: order.index(k[0])):  # stable: run order within
        merged.results.append(chosen[key][0])
        merged.sources[key] = os.path.relpath(chosen[key][1].folder, base)
    check_alignment(merged.results)
    return merged


def _source_note(run: Run, base: Path, merged: Merged) -> str:
    where = os.path.relpath(run.folder, base)
    rows = [f"{d}/{m}" for (d, m), src in merged.sources.items() if src == where]
    s = run.payload.get("settings", {})
    arrays = ("" if run.arrays is None or run.arrays == run.folder / ARRAYS_FILE
              else f", per-user arrays from {os.path.relpath(run.arrays, base)}")
    return (f"- {where} ({run.payload.get('created_at', '?')}; seeds {s.get('seeds', '?')}, "
            f"grid points {s.get('grid_points') or 'all'}{arrays}): "
            + (", ".join(rows) or "no row kept"))


def merge_table(
    folders: Sequence[Path], out: Path, *, arrays: Mapping[Path, Path] | None = None,
    prefer_later: bool = False, reference: str | None = None, resamples: int = 10_000,
) -> str:
    """Merge ``folders`` (later ones win with ``prefer_later``), write ``out``, return the table."""
    arrays = {Path(k).resolve(): v for k, v in (arrays or {}).items()}
    resolved = [f.resolve() for f in folders]
    if out.resolve() in resolved:
        raise MergeError(f"{out} is one of the run folders: the merge would overwrite it")
    stray = [str(k) for k in arrays if k not in resolved]
    if stray:
        raise MergeError(f"--arrays names folders that are not merged: {stray}")
    runs = [load_run(f, arrays.get(r)) for f, r in zip(folders, resolved, strict=True)]
    merged = merge_runs(runs, out, prefer_later=prefer_later)
    models = {m for _, m in merged.sources}
    if reference is not None and reference not in models:
        raise MergeError(f"--reference {reference} is in none of the runs ({sorted(models)})")
    comparisons = compare(merged.results, resamples, reference)
    for name in dict.fromkeys(r.dataset for r in merged.results):
        if reference is not None and not any(c.dataset == name for c in comparisons):
            merged.notes.append(f"{name}: no comparisons (the reference {reference} has no "
                                "per-user array there, or nothing to pair it with).")
    notes = [*merged.notes, *([""] if merged.notes else []),
             "Rows from (paths relative to this folder):",
             *(_source_note(run, out, merged) for run in runs)]
    settings = {
        "merged": True, "bootstrap_resamples": resamples, "reference": reference,
        "prefer_later": prefer_later,
        "sources": [{"run": os.path.relpath(run.folder, out),
                     "arrays": None if run.arrays is None else os.path.relpath(run.arrays, out),
                     **{k: run.payload.get(k) for k in ("created_at", "wall_seconds", "machine",
                                                        "settings")}} for run in runs],
    }
    wall = sum(float(run.payload.get("wall_seconds") or 0.0) for run in runs)
    return write_results(merged.results, comparisons, out, wall_seconds=wall, settings=settings,
                         sources=merged.sources, notes=notes)
