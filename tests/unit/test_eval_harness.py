"""The harness end to end on toy data: grid selection on valid, outputs, skips, the command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from llmrec_stream.eval.cli import eval_cmd
from llmrec_stream.eval.data import SeqDataset
from llmrec_stream.eval.harness import (
    EvalContext,
    ModelSpec,
    Skip,
    als_spec,
    bpr_spec,
    popularity_spec,
    run_eval,
)
from llmrec_stream.eval.metrics import Scorer
from llmrec_stream.eval.peers import interactions
from llmrec_stream.eval.toys import cyclic_dataset


@dataclass
class NextItem:
    """Scores the item after the newest one, shifted by ``offset`` (0 = the right answer)."""

    data: SeqDataset
    offset: int

    def scorer(self, split: str) -> Scorer:
        def score(users: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
            out = np.zeros((len(histories), self.data.n_items + 1), dtype=np.float32)
            for row, h in enumerate(histories):
                out[row, (h[-1] + self.offset) % self.data.n_items + 1] = 1.0
            return out

        return score


def _fit_next(data: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> NextItem:
    return NextItem(data, params["offset"])


def _fit_skip(data: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> NextItem:
    raise Skip("needs item text")


def test_run_eval_selects_on_valid_and_writes_results(tmp_path: Path) -> None:
    data = cyclic_dataset(n_items=20, n_users=80)
    specs = [
        popularity_spec(),
        ModelSpec("next", _fit_next, [{"offset": 3}, {"offset": 0}, {"offset": 5}]),
        ModelSpec("skipper", _fit_skip, [{}]),
    ]
    results = run_eval([data], specs, results_dir=tmp_path, grid_points=2,
                       ctx=EvalContext(progress=False))
    pop, nxt, skip = results
    assert nxt.params == {"offset": 0} and len(nxt.tried) == 2  # the 3rd point is off budget
    assert nxt.test["ndcg@10"] == pytest.approx(1.0)
    assert nxt.cold["last1"]["recall@10"] == pytest.approx(1.0)
    assert pop.test["recall@10"] < 0.9
    assert skip.skipped == "needs item text" and not skip.test
    payload = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"] for r in payload["results"]] == ["popularity", "next", "skipper"]
    assert (tmp_path / "ndcg.png").stat().st_size > 1000
    assert "| cyclic | next | 1.0000" in (tmp_path / "table.md").read_text()


def test_implicit_peers_run_and_beat_chance() -> None:
    data = cyclic_dataset(n_items=20, n_users=200)
    results = run_eval([data], [bpr_spec(), als_spec()], grid_points=1,
                       ctx=EvalContext(progress=False))
    for r in results:
        assert r.test["recall@10"] > 0.3, r
    assert results[1].cold  # ALS recomputes users from the given history
    assert not results[0].cold  # BPR reads its trained user rows


def test_interactions_count_duplicates_once() -> None:
    data = cyclic_dataset(n_items=5, n_users=3, length=9)  # sequences wrap and repeat items
    matrix = interactions(data, "valid")
    assert matrix.shape == (3, 6) and set(matrix.data.tolist()) == {1.0}
    assert matrix[:, 0].nnz == 0


def test_eval_command(tmp_path: Path) -> None:
    path = tmp_path / "Toy.txt"
    rng = np.random.default_rng(0)
    lines = [" ".join([str(u)] + [str((s + k) % 15 + 1) for k in range(6)])
             for u, s in enumerate(rng.integers(0, 15, 60))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "results"
    result = CliRunner().invoke(eval_cmd, ["--data", str(path), "--models", "popularity,als",
                                           "--results", str(out), "--grid-points", "1",
                                           "--encoder", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "| Toy | als |" in result.output and (out / "results.json").is_file()
    bad = CliRunner().invoke(eval_cmd, ["--data", str(path), "--models", "nope"])
    assert bad.exit_code != 0 and "unknown models" in bad.output
