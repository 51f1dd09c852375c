"""Drift's benchmark: the quick case runs end to end (timings are reported, never asserted:
CI machines are too noisy for ratios; the full case's numbers are in docs/drift.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.tensorflow
@pytest.mark.slow
def test_drift_benchmark_quick_case_runs(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "drift.py"), "--quick", "--cache", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("quick conv net, 256 samples")
    assert any(line.strip().startswith("drift / predict, whole run =") for line in lines)
    assert any(line.strip().startswith("collecting / forward, per batch =") for line in lines)
    assert any("peak RSS 2048 vs 256 samples" in line for line in lines)
