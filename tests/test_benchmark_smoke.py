"""The benchmark's smallest case runs end to end (timings are reported, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.slow
@pytest.mark.tensorflow
def test_benchmark_quick_case_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--cache", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("floor") for line in lines)
    assert any(line.startswith("MobileNetV2.h5") and "keras" in line for line in lines)
    assert any("first TUI screen with the list filled, MobileNetV2.h5" in line for line in lines)
    assert (tmp_path / "MobileNetV2.keras").exists()


@pytest.mark.slow
@pytest.mark.tensorflow
def test_json_size_benchmark_quick_case_runs() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "json_size.py"), "--quick"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "conv1_bn (1,112,112,64) --json" in result.stdout and " MB " in result.stdout
