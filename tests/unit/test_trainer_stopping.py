"""One early-stopping rule for every neural run, and the refit that cannot peek at test."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="training needs the `train` extra")

from llmrec_stream.datasets.toys import cyclic_dataset  # noqa: E402
from llmrec_stream.trainer.loop import FitConfig, fit_sequential, stop_reason  # noqa: E402
from llmrec_stream.trainer.sasrec import SASRec  # noqa: E402


def test_stop_reason_patience_epochs_and_an_optional_cap() -> None:
    cfg = FitConfig(epochs=200, patience=10, max_minutes=0.0)
    assert FitConfig().patience >= 10 and FitConfig().epochs >= 200 and FitConfig().max_minutes == 0
    assert stop_reason(cfg, 5, 9, 1e9) == ""  # no cap: an hour-long run goes on
    assert stop_reason(cfg, 5, 10, 0.0) == "patience"
    assert stop_reason(cfg, 200, 0, 0.0) == "epochs"
    capped = FitConfig(epochs=200, patience=10, max_minutes=1.0)
    assert stop_reason(capped, 5, 0, 61.0) == "time"  # reported, so a binding cap is visible
    assert stop_reason(capped, 5, 10, 61.0) == "patience"


def test_refit_trains_fixed_epochs_and_never_evaluates() -> None:
    data = cyclic_dataset(n_items=20, n_users=60)
    refit = data.refit_view()
    torch.manual_seed(0)
    net = SASRec(data.n_items, dim=16, dropout=0.1, max_len=10)
    with pytest.raises(ValueError, match="fixed_epochs"):
        fit_sequential(net, refit, FitConfig(epochs=2, progress=False))
    result = fit_sequential(net, refit, FitConfig(epochs=50, fixed_epochs=2, progress=False))
    assert result.stopped_by == "fixed" and result.best_epoch == 2 and not result.valid
    assert [set(row) for row in result.history] == [{"epoch", "loss"}] * 2  # no test scoring


def test_early_stopping_reports_why_it_stopped() -> None:
    data = cyclic_dataset(n_items=20, n_users=60)
    torch.manual_seed(0)
    net = SASRec(data.n_items, dim=16, dropout=0.1, max_len=10)
    result = fit_sequential(net, data, FitConfig(epochs=3, patience=10, lr=1e-2,
                                                 progress=False))
    assert result.stopped_by == "epochs" and len(result.history) == 3
