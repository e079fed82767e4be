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

from llmrec_stream.datasets.metrics import Scorer
from llmrec_stream.datasets.sequences import SeqDataset, users_sha256
from llmrec_stream.datasets.specs import EvalContext, ModelSpec, Skip
from llmrec_stream.datasets.toys import cyclic_dataset
from llmrec_stream.eval.cli import eval_cmd
from llmrec_stream.eval.harness import (
    als_spec,
    bpr_spec,
    compare,
    ease_spec,
    evaluate_model,
    item_knn_spec,
    peer_specs,
    popularity_spec,
    run_eval,
)
from llmrec_stream.eval.outcomes import ModelResult
from llmrec_stream.eval.peers import interactions


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
    results, comparisons = run_eval([data], specs, results_dir=tmp_path, grid_points=2,
                                    seeds=(0, 1, 2), ctx=EvalContext(progress=False))
    pop, nxt, skip = results
    assert nxt.params == {"offset": 0} and len(nxt.tried) == 2  # the 3rd point is off budget
    assert nxt.test["ndcg@10"] == pytest.approx(1.0)
    assert nxt.cold["last1"]["recall@10"] == pytest.approx(1.0)
    assert pop.test["recall@10"] < 0.9
    assert skip.skipped == "needs item text" and not skip.test
    payload = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"] for r in payload["results"]] == ["popularity", "next", "skipper"]
    assert (tmp_path / "ndcg.png").stat().st_size > 1000
    text = (tmp_path / "table.md").read_text()
    assert "| cyclic | next | 1.0000 ± 0.0000" in text
    assert "| 2 | 0,1,2 | offset 0 |" in text  # grid points tried, seeds, the chosen point
    assert "| cyclic | popularity |" in text and "deterministic" in text
    # the reference (best on validation, no ours-ce here) against the other model: a real lead
    [c] = comparisons
    assert (c.reference, c.other, c.best_peer) == ("next", "popularity", True)
    assert c.low > 0 and c.significant and "[+" in text
    assert payload["settings"]["seeds"] == [0, 1, 2] and payload["comparisons"]


def test_implicit_peers_run_and_beat_chance() -> None:
    data = cyclic_dataset(n_items=20, n_users=200)
    results, _ = run_eval([data], [bpr_spec(), als_spec(), ease_spec(), item_knn_spec()],
                          grid_points=1, seeds=(0, 1), ctx=EvalContext(progress=False))
    for r in results:
        assert r.test["recall@10"] > 0.3, r
    bpr, als, ease, knn = results
    assert als.cold and ease.cold  # they score any given history
    assert not bpr.cold  # BPR reads its trained user rows
    assert bpr.seeds == [0, 1] and ease.seeds == [0] and knn.seeds == [0]  # closed forms: once
    assert ease.deterministic and knn.deterministic and not bpr.deterministic
    # item-item models learn "the next item follows" on the cyclic walk almost exactly
    assert ease.test["recall@10"] > 0.9 and knn.test["recall@10"] > 0.9


def test_every_grid_has_six_points_where_there_are_hyper_parameters() -> None:
    from llmrec_stream.trainer.specs import torch_specs

    for spec in peer_specs() + torch_specs():
        assert len(spec.grid) >= 6 or spec.grid == [{}], spec.name
    als = [p["factors"] for p in als_spec().grid]
    assert max(als) == 512 and len({p["regularization"] for p in als_spec().grid}) >= 3


