"""Bad files give one clear line, damaged files never hang or crash bntui, and the user's
files are never changed."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_files import CORPUS, no_bn, weird_weights
from conftest import ROOT, SAMPLE_FILES, SAMPLES

from bntui.core import ModelFileError, open_model
from bntui.core.guarded_open import open_model_guarded
from bntui.core.input_parse import MAX_TEXT, InputValueError, parse_values


def cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "bntui", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)


@pytest.mark.parametrize("name, make, message", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_file_gives_one_clear_line(tmp_path: Path, name: str, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    with pytest.raises(ModelFileError, match=None) as caught:
        open_model_guarded(path)
    assert message in str(caught.value), str(caught.value)
    result = cli(str(path), "--list")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("bntui: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.h5"
    shutil.copyfile(SAMPLES / "seed.h5", path)
    path.chmod(0)
    # root reads anything; drop the capabilities that let it, so the check is real
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        assert capsh, "capsh (Debian's libcap2-bin) is needed to test permissions as root"
        prefix = (capsh, "--drop=cap_dac_override,cap_dac_read_search", "--")
        result = subprocess.run([*prefix, "-c", f"{sys.executable} -m bntui {path} --list"], capture_output=True,
                                text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    else:
        result = cli(str(path), "--list")
    assert result.returncode == 1
    assert result.stderr.strip() == f"bntui: {path}: permission denied"


def test_weird_values_open_with_warnings(tmp_path: Path) -> None:
    result = cli(str(weird_weights(tmp_path)), "--list", "--json")
    assert result.returncode == 0, result.stderr
    codes = {w["code"] for w in json.loads(result.stdout)["layers"][0]["warnings"]}
    assert {"not_finite", "negative_variance", "denormal_variance", "nan_ahead"} <= codes
    data = json.loads(cli(str(weird_weights(tmp_path / "..")), "--list", "--json").stdout)
    assert data["layers"][0]["gamma"][0] == "nan" and data["layers"][0]["beta"][1] == "inf"


def test_no_bn_layers_is_not_an_error(tmp_path: Path) -> None:
    result = cli(str(no_bn(tmp_path)), "--list")
    assert result.returncode == 0
    assert "no BatchNormalization layers in this model" in result.stdout


def test_hanging_hdf5_read_is_stopped(tmp_path: Path) -> None:
    """tests/data/hdf5_attribute_loop.h5 is a byte-flipped seed_center_false.h5 found by the
    fuzzer below: reading its model_config attribute makes the HDF5 library (h5py 3.14)
    spin forever. bntui must stop and say so instead of hanging."""
    path = tmp_path / "loop.h5"
    shutil.copyfile(ROOT / "tests" / "data" / "hdf5_attribute_loop.h5", path)
    with pytest.raises(ModelFileError) as caught:
        open_model_guarded(path, timeout=2)
    assert str(caught.value) == f"{path}: reading did not finish in 2 s; the HDF5 library loops on this damaged file"


def _mutate(samples: list[Path], rng: random.Random) -> tuple[Path, bytes]:
    source = rng.choice(samples)
    data = bytearray(source.read_bytes())
    if rng.random() < 0.3:
        return source, bytes(data[: rng.randrange(len(data))])
    for _ in range(rng.randint(1, 20)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return source, bytes(data)


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_reader(tmp_path: Path, seed: int) -> None:
    """Random byte flips and truncations of every sample: a model or a ModelFileError, nothing else."""
    rng = random.Random(seed)
    outcomes = {"ok": 0, "error": 0}
    for index in range(60):
        source, data = _mutate(SAMPLE_FILES, rng)
        path = tmp_path / f"fuzz{index}{source.suffix}"
        path.write_bytes(data)
        try:
            open_model_guarded(path, timeout=5)
            outcomes["ok"] += 1
        except ModelFileError as err:
            assert str(err) and "\n" not in str(err)
            outcomes["error"] += 1
    assert outcomes["error"] > 0


def test_typed_input_over_the_limit_is_refused() -> None:
    with pytest.raises(InputValueError, match=f"at most {MAX_TEXT} can be typed"):
        parse_values("1 " * (MAX_TEXT // 2 + 1))


# -- the user's files are never changed -------------------------------------------------------


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
async def test_sample_unchanged_after_everything(path: Path, tmp_path: Path) -> None:
    from bntui import tf_bridge
    from bntui.core.export import export_layer
    from bntui.core.steps import compute
    from bntui.tui.app import make_app

    before = _fingerprint(path)
    model = open_model(path)
    for layer in model.layers:
        computation = compute(layer, np.ones((2, layer.channels)) if layer.axis in (-1, 1) else
                              np.ones((2, 1, 1, layer.channels)))
        export_layer(layer, computation, tmp_path, "csv")
        export_layer(layer, computation, tmp_path, "json")
        assert tf_bridge.verify(computation).agrees
    assert cli(str(path), "--list", "--json").returncode == 0
    assert cli(str(path), "--layer", model.layers[0].path, "--input", "1", "--csv").returncode == 0
    app = make_app(str(path), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("down", "down", "i", *"0.5", "enter", "a", "d", "s")
        await app.workers.wait_for_complete()
        app.screen.action_export("csv", tmp_path)
    assert _fingerprint(path) == before


@pytest.mark.parametrize("name", ["zip-bomb", "malformed-config", "hdf5-not-keras", "symlink-loop"])
async def test_tui_shows_error_screen_not_traceback(tmp_path: Path, name: str) -> None:
    from bntui.tui.app import make_app
    from bntui.tui.screens.error_screen import ErrorScreen

    [(make, message)] = [(m, msg) for n, m, msg in CORPUS if n == name]
    app = make_app(str(make(tmp_path)), verify=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        assert app.screen.title_text == "Cannot open this file" and message in app.screen.message
        await pilot.press("q")
    assert app.return_code == 1  # a file that cannot be opened is a failure, for scripts too
