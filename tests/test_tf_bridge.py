"""TensorFlow itself against the core: verification, capture, and that nothing is changed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SAMPLE_FILES, SAMPLES, SEED
from hypothesis import given, settings
from hypothesis import strategies as st
from test_steps import make_layer

from bntui import tf_bridge
from bntui.core import open_model
from bntui.core.input_parse import parse_for_layer, shape_for_layer
from bntui.core.steps import compute


def test_seed_tensorflow_output_is_exactly_the_float32_story() -> None:
    layer = open_model(SEED).layers[0]
    computation = compute(layer, parse_for_layer("1, 5", 1, -1))
    check = tf_bridge.verify(computation)
    assert check.inference.tensorflow_output.ravel().tolist() == [np.float32(0.71096909), np.float32(2.09494853)]
    np.testing.assert_array_equal(check.inference.tensorflow_output, computation.output_float32)
    assert check.agrees
    expected_training = np.array([-2.0, 2.0]) / np.sqrt(4.001) * layer.gamma[0] + layer.beta[0]
    np.testing.assert_allclose(check.training.tensorflow_output_float64.ravel(), expected_training, rtol=1e-15)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_sample_layer_agrees(path: Path) -> None:
    rng = np.random.default_rng(1)
    for layer in open_model(path).layers:
        rank = 4 if abs(layer.axis) >= 2 or layer.axis == 1 and "conv" in path.name else 2
        shape = [3] + [4] * (rank - 2) + [layer.channels]
        x = np.moveaxis(rng.normal(0.5, 2.0, shape), -1, layer.axis if layer.axis >= 0 else -1)
        check = tf_bridge.verify(compute(layer, shape_for_layer(x, layer.channels, layer.axis, typed_flat=False)))
        assert check.agrees, (path.name, layer.path, check.summary())
        assert check.training is not None and check.training.float64.agrees


@settings(max_examples=15, deadline=None)
@given(channels=st.integers(1, 5), batch=st.integers(1, 4), seed=st.integers(0, 2**31),
       center=st.booleans(), scale=st.booleans(), epsilon=st.sampled_from([1e-3, 1e-5, 0.1]),
       offset=st.floats(-50, 50))
def test_property_tensorflow_agrees(channels, batch, seed, center, scale, epsilon, offset) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    layer = make_layer(channels, -1, rng, center=center, scale=scale, epsilon=epsilon)
    x = rng.normal(offset, 3.0, (batch, 2, channels))
    computation = compute(layer, x)
    check = tf_bridge.verify(computation)
    assert check.agrees, check.summary()
    assert computation.max_ulp <= 4  # the folded float32 form, correctly rounded, against exact


def test_verify_never_changes_the_layer() -> None:
    layer = open_model(SAMPLES / "convnet_trained.keras").layers[0]
    before = [w.copy() for w in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)]
    tf_bridge.verify(compute(layer, np.random.default_rng(0).normal(3, 2, (4, 5, 5, layer.channels))))
    after = [layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance]
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("path, layer_path, spec", [
    (SAMPLES / "nested.keras", "decoder/head/bn_head", "normal:1"),
    (SAMPLES / "nested.h5", "encoder/bn_1", "uniform:2"),
    (SAMPLES / "convnet_trained.keras", "bn2", "normal:3"),
    (SAMPLES / "keras2_convnet.h5", "bn1", "ones"),
])
def test_capture_gives_the_real_intermediate_activation(path: Path, layer_path: str, spec: str) -> None:
    captured = tf_bridge.capture(path, layer_path, spec)
    layer = open_model(path).find(layer_path)
    assert captured.layer_input.shape[-1] == layer.channels
    assert captured.layer_input.shape != captured.model_input.shape or not np.allclose(
        captured.layer_input, captured.model_input)
    computation = compute(layer, captured.layer_input)
    np.testing.assert_allclose(captured.layer_output, computation.output_float32, rtol=1e-5, atol=1e-5)


def test_capture_from_npy_file(tmp_path: Path) -> None:
    x = np.random.default_rng(4).normal(size=(2, 12, 12, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    captured = tf_bridge.capture(SAMPLES / "convnet_trained.keras", "bn1", str(tmp_path / "x.npy"))
    assert captured.layer_input.shape == (2, 10, 10, 8)


def test_capture_unavailable_names_the_reason() -> None:
    with pytest.raises(tf_bridge.CaptureUnavailable, match="capture unavailable"):
        tf_bridge.capture(SAMPLES / "nested.weights.h5", "encoder/bn_1", "zeros")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bntui", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)


def test_cli_verify_json() -> None:
    result = _cli(str(SEED), "--layer", "bn", "--input", "1, 5", "--verify", "--json")
    assert result.returncode == 0, result.stderr
    verification = json.loads(result.stdout)["verification"]
    assert verification["agrees"] is True
    for mode in ("inference", "training"):
        assert {"tensorflow_output", "max_abs_diff", "max_ulp"} <= set(verification[mode])
    assert verification["inference"]["tensorflow_output"] == [[float(np.float32(0.71096909))], [float(np.float32(2.09494853))]]
    assert result.stderr == ""


def test_cli_model_input_random() -> None:
    result = _cli(str(SAMPLES / "nested.keras"), "--layer", "decoder/bn_1", "--model-input", "random:7", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["input"]["shape"] == [1, 3] and data["capture"]["max_abs_diff"] < 1e-5


def test_cli_capture_unavailable_is_one_line() -> None:
    result = _cli(str(SAMPLES / "nested.weights.h5"), "--layer", "encoder/bn_1", "--model-input", "zeros")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("bntui: capture unavailable")


# -- code stored in a file never runs -------------------------------------------------------


@pytest.fixture(scope="module")
def lambda_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """A model whose Lambda writes a marker file when run, saved as .keras and .h5."""
    import keras

    folder = tmp_path_factory.mktemp("lambda")
    marker = folder / "MARKER"
    code = f"lambda t: (open({str(marker)!r}, 'w').write('ran'), t)[1]"
    inputs = keras.Input((3,), name="x")
    hidden = keras.layers.Lambda(eval(code), name="writes_marker")(inputs)
    outputs = keras.layers.BatchNormalization(name="bn")(hidden)
    model = keras.Model(inputs, outputs)
    paths = [folder / "lambda.keras", folder / "lambda.h5"]
    for path in paths:
        model.save(path)
    marker.unlink(missing_ok=True)  # building the graph ran the lambda once; from here on it must not
    return paths, marker


def _digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_lambda_code_never_runs(lambda_models: tuple[list[Path], Path]) -> None:
    paths, marker = lambda_models
    for path in paths:
        before = _digest(path)
        assert _cli(str(path), "--list", "--json").returncode == 0
        assert _cli(str(path), "--layer", "bn", "--input", "1, 2, 3", "--verify").returncode == 0
        capture = _cli(str(path), "--layer", "bn", "--model-input", "zeros")
        assert capture.returncode == 1 and "capture unavailable" in capture.stderr
        assert "Lambda" in capture.stderr or "lambda" in capture.stderr
        assert not marker.exists(), f"opening {path.name} ran code stored in it"
        assert _digest(path) == before


def test_unsafe_runs_lambda_with_a_warning(lambda_models: tuple[list[Path], Path]) -> None:
    paths, marker = lambda_models
    result = _cli(str(paths[0]), "--layer", "bn", "--model-input", "zeros", "--unsafe", "--json")
    assert result.returncode == 0, result.stderr
    assert "warning: --unsafe" in result.stderr
    assert marker.exists()
    marker.unlink()


async def test_tui_with_lambda_model_never_runs_it(lambda_models: tuple[list[Path], Path]) -> None:
    from bntui.tui.app import make_app

    paths, marker = lambda_models
    for path in paths:
        app = make_app(str(path))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.press("i", *"1, 2, 3", "enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            app.screen.run_capture(app.screen.bn_layer, "zeros")
            while any(not worker.is_finished for worker in app.workers):  # it fails, as it should
                await pilot.pause(0.05)
            await pilot.pause()
            assert "capture unavailable" in app.screen.query_one("#verification").capture_note
            assert "TensorFlow agrees" in app.screen.query_one("#verification").status
        assert not marker.exists()


def _tui_in_fresh_process(inside: str, after: str = "") -> str:
    """Run the seed model's TUI headless in a new Python process (so ``sys.modules`` and
    child processes are its own): ``inside`` runs once the model is shown, ``after`` once
    the app has exited. Returns what the script printed."""
    indent = lambda code, spaces: "".join(" " * spaces + line + "\n" for line in code.strip().splitlines())
    code = (
        "import asyncio, multiprocessing, sys\nfrom bntui.tui.app import make_app\n"
        "async def main():\n"
        f"    app = make_app({str(SEED)!r})\n"
        "    async with app.run_test(size=(120, 40)) as pilot:\n"
        "        await pilot.pause(); await app.workers.wait_for_complete(); await pilot.pause()\n"
        + indent(inside, 8) + indent(after or "pass", 4)
        + "asyncio.run(main())\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout


def test_first_tui_screen_does_not_import_tensorflow() -> None:
    out = _tui_in_fresh_process("""
