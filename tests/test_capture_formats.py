"""Capture (and drift) load the whole model: only .keras and .h5 files are ever loaded. A
SavedModel's graph functions would run; TF.js models and checkpoints hold no runnable model."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT
from formats_fixtures import Built, build

from bntui import tf_bridge

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.getbasetemp() / "formats")


@pytest.mark.parametrize("name, words", [
    ("sm", "loading a SavedModel runs the graph functions"),
    ("sm_tf24", "loading a SavedModel runs the graph functions"),
    ("tfjs", "TensorFlow.js holds the weights but no model"),
    ("ckpt/w", "TF checkpoint holds the weights but no model"),
])
def test_capture_from_other_formats_is_refused_in_one_line(built: Built, name: str, words: str) -> None:
    layer = next(iter(built.expected))
    with pytest.raises(tf_bridge.CaptureUnavailable, match=words):
        tf_bridge.capture(built.folder / name, layer, "zeros")
    with pytest.raises(tf_bridge.CaptureUnavailable, match=words):
        tf_bridge.load_for_capture(built.folder / name, unsafe=True)  # --unsafe does not lift it


def test_cli_refuses_model_input_on_a_savedmodel(built: Built) -> None:
    layer = next(iter(built.expected))
    result = subprocess.run([sys.executable, "-m", "bntui.cli", str(built.folder / "sm"), "--layer", layer,
                             "--model-input", "zeros"], capture_output=True, text=True, cwd=ROOT,
                            check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "runs the graph functions" in result.stderr
