"""Session options of the serving encoder: threads, spinning, data-parallel runs."""

from __future__ import annotations

import pytest

ort = pytest.importorskip("onnxruntime")

from llmrec_stream.config import Settings  # noqa: E402 - after the skip
from llmrec_stream.encoder import session  # noqa: E402
from llmrec_stream.encoder.session import resolve_parallel_runs, session_options  # noqa: E402


def test_spinning_is_on_unless_turned_off() -> None:
    key = "session.intra_op.allow_spinning"
    with pytest.raises(Exception, match="allow_spinning"):  # unset: onnxruntime spins
        session_options().get_session_config_entry(key)
    off = session_options(intra_op_threads=2, spinning=False)
    assert off.get_session_config_entry(key) == "0"
    assert off.intra_op_num_threads == 2


def test_workers_do_not_spin_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREC_ENCODER_SPINNING", raising=False)
    assert Settings().encoder.spinning is False
    monkeypatch.setenv("LLMREC_ENCODER_SPINNING", "true")
    assert Settings().encoder.spinning is True


def test_parallel_runs_auto_shares_the_cores_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "usable_cores", lambda: 2)
    assert resolve_parallel_runs("cpu", 0, None) == (2, 1)
    assert resolve_parallel_runs("cpu", 0, 3) == (2, 3)  # threads given: kept
    assert resolve_parallel_runs("cpu", 1, None) == (1, None)  # onnxruntime's own default
    monkeypatch.setattr(session, "usable_cores", lambda: 16)
    assert resolve_parallel_runs("cpu", 0, None) == (2, 8)
    assert resolve_parallel_runs("cpu", 4, None) == (4, 4)
    monkeypatch.setattr(session, "usable_cores", lambda: 1)
    assert resolve_parallel_runs("cpu", 0, None) == (1, None)
    with pytest.raises(ValueError, match="parallel_runs"):
        resolve_parallel_runs("cpu", -1, None)


def test_parallel_runs_auto_is_one_run_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "select_providers", lambda device: [session.CUDA_PROVIDER])
    monkeypatch.setattr(session, "usable_cores", lambda: 8)
    assert resolve_parallel_runs("auto", 0, None) == (1, None)


def test_workers_leave_parallel_runs_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREC_ENCODER_PARALLEL_RUNS", raising=False)
    assert Settings().encoder.parallel_runs == 0
