"""The compare benchmark's quick case runs end to end (its ratio is reported, never asserted:
timings on a shared CI machine are noise)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.tensorflow
@pytest.mark.slow
def test_compare_benchmark_quick_case_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--quick", "--cache", str(tmp_path)],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("list MobileNetV2.h5 and MobileNetV2.keras --json")
    assert [line.split(":")[0] for line in lines[1:]] == [
        f"compare MobileNetV2.h5 with MobileNetV2.keras {kind}" for kind in ("--json", "--csv", "(text)")]
    assert all("listing both" in line for line in lines[1:])
