"""`scripts/quality_table.sh`, the one command behind docs/eval.md's table, run as a user runs
it: every part through the installed `llmrec-stream eval`, then `eval-table`, then again after
an interruption (finished parts are kept, the interrupted one loads its finished fits from the
fit store, the merge is redone).

Two toy one-line-per-user files stand in for Scientific and Beauty; `EXTRA` cuts grids and
epochs so that the whole command takes about a minute, which the merged table says.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("implicit")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "quality_table.sh"
MODELS = ("popularity", "ease", "item-knn", "bpr", "als", "sasrec", "ours-ce", "ours-ease",
          "ours-ce-no-cooc", "sasrec-cooc")


def _toy(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lines = [" ".join([f"u{u}"] + [str((s + k) % 12 + 1) for k in range(6)])
             for u, s in enumerate(rng.integers(0, 12, 40))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,  # noqa: S603, S607
                          timeout=600, check=False)


def test_the_quality_script_runs_every_part_merges_them_and_resumes(tmp_path: Path) -> None:
    cli = shutil.which("llmrec-stream", path=str(Path(sys.executable).parent))
    assert cli, "the llmrec-stream console script is not installed beside the interpreter"
    out = tmp_path / "quality"
    env = {**os.environ, "LLMREC": cli, "OUT": str(out),
           "SCIENTIFIC": str(_toy(tmp_path / "Sci.txt", 0)),
           "BEAUTY": str(_toy(tmp_path / "Bea.txt", 1)), "SEEDS": "2",
           "EXTRA": "--grid-points 1 --max-epochs 2 --patience 1 --bootstrap 200"}
    first = _run(env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    payload = json.loads((out / "table" / "results.json").read_text(encoding="utf-8"))
    rows = {(r["dataset"], r["model"]): r for r in payload["results"]}
    for data in ("Sci", "Bea"):
        for model in MODELS:
            row = rows[(data, model)]
            assert row["source"] == f"../{'scientific' if data == 'Sci' else 'beauty'}-" + {
                "sasrec": "sasrec", "ours-ce": "ours", "ours-ease": "ours",
                "ours-ce-no-cooc": "ablations", "sasrec-cooc": "ablations",
            }.get(model, "peers")
            assert row["users_sha256"], f"{data}/{model} has no users fingerprint"
        assert rows[(data, "ours-mse")]["skipped"]  # no item text in a one-line-per-user file
    headline = [c for c in payload["comparisons"] if c["best_peer"]]
    assert {(c["dataset"], c["reference"]) for c in headline} == {("Sci", "ours-ease"),
                                                                    ("Bea", "ours-ease")}
    assert not any(c["other"].startswith("ours") for c in headline)
    table = (out / "table" / "table.md").read_text(encoding="utf-8")
    assert "alignment checked by user count only" not in table
    assert "| Bea | sasrec |" in table and "| Sci | ours-ease |" in table

    # Interrupted in the ablations of Beauty: only that part runs again.
    (out / "beauty-ablations" / ".done").unlink()
    stamp = (out / "scientific-sasrec" / "results.json").stat().st_mtime_ns
    again = _run(env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "scientific-sasrec done before, kept" in again.stdout
    assert "beauty-ablations (ours-ce-no-cooc,sasrec-cooc)" in again.stdout
    assert (out / "scientific-sasrec" / "results.json").stat().st_mtime_ns == stamp
    merged = json.loads((out / "table" / "results.json").read_text(encoding="utf-8"))
    keys = [(r["dataset"], r["model"]) for r in merged["results"]]
    assert keys.count(("Bea", "sasrec-cooc")) == 1
    assert (out / "beauty-ablations" / "results.json").stat().st_mtime_ns > stamp
    # ... and it trained nothing again: its fits came from the store, with the same figures
    assert "fit store: loaded sasrec-cooc-" in again.stderr
    assert "fit store: loaded ours-ce-no-cooc-" in again.stderr
    redone = {(r["dataset"], r["model"]): r for r in merged["results"]}
    for model in ("sasrec-cooc", "ours-ce-no-cooc"):
        assert redone[("Bea", model)]["test"] == rows[("Bea", model)]["test"]
        assert redone[("Bea", model)]["per_seed"] == rows[("Bea", model)]["per_seed"]


def test_the_quality_script_refuses_a_missing_data_set(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path / "q"), "SCIENTIFIC": str(tmp_path / "nope"),
           "LLMREC": "false"}
    done = _run(env)
    assert done.returncode == 2 and "nope not found" in done.stderr
