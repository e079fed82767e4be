"""Which encoder `llmrec-stream demo` loads for each language, on the real cached artifacts.

The first-use path (building the multilingual artifact into the user cache) takes minutes and
GBs, so these tests check the decision on a throw-away $HOME instead: absent -> built there,
present -> reused as it is, and a `$LLMREC_ENCODER_DIR` holding MiniLM never wins for zh.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from llmrec_stream.demo import cli as demo_cli
from llmrec_stream.encoder.artifact import ENV_ENCODER_DIR

pytest_plugins = ["tests.encoder_fixtures"]
pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh user: empty home, no encoder configured."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(ENV_ENCODER_DIR, raising=False)
    return tmp_path


def _cached(home: Path, artifact: Path) -> Path:
    """Put `artifact` where the demo keeps the multilingual encoder (a link: no copy)."""
    path = home / ".cache" / "llmrec-stream" / "encoder" / "multilingual-e5-small"
    path.parent.mkdir(parents=True)
    path.symlink_to(artifact, target_is_directory=True)
    return path


def test_english_leaves_the_choice_to_the_settings(home: Path) -> None:
    assert demo_cli.encoder_plan("en", "int8") == demo_cli.EncoderPlan(None)


@pytest.mark.parametrize("lang", ["zh", "mixed"])
def test_absent_multilingual_artifact_is_built_in_the_user_cache(home: Path, lang: str) -> None:
    plan = demo_cli.encoder_plan(lang, "int8")
    assert plan.build
    assert plan.path == home / ".cache" / "llmrec-stream" / "encoder" / "multilingual-e5-small"


def test_present_multilingual_artifact_is_reused(
    home: Path, multilingual_encoder_dir: Path
) -> None:
    path = _cached(home, multilingual_encoder_dir)
    assert demo_cli.encoder_plan("zh", "int8") == demo_cli.EncoderPlan(path)
    # the CLI's own step: returns the cached path, does not rebuild (that would take minutes)
    assert demo_cli._encoder_for("zh", "int8", Console(quiet=True)) == path


def test_a_minilm_encoder_dir_does_not_hide_the_multilingual_one(
    home: Path,
    multilingual_encoder_dir: Path,
    encoder_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user who exported MiniLM with $LLMREC_ENCODER_DIR set gets zh on the multilingual
    encoder, told why; before, the demo silently ran a Chinese world on MiniLM."""
    path = _cached(home, multilingual_encoder_dir)
    monkeypatch.setenv(ENV_ENCODER_DIR, str(encoder_dir))
    console = Console(record=True, width=200)
    assert demo_cli._encoder_for("zh", "int8", console) == path
    assert "is not the multilingual encoder" in console.export_text()
    plan = demo_cli.encoder_plan("mixed", "fp32")
    assert plan.path == path and not plan.build


def test_a_multilingual_encoder_dir_is_used_as_it_is(
    home: Path, multilingual_encoder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_ENCODER_DIR, str(multilingual_encoder_dir))
    assert demo_cli.encoder_plan("zh", "int8") == demo_cli.EncoderPlan(multilingual_encoder_dir)
    assert demo_cli._encoder_for("zh", "int8", Console(quiet=True)) == multilingual_encoder_dir
