"""The formats benchmark's quick case runs end to end (timings are printed, never asserted:
the machine is shared, so only the shape of the report is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


@pytest.mark.tensorflow
@pytest.mark.slow
def test_formats_benchmark_quick_case_runs(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "formats.py"), "--quick", "--cache", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line}
    assert {".h5", "SavedModel", "TF.js"} <= rows.keys() and "TF2 checkpoint" in result.stdout
    assert "SavedModel / .h5 listing time:" in result.stdout
    assert (tmp_path / "formats_small" / "savedmodel" / "keras_metadata.pb").is_file()
