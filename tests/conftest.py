"""Shared fixtures: the committed sample models and a scratch folder per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".h5", ".keras"))
SEED = SAMPLES / "seed.h5"

#: The seed case from the README, as decimal numbers.
SEED_VALUES = {"gamma": 0.22297101, "beta": 0.49253803, "moving_mean": 0.36868709, "moving_variance": 0.41429576}


@pytest.fixture(params=SAMPLE_FILES, ids=lambda p: p.name)
def sample_file(request: pytest.FixtureRequest) -> Path:
    return request.param


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``tensorflow`` skip, saying why, where TensorFlow is not installed."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is not None:
        return
    skip = pytest.mark.skip(reason="TensorFlow is not installed (pip install tensorflow-cpu)")
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _work_in_a_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own empty folder: an export to the current folder (the TUI's
    `e`) can never land in the repository."""
    monkeypatch.chdir(tmp_path)