assert app.screen.bn_layer is not None
await pilot.press('a'); await pilot.press('s'); await pilot.press('m')
assert app.screen.mode == 'inference'
print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))
""")
    assert out.strip() == "[]"


def test_keys_work_while_tensorflow_loads() -> None:
    """TensorFlow loads in its own process: keys are handled while the check is still running."""
    out = _tui_in_fresh_process("""
app.screen.submit('1, 5')
while app.screen.computation is None:
    await pilot.pause(0.01)
status = str(app.screen.query_one('#verification').status)
await pilot.press('m', 'n')
pending = any(w.name == 'verify' and not w.is_finished for w in app.workers)
moved = app.screen.mode
await app.workers.wait_for_complete(); await pilot.pause()
print(status.startswith('Checking with TensorFlow'), moved, pending,
      str(app.screen.query_one('#verification').status).startswith('TensorFlow agrees'),
      'tensorflow' in sys.modules)
""")
    assert out.split() == ["True", "inference", "True", "True", "False"]


def test_quitting_stops_the_tensorflow_process_mid_import() -> None:
    """Quitting while TensorFlow still loads ends its process (SIGTERM) instead of waiting."""
    out = _tui_in_fresh_process("""
app.screen.submit('1, 5')
while not multiprocessing.active_children():
    await pilot.pause(0.01)
children = multiprocessing.active_children()
""", after="""
for child in children:
    child.join(30)
print([child.exitcode for child in children])
""")
    assert out.strip() == "[-15]"
