"""`llmrec-stream eval-table`: results folders merged into the table one run would have written,
and the merges it must refuse (rows twice, arrays of other users)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from llmrec_stream.datasets.sequences import users_sha256
from llmrec_stream.datasets.toys import cyclic_dataset
from llmrec_stream.eval.cli import eval_table_cmd
from llmrec_stream.eval.harness import compare
from llmrec_stream.eval.merge import MergeError, load_run, merge_table
from llmrec_stream.eval.outcomes import ModelResult
from llmrec_stream.eval.report import COLUMNS, COUNT_ONLY_NOTE, write_results

USERS = 150
RESAMPLES = 400


def _row(dataset: str, model: str, level: float, *, users: int = USERS, seed: int = 0,
         fingerprint: str | None = None) -> ModelResult:
    """A finished row with per-user NDCG around ``level`` (by hand: no model is fit)."""
    rng = np.random.default_rng(seed)
    per_user = np.clip(rng.normal(level, 0.2, users), 0.0, 1.0)
    metrics = {c: float(per_user.mean()) + 0.01 * k for k, c in enumerate(COLUMNS)}
    return ModelResult(
        model, dataset, params={"factors": 64 * (seed + 1), "reg": 0.5, "algo": model},
        valid={c: level + 0.001 * k for k, c in enumerate(COLUMNS)}, test=metrics,
        test_sd={c: 0.002 for c in COLUMNS}, unmasked={c: v / 2 for c, v in metrics.items()},
        seeds=[0, 1, 2], cold={"last1": metrics}, seconds=10.0 + seed,
        tried=[{"params": {"factors": 64}, "valid": metrics}] * (seed + 1),
        users_sha256=f"fp-{dataset}" if fingerprint is None else fingerprint,
        user_ndcg=per_user,
    )


def _write(folder: Path, rows: Sequence[ModelResult], grid: str = "g") -> Path:
    write_results(rows, compare(rows, RESAMPLES), folder, wall_seconds=100.0,
                  settings={"seeds": [0, 1, 2], "grid_points": None, "grid_sha256": grid})
    return folder


def _invoke(*args: str | Path | int) -> tuple[int, str]:
    result = CliRunner().invoke(eval_table_cmd, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _parts() -> tuple[list[ModelResult], list[ModelResult]]:
    first = [_row("Scientific", "ease", 0.30, seed=1), _row("Scientific", "als", 0.28, seed=2),
             _row("Beauty", "ease", 0.20, seed=3, users=120)]
    second = [_row("Scientific", "ours-ce", 0.33, seed=4),
              _row("Scientific", "ours-ease", 0.36, seed=5),
              _row("Beauty", "ours-ease", 0.25, seed=6, users=120),
              _row("Beauty", "item-knn", 0.18, seed=7, users=120)]
    return first, second


def test_merging_two_folders_gives_the_table_of_one_run(tmp_path: Path) -> None:
    first, second = _parts()
    a = _write(tmp_path / "a", first, grid="grid-a")
    b = _write(tmp_path / "b", second, grid="grid-b")
    together = [*first[:2], *second[:2], first[2], *second[2:]]  # one run: data set by data set
    single = write_results(together, compare(together, RESAMPLES), tmp_path / "single",
                           wall_seconds=200.0, settings={})

    code, output = _invoke(a, b, "--results", tmp_path / "out", "--bootstrap", RESAMPLES)
    assert code == 0, output
    text = (tmp_path / "out" / "table.md").read_text()
    assert text.startswith(single + "\n\n") and "Rows from" in text
    merged = json.loads((tmp_path / "out" / "results.json").read_text())
    one = json.loads((tmp_path / "single" / "results.json").read_text())
    assert merged["comparisons"] == one["comparisons"]  # the same CIs, digit for digit
    assert [r["source"] for r in merged["results"]] == ["../a", "../a", "../b", "../b", "../a",
                                                        "../b", "../b"]
    assert [s["settings"]["grid_sha256"] for s in merged["settings"]["sources"]] == [
        "grid-a", "grid-b"]
    assert merged["wall_seconds"] == 200.0
    with np.load(tmp_path / "out" / "user_ndcg.npz") as z:
        assert second[3].user_ndcg is not None
        assert np.array_equal(z["Beauty/item-knn"], second[3].user_ndcg)
    # the reference is the blend; the headline peer is the best that is not ours
    heads = {(c["dataset"], c["reference"], c["other"]) for c in merged["comparisons"]
             if c["best_peer"]}
    assert heads == {("Scientific", "ours-ease", "ease"), ("Beauty", "ours-ease", "ease")}
    assert "| Scientific | ours-ease | ours-ce | " in text  # ours-ce still compared


def test_the_same_row_twice_is_refused_unless_the_later_is_preferred(tmp_path: Path) -> None:
    first, second = _parts()
    a = _write(tmp_path / "a", first)
    b = _write(tmp_path / "b", [*second, _row("Scientific", "ease", 0.31, seed=9)])
    code, output = _invoke(a, b, "--results", tmp_path / "out")
    assert code != 0 and "Scientific/ease is in both" in output and "--prefer-later" in output
    assert not (tmp_path / "out").exists()
    code, output = _invoke(a, b, "--results", tmp_path / "out", "--prefer-later",
                           "--bootstrap", RESAMPLES)
    assert code == 0, output
    assert "Scientific/ease: the row of ../b replaces the one of ../a (--prefer-later)" in output
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    [ease] = [r for r in rows if r["dataset"] == "Scientific" and r["model"] == "ease"]
    assert ease["source"] == "../b" and ease["seconds"] == 19.0


def test_arrays_of_other_users_are_refused(tmp_path: Path) -> None:
    first, second = _parts()
    a = _write(tmp_path / "a", first)
    other = _write(tmp_path / "other", [_row("Scientific", "bpr", 0.2, fingerprint="fp-else")])
    code, output = _invoke(a, other, "--results", tmp_path / "out")
    assert code != 0 and "different users or targets" in output and "fp-else" in output
    short = _write(tmp_path / "short", [_row("Scientific", "bpr", 0.2, users=USERS - 1)])
    code, output = _invoke(a, short, "--results", tmp_path / "out")
    assert code != 0 and "different lengths" in output
    old = _write(tmp_path / "old", [_row("Scientific", "bpr", 0.2, users=USERS - 1,
                                         fingerprint="")])
    code, output = _invoke(a, old, "--results", tmp_path / "out")  # no print: length decides
    assert code != 0 and "different lengths" in output


def test_rows_before_the_fingerprint_pair_on_length_with_a_footnote(tmp_path: Path) -> None:
    first, second = _parts()
    a = _write(tmp_path / "a", first)
    old = _write(tmp_path / "old", [_row("Scientific", "bpr", 0.2, fingerprint="")])
    b = _write(tmp_path / "b", [_row("Scientific", "ours-ce", 0.4, seed=4)])
    code, output = _invoke(a, old, b, "--results", tmp_path / "out", "--bootstrap", RESAMPLES)
    assert code == 0, output
    assert COUNT_ONLY_NOTE in output
    lines = [line for line in output.splitlines()
             if line.startswith("| Scientific | ours-ce |") and "| [" in line]  # the CIs
    assert [line.split(" | ")[2] for line in lines] == [
        "ease (best peer on validation)", "als", "bpr ¹"]  # only the pair with an old row
    # a merge of new rows only has no footnote
    code, output = _invoke(a, "--results", tmp_path / "out2", "--bootstrap", RESAMPLES)
    assert code == 0 and COUNT_ONLY_NOTE not in output


def test_arrays_kept_elsewhere_are_named_with_arrays(tmp_path: Path) -> None:
    first, second = _parts()
    a = _write(tmp_path / "a", first)
    b = _write(tmp_path / "b", second)
    kept = tmp_path / "inputs" / "a.user_ndcg.npz"
    kept.parent.mkdir()
    shutil.move(a / "user_ndcg.npz", kept)
    code, output = _invoke(a, b, "--results", tmp_path / "out", "--bootstrap", RESAMPLES)
    assert code == 0, output
    assert "Not compared (no per-user array): Scientific/ease, Scientific/als, Beauty/ease." \
        in output
    assert "| Scientific | ours-ease | ease" not in output
    code, output = _invoke(a, b, "--results", tmp_path / "out", "--bootstrap", RESAMPLES,
                           "--arrays", f"{a}={kept}")
    assert code == 0, output
    assert "Not compared" not in output and "| Scientific | ours-ease | ease" in output
    assert "per-user arrays from ../inputs/a.user_ndcg.npz" in output
    code, output = _invoke(a, "--results", tmp_path / "out", "--arrays", f"{b}={kept}")
    assert code != 0 and "not merged" in output
    code, output = _invoke(b, "--results", tmp_path / "out", "--arrays", f"{b}={kept}")
    assert code != 0 and "has no row for" in output  # a's arrays named for b
    code, output = _invoke(a, "--results", tmp_path / "out", "--arrays", str(kept))
    assert code != 0 and "RUN_DIR=NPZ_PATH" in output


def test_reference_option_and_refusals(tmp_path: Path) -> None:
    first, second = _parts()
    a = _write(tmp_path / "a", first)
    b = _write(tmp_path / "b", second)
    code, output = _invoke(a, b, "--results", tmp_path / "out", "--reference", "ours-ce",
                           "--bootstrap", RESAMPLES)
    assert code == 0, output
    comps = json.loads((tmp_path / "out" / "results.json").read_text())["comparisons"]
    assert {c["reference"] for c in comps} == {"ours-ce"}
    assert {c["dataset"] for c in comps} == {"Scientific"}  # Beauty has no ours-ce
    assert "Beauty: no comparisons (the reference ours-ce" in output
    code, output = _invoke(a, "--results", tmp_path / "out", "--reference", "nope")
    assert code != 0 and "--reference nope is in none of the runs" in output
    code, output = _invoke(a, "--results", a)
    assert code != 0 and "would overwrite" in output
    (tmp_path / "empty").mkdir()
    code, output = _invoke(tmp_path / "empty", "--results", tmp_path / "out")
    assert code != 0 and "no readable results.json" in output


def test_a_run_reads_back_as_written(tmp_path: Path) -> None:
    first, _ = _parts()
    run = load_run(_write(tmp_path / "a", first))
    for got, want in zip(run.results, first, strict=True):
        assert dataclasses.replace(got, user_ndcg=None) == dataclasses.replace(want,
                                                                               user_ndcg=None)
        assert got.user_ndcg is not None and want.user_ndcg is not None
        assert np.array_equal(got.user_ndcg, want.user_ndcg)
    payload = json.loads((tmp_path / "a" / "results.json").read_text())
    payload["results"][0]["surprise"] = 1
    (tmp_path / "a" / "results.json").write_text(json.dumps(payload))
    with pytest.raises(MergeError, match="unknown fields"):
        merge_table([tmp_path / "a"], tmp_path / "out")


def test_users_fingerprint_follows_users_and_targets() -> None:
    data = cyclic_dataset(n_items=12, n_users=40)
    again = cyclic_dataset(n_items=12, n_users=40)
    assert users_sha256(data) == users_sha256(again)
    target = data.test_target.copy()
    target[7] = target[7] % data.n_items + 1  # one user's target is another item
    moved = dataclasses.replace(data, test_target=target)
    assert users_sha256(moved) != users_sha256(data)
    renamed = dataclasses.replace(data, user_ids=[*data.user_ids[:-1], "someone else"])
    assert users_sha256(renamed) != users_sha256(data)
    with pytest.raises(ValueError, match="refit view"):
        users_sha256(data.refit_view())


def test_the_kept_results_folders_still_read() -> None:
    """Every results folder under docs/eval-runs (written before the fingerprint) reads back."""
    runs = Path(__file__).resolve().parents[2] / "docs" / "eval-runs"
    folders = sorted(p.parent for p in runs.glob("*/*/results.json"))
    if not folders:
        pytest.skip("no kept results folders")
    for folder in folders:
        run = load_run(folder)
        assert run.results and all(r.dataset and r.model for r in run.results), folder
        assert (run.arrays is None) == (not (folder / "user_ndcg.npz").is_file())
    # Rows written before `deterministic` existed: one seed in a run given three is a model
    # that reads no seed (the harness runs those once); the seeded ones keep their seeds.
    old = {r.model: r for r in load_run(runs / "2026-12-06" / "sci-fast").results}
    assert old["ease"].deterministic and old["popularity"].deterministic
    assert not old["als"].deterministic and old["als"].seeds == [0, 1, 2]