@dataclass
class Oracle:
    """Knows one set of answers of the original data set: ``which`` = "valid" or "test".

    Its scores depend only on the user row, so it scores the same on a refit view: the
    valid-oracle is perfect on validation and poor on test, the test-oracle the reverse.
    """

    data: SeqDataset
    which: str

    def scorer(self, split: str) -> Scorer:
        answers = self.data.valid_target if self.which == "valid" else self.data.test_target

        def score(users: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
            out = np.zeros((len(users), self.data.n_items + 1), dtype=np.float32)
            out[np.arange(len(users)), answers[users]] = 1.0
            return out

        return score


def test_the_grid_point_is_chosen_on_validation_never_on_test() -> None:
    """Validation and test disagree: a harness that consulted test would pick the test-oracle."""
    data = cyclic_dataset(n_items=20, n_users=60)
    fits: list[tuple[str, bool]] = []

    def fit(d: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> Oracle:
        fits.append((params["which"], d.refit))
        return Oracle(data, params["which"])

    spec = ModelSpec("oracle", fit, [{"which": "test"}, {"which": "valid"}], seeded=False)
    result = evaluate_model(data, spec, EvalContext(progress=False))
    assert result.params == {"which": "valid"}
    assert result.valid["ndcg@10"] == pytest.approx(1.0)
    assert result.test["ndcg@10"] < 0.2  # the chosen point is poor on test, and that is reported
    assert [t["valid"]["ndcg@10"] for t in result.tried][0] < 0.2
    # only the chosen point is ever fit for test (on the refit view)
    assert [w for w, refit in fits if refit] == ["valid"]


def test_one_refit_rule_the_test_model_trains_on_train_plus_valid() -> None:
    data = cyclic_dataset(n_items=20, n_users=40)
    seen: list[SeqDataset] = []

    def fit(d: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> NextItem:
        seen.append(d)
        return NextItem(d, 0)

    evaluate_model(data, ModelSpec("next", fit, [{}]), EvalContext(progress=False),
                   seeds=(0, 1))
    refits = [d for d in seen if d.refit]
    assert len(refits) == 2  # one test model per seed
    for d in refits:
        assert all(np.array_equal(a, np.append(t, v)) for a, t, v in
                   zip(d.train, data.train, data.valid_target, strict=True))
        assert np.array_equal(d.valid_target, data.test_target)
        with pytest.raises(ValueError, match="refit view"):
            d.targets("test")  # nothing can stop or select on a test split it does not have


def test_seeds_give_mean_and_sd_and_unmasked_figures() -> None:
    data = cyclic_dataset(n_items=20, n_users=60)

    def fit(d: SeqDataset, params: dict[str, Any], ctx: EvalContext) -> NextItem:
        return NextItem(d, ctx.seed)  # seed 0 right, seeds 1, 2 shifted: a known spread

    r = evaluate_model(data, ModelSpec("s", fit, [{}]), EvalContext(progress=False),
                       seeds=(0, 1, 2))
    assert r.seeds == [0, 1, 2] and not r.deterministic
    per = [row["test"]["recall@10"] for row in r.per_seed]
    assert r.test["recall@10"] == pytest.approx(np.mean(per))
    assert r.test_sd["recall@10"] == pytest.approx(np.std(per, ddof=1))
    assert r.unmasked["recall@10"] >= r.test["recall@10"] - 1e-12
    assert r.user_ndcg is not None and len(r.user_ndcg) == data.n_users


def test_compare_prefers_ours_as_reference_and_marks_the_best_peer() -> None:
    data = cyclic_dataset(n_items=20, n_users=60)
    specs = [ModelSpec("ours-ce", _fit_next, [{"offset": 0}]),
             ModelSpec("weak", _fit_next, [{"offset": 4}]), popularity_spec()]
    results = [evaluate_model(data, s, EvalContext(progress=False)) for s in specs]
    comps = compare(results, resamples=300)
    assert {c.reference for c in comps} == {"ours-ce"}
    assert sum(c.best_peer for c in comps) == 1
    assert {r.users_sha256 for r in results} == {users_sha256(data)}  # the pairing print


def _scored(data: SeqDataset, model: str, valid: float, offset: int) -> ModelResult:
    result = evaluate_model(data, ModelSpec(model, _fit_next, [{"offset": offset}]),
                            EvalContext(progress=False))
    result.valid["ndcg@10"] = valid  # the order on validation, set by hand
    return result


def test_the_reference_is_the_blend_and_the_best_peer_is_never_ours() -> None:
    data = cyclic_dataset(n_items=20, n_users=60)
    results = [_scored(data, "ease", 0.5, 1), _scored(data, "ours-ce", 0.9, 0),
               _scored(data, "ours-ease", 0.8, 0), _scored(data, "als", 0.6, 2)]
    comps = compare(results, resamples=300)
    # ours-ease over ours-ce although ours-ce is better on validation
    assert {c.reference for c in comps} == {"ours-ease"}
    assert [c.other for c in comps] == ["ours-ce", "als", "ease"]  # every other, by validation
    # the headline: the best on validation that is not a variant of ours
    assert [c.other for c in comps if c.best_peer] == ["als"]
    named = compare(results, resamples=300, reference="ease")
    assert {c.reference for c in named} == {"ease"}
    assert [c.other for c in named if c.best_peer] == ["als"]
    assert compare(results, resamples=300, reference="sasrec") == []  # not run: no comparisons
    only_ours = compare(results[1:3], resamples=300)
    assert [(c.reference, c.other, c.best_peer) for c in only_ours] == [
        ("ours-ease", "ours-ce", False)]
    without_blend = compare([r for r in results if r.model != "ours-ease"], resamples=300)
    assert {c.reference for c in without_blend} == {"ours-ce"}


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
                                           "--seeds", "2", "--bootstrap", "200",
                                           "--encoder", str(tmp_path), "--quiet",
                                           "--reference", "popularity"])
    assert result.exit_code == 0, result.output
    assert "| Toy | als |" in result.output and (out / "results.json").is_file()
    payload = json.loads((out / "results.json").read_text())
    assert [(c["reference"], c["other"]) for c in payload["comparisons"]] == [
        ("popularity", "als")]
    assert payload["settings"]["reference"] == "popularity"
    bad = CliRunner().invoke(eval_cmd, ["--data", str(path), "--models", "nope"])
    assert bad.exit_code != 0 and "unknown models" in bad.output
    bad = CliRunner().invoke(eval_cmd, ["--data", str(path), "--models", "als",
                                        "--reference", "ease"])
    assert bad.exit_code != 0 and "ease is not among --models" in bad.output


def test_ease_weights_match_the_closed_form() -> None:
    from llmrec_stream.eval.peers import fit_ease

    data = cyclic_dataset(n_items=12, n_users=50)
    x = interactions(data, "valid").toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 7.0 * np.eye(x.shape[1]))
    expected = p / -np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    got = fit_ease(data, {"lam": 7.0}).weights
    assert np.allclose(got, expected, atol=1e-5)


def test_the_trainer_registers_its_specs_and_the_cli_finds_them_by_name() -> None:
    from llmrec_stream.datasets.specs import registered_specs
    from llmrec_stream.eval.cli import model_specs

    pytest.importorskip("torch")
    names = set(registered_specs())
    assert {"sasrec", "ours-ce", "ours-mse", "ours-ce-no-cooc", "sasrec-cooc"} <= names
    assert [s.name for s in model_specs(["ease", "sasrec"])] == ["ease", "sasrec"]
