"""Session options of the serving encoder: threads and spinning."""

from __future__ import annotations

import pytest

ort = pytest.importorskip("onnxruntime")

from llmrec_stream.config import Settings  # noqa: E402 - after the skip
from llmrec_stream.encoder.runtime import session_options  # noqa: E402


def test_spinning_is_on_unless_turned_off() -> None:
    key = "session.intra_op.allow_spinning"
    with pytest.raises(Exception, match="allow_spinning"):  # unset: onnxruntime spins
        session_options().get_session_config_entry(key)
    off = session_options(intra_op_threads=2, spinning=False)
    assert off.get_session_config_entry(key) == "0"
    assert off.intra_op_num_threads == 2


def test_workers_do_not_spin_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREC_ENCODER_SPINNING", raising=False)
    assert Settings().encoder_spinning is False
    monkeypatch.setenv("LLMREC_ENCODER_SPINNING", "true")
    assert Settings().encoder_spinning is True
