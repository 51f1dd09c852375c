"""The command line as scripts use it: output formats, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SAMPLES, SEED


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bntui", *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          check=False)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert fragment in result.stderr
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("bntui: ")


def test_list_json(sample_file: Path) -> None:
    result = run(str(sample_file), "--list", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["layers"] and all(layer["channels"] >= 1 for layer in data["layers"])


def test_list_text_and_csv() -> None:
    text = run(str(SAMPLES / "nested.keras"), "--list")
    assert "decoder/head/bn_head" in text.stdout and "4 BatchNormalization layers" in text.stdout
    csv_lines = run(str(SAMPLES / "nested.keras"), "--list", "--csv").stdout.splitlines()
    assert csv_lines[0].startswith("path,channels,axis") and len(csv_lines) == 5


def test_csv_steps_full_precision() -> None:
    result = run(str(SEED), "--layer", "bn", "--input", "1, 5", "--csv", "--mode", "inference")
    rows = [line.split(",") for line in result.stdout.splitlines()]
    y = [float(row[-1]) for row in rows if row[2] == "y"]
    assert y == pytest.approx([0.7109690546, 2.0949485119], abs=5e-11)


def test_values_may_start_with_a_minus_sign() -> None:
    """``--input "-1, 5"`` is the input [-1, 5], not a missing argument; the seed layer's
    inference output for it follows from the formula with the seed's stored values."""
    from bntui.cli.main import joined_negative_values

    result = run(str(SEED), "--layer", "bn", "--input", "-1, 5", "--csv", "--mode", "inference")
    assert result.returncode == 0, result.stderr
    y = [float(row.split(",")[-1]) for row in result.stdout.splitlines() if row.split(",")[2] == "y"]
    gamma, beta, mean, var, eps = 0.22297101, 0.49253803, 0.36868709, 0.41429576, 0.001
    assert y == pytest.approx([gamma * (x - mean) / np.sqrt(var + eps) + beta for x in (-1.0, 5.0)], abs=1e-6)
    assert joined_negative_values(["m", "--got", "-0.5 1", "--list"]) == ["m", "--got=-0.5 1", "--list"]
    assert joined_negative_values(["m", "--input", "--list"]) == ["m", "--input", "--list"]  # an option stays one


def test_channel_and_mode_select_what_is_printed() -> None:
    result = run(str(SAMPLES / "conv_channels_first.h5"), "--layer", "bn_cf", "--input", "1, 2, 3, 4",
                 "--channel", "2", "--mode", "training", "--json")
    data = json.loads(result.stdout)
    assert list(data["training"]["steps"]) == ["2"] and "inference" not in data
    assert data["input"]["shape"] == [1, 4]


def test_input_file(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(2, 4, 6, 6))
    np.save(tmp_path / "x.npy", x)
    data = json.loads(run(str(SAMPLES / "conv_channels_first.h5"), "--layer", "bn_cf",
                          "--input-file", str(tmp_path / "x.npy"), "--json").stdout)
    assert np.array(data["inference"]["output"]).shape == (2, 4, 6, 6)


def test_default_model_is_the_demo() -> None:
    data = json.loads(run("--list", "--json").stdout)
    assert [layer["path"] for layer in data["layers"]] == ["bn"]


def test_text_steps_show_both_modes() -> None:
    out = run(str(SEED), "--layer", "bn", "--input", "1, 5").stdout
    assert "0.71096909" in out and "2.09494853" in out
    assert "x - batch_mean" in out and "[-2, 2]" in out


@pytest.mark.parametrize("args, fragment", [
    (["--layer", "nope", "--input", "1"], "no BatchNormalization layer named 'nope'"),
    (["--layer", "bn", "--input", "1, x"], "'x' is not a number"),
    (["--layer", "bn", "--input", ""], "input is empty"),
    (["--layer", "bn", "--input", "1", "--channel", "3"], "channel 3 does not exist"),
])
def test_bad_input_exits_1(args: list[str], fragment: str) -> None:
    assert_one_line_error(run(str(SEED), *args), 1, fragment)


def test_ambiguous_name_lists_paths() -> None:
    result = run(str(SAMPLES / "nested.h5"), "--layer", "bn_1")
    assert_one_line_error(result, 1, "encoder/bn_1, decoder/bn_1")


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_text("hello, I am text"), "not a Keras model file"),
    (lambda p: p.write_bytes(os.urandom(4096)), "not a Keras model file"),
    (lambda p: p.write_bytes(SEED.read_bytes()[:3000]), "damaged or truncated"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: None, "no such file"),
])
def test_bad_files_exit_1(tmp_path: Path, make, fragment: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "model.h5"
    make(path)
    assert_one_line_error(run(str(path), "--list"), 1, fragment)


@pytest.mark.parametrize("second", [False, True])
def test_a_missing_file_is_one_line_without_opening_the_tui(tmp_path: Path, second: bool) -> None:
    """``bntui missing.h5`` (and ``bntui A missing.h5``) answer on stderr, as ``--list`` does,
    before any screen: run without a terminal, a TUI would not have exited with this line."""
    missing = tmp_path / "missing.h5"
    args = (str(SEED), str(missing)) if second else (str(missing),)
    result = run(*args)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"bntui: {missing}: no such file"]


def test_usage_errors_exit_2() -> None:
    assert_one_line_error(run(str(SEED), "--input", "1"), 2, "need --layer")
    assert_one_line_error(run(str(SEED), "--mode", "sideways"), 2, "invalid choice")


def test_typed_numbers_that_reading_changed_are_said() -> None:
    """1e400 is beyond float64: the text output says it was read as inf, not silently."""
    out = run(str(SEED), "--layer", "bn", "--input", "1e400, 5").stdout
    assert "note: 1e400 is beyond float64 and was read as inf" in out
