"""``bntui A --compare B``: usage errors, exit codes and a twin pair, without TensorFlow.

The pairs here are the committed samples (written by real Keras through
``sample_models/generate.py``); the scenarios built at test time are in ``test_compare.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, SAMPLES


def _bntui(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "bntui", *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, cwd=ROOT, env=env)


def test_a_model_and_its_twin_in_the_other_format_are_unchanged() -> None:
    result = _bntui(str(SAMPLES / "nested.h5"), "--compare", str(SAMPLES / "nested.keras"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [pair["findings"][0]["code"] for pair in data["pairs"]] == ["unchanged"] * 4
    assert {pair["matched_by"] for pair in data["pairs"]} == {"path"}
    assert data["first"]["format"] != data["second"]["format"]


def test_csv_has_a_row_per_pair_and_unmatched_layer() -> None:
    result = _bntui(str(SAMPLES / "nested.keras"), "--compare", str(SAMPLES / "keras2_nested.h5"), "--csv")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].startswith("first_path,second_path,matched_by,findings,config_diff")
    assert len(rows) == 1 + 4  # two pairs by path, two layers only in the first file


@pytest.mark.parametrize("args, fragment", [
    (["--compare", "x.h5"], "needs a first model"),
    (["a.h5", "--compare", "x.h5", "--layer", "bn"], "cannot be combined with --layer"),
    (["a.h5", "--compare", "x.h5", "--list"], "cannot be combined with --list"),
    (["a.h5", "--compare", "x.h5", "--json", "--csv"], "not allowed with argument"),
])
def test_usage_errors_exit_2(args: list[str], fragment: str) -> None:
    result = _bntui(*args)
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("which", ["first", "second"])
def test_a_missing_file_is_one_line(which: str) -> None:
    files = [str(SAMPLES / "seed.h5"), str(ROOT / "no_such_model.h5")]
    if which == "first":
        files.reverse()
    result = _bntui(files[0], "--compare", files[1])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"bntui: {ROOT / 'no_such_model.h5'}: no such file"


def test_comparing_imports_neither_tensorflow_nor_textual() -> None:
    """The analysis is pure numpy; the CLI path must not pull in TensorFlow, Keras or Textual."""
    code = (
        "import io, contextlib, sys\nfrom bntui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main([{str(SAMPLES / 'nested.h5')!r}, '--compare', {str(SAMPLES / 'nested.keras')!r}]) == 0\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "numpy" in loaded
    assert not loaded & {"tensorflow", "keras", "tf_keras", "textual", "rich"}
