"""What a user is told when Keras cannot run a model: the custom class is named (its code is not
installed, so neither tf_keras nor --unsafe could help), a Keras 3 file is never pointed at
tf_keras, a tf.keras 2 file without tf_keras says how to install it, and Keras' own text is cut
at a word boundary.

The models are real Keras files; each is loaded in a fresh Python process where its custom
class was never defined (and, for some runs, where ``import tf_keras`` fails as if it were
not installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

from bntui.core.config_safety import custom_classes
from bntui.tf_bridge.keras_loader import (
    one_line,
    stored_config,
    tf_keras_install_hint,
    written_by_keras_major,
)

_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
_BLOCK_TF_KERAS = "import sys; sys.modules['tf_keras'] = None\n"  # `import tf_keras` now fails

#: Loads each file given and prints {path: message or "loaded"} as JSON.
_LOAD_ALL = textwrap.dedent("""
    import json, sys
    from bntui.tf_bridge.keras_loader import CaptureUnavailable, load_whole_model
    unsafe = sys.argv[1] == "unsafe"
    out = {}
    for path in sys.argv[2:]:
        try:
            load_whole_model(path, unsafe=unsafe)
            out[path] = "loaded"
        except CaptureUnavailable as err:
            out[path] = str(err)
    print(json.dumps(out))
""")

_WRITE_MODELS = textwrap.dedent("""
    import sys
    from pathlib import Path
    import keras, tf_keras
    folder = Path(sys.argv[1])

    @keras.saving.register_keras_serializable(package="test_pkg")
    class ZetaGate(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    @keras.saving.register_keras_serializable(package="test_pkg")
    class OmegaShift(keras.layers.Layer):
        def call(self, inputs):
            return inputs + 1.0

    inputs = keras.Input((3,), name="x")
    hidden = OmegaShift(name="shift")(ZetaGate(name="gate")(inputs))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(hidden))
    model.save(folder / "two_custom.keras")
    model.save(folder / "two_custom.h5")

    class KappaDouble(tf_keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    inputs = tf_keras.Input((3,), name="x")
    encoder = tf_keras.Sequential([tf_keras.layers.Dense(3, name="dense", input_shape=(3,)),
                                   tf_keras.layers.BatchNormalization(name="bn_1")], name="encoder")
    hidden = KappaDouble(name="double")(encoder(inputs))
    tf_keras.Model(inputs, tf_keras.layers.BatchNormalization(name="bn")(hidden)).save(folder / "k2_custom.h5")

    inputs = tf_keras.Input((3,), name="x")
    hidden = tf_keras.layers.Lambda(lambda t: t * 2.0, name="double")(encoder(inputs))
    tf_keras.Model(inputs, tf_keras.layers.BatchNormalization(name="bn")(hidden)).save(folder / "k2_lambda.h5")
""")


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env=_ENV, check=False)


def _load_all(paths: list[Path], *, tf_keras: bool, unsafe: bool = False) -> dict[str, str]:
    code = ("" if tf_keras else _BLOCK_TF_KERAS) + _LOAD_ALL
    result = _python(code, "unsafe" if unsafe else "safe", *map(str, paths))
    assert result.returncode == 0, result.stderr
    return {Path(path).name: message for path, message in json.loads(result.stdout).items()}


def _cli(*args: str, tf_keras: bool = True) -> subprocess.CompletedProcess[str]:
    code = ("" if tf_keras else _BLOCK_TF_KERAS) + "import sys; from bntui.cli.main import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env=_ENV, check=False)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keras 3 (.keras, .h5) files with two custom classes, and tf.keras 2 .h5 files with a custom
    class and with a Lambda, written in a process of their own, so the classes exist nowhere else."""
    pytest.importorskip("tf_keras")
    folder = tmp_path_factory.mktemp("load_messages")
    result = _python(_WRITE_MODELS, str(folder))
    assert result.returncode == 0, result.stderr
    return folder


CUSTOM_TAIL = "whose code is not installed here, so Keras cannot run it; its BN layers can still be read and computed"


def _assert_custom_class_message(message: str, names: str) -> None:
    assert message == f"capture unavailable: the model uses {names}, {CUSTOM_TAIL}"
    assert "tf_keras" not in message and "tf-keras" not in message
    assert "--unsafe" not in message


# -- pure parts --------------------------------------------------------------------------------


def test_custom_classes_are_named_from_the_stored_config() -> None:
    assert custom_classes(stored_config(SAMPLES / "custom_layer.keras")) == ("LearnedScale",)
    # The Keras 3 .h5 stores the registered name "bntui_samples>LearnedScale"; the class is shown.
    assert custom_classes(stored_config(SAMPLES / "custom_layer.h5")) == ("LearnedScale",)
    for name in ("nested.keras", "nested.h5", "keras2_nested.h5", "keras2_convnet.h5"):
        assert custom_classes(stored_config(SAMPLES / name)) == (), name


def test_custom_classes_skip_code_carrying_layers_but_catch_impostors() -> None:
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Lambda", "config": {"name": "l", "function_type": "lambda"}},
        {"class_name": "TFOpLambda", "config": {"name": "tf.nn.relu"}},
        {"module": "my_package.layers", "class_name": "Dense", "config": {}},
        {"module": "keras.layers", "class_name": "Conv2D", "registered_name": "Custom>Conv2D", "config": {}},
        {"class_name": "Dense", "config": {"kernel_initializer": {"class_name": "MyInit", "config": {}}}},
        {"class_name": "BatchNormalization", "module": "keras.layers", "registered_name": None, "config": {}},
    ]}, "compile_config": {"loss": {"class_name": "MyLoss", "config": {}}}}
    assert custom_classes(config) == ("Dense", "Conv2D", "MyInit")


def test_the_writing_keras_version_is_read_from_the_file() -> None:
    assert written_by_keras_major(SAMPLES / "custom_layer.keras") == 3
    assert written_by_keras_major(SAMPLES / "custom_layer.h5") == 3
    assert written_by_keras_major(SAMPLES / "keras2_nested.h5") == 2
    assert written_by_keras_major(SAMPLES / "nested.weights.h5") is None


def test_keras_text_is_cut_after_a_whole_word() -> None:
    text = ("Invalid Functional model configuration. The graph of the Functional model either has loops or "
            "disconnected nodes. The following nodes failed to be resolved: {<Bunch of nodes>}")
    for limit in (90, 120, 150, 160):
        cut = one_line(text, limit)
        assert cut.endswith("…") and len(cut) <= limit + 1
        kept = cut[:-1]
        assert text.startswith(kept) and text[len(kept)] in " .,;:", (limit, cut)
        assert not kept.endswith((" ", ",", ";", ":"))
    assert one_line(text, 160) == ("Invalid Functional model configuration. The graph of the Functional model "
                                   "either has loops or disconnected nodes. The following nodes failed to be "
                                   "resolved…")
    assert one_line("x" * 300) == "x" * 160 + "…"  # no word to cut after: a hard cut


def test_the_tf_keras_hint_fits_the_installed_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    def installed(versions: dict[str, str]):  # type: ignore[no-untyped-def]
        def version(name: str) -> str:
            if name not in versions:
                raise metadata.PackageNotFoundError(name)
            return versions[name]
        return version

    monkeypatch.setattr(metadata, "version", installed({"tensorflow-cpu": "2.21.0"}))
    assert tf_keras_install_hint() == "pip install --no-deps tf-keras~=2.21.0"
    monkeypatch.setattr(metadata, "version", installed({"tensorflow": "2.19.1"}))
    assert tf_keras_install_hint() == "pip install tf-keras~=2.19.0"
    monkeypatch.setattr(metadata, "version", installed({}))
    assert tf_keras_install_hint() == "pip install tf-keras"


def test_unsafe_help_names_both_options_that_use_it() -> None:
    from bntui.cli.main import build_parser

    text = " ".join(build_parser().format_help().split())
    help_text = text[text.index("--unsafe let Keras"):]
    assert help_text.startswith("--unsafe let Keras run Lambda code stored in the model (for --model-input and "
                                "--drift)")
    assert "only for --model-input" not in text


# -- real Keras files --------------------------------------------------------------------------


@pytest.mark.tensorflow
@pytest.mark.parametrize("tf_keras", [True, False], ids=["with_tf_keras", "without_tf_keras"])
def test_sample_custom_layer_names_its_class_whatever_is_installed(tf_keras: bool) -> None:
    if tf_keras:
        pytest.importorskip("tf_keras")
    messages = _load_all([SAMPLES / "custom_layer.keras", SAMPLES / "custom_layer.h5"], tf_keras=tf_keras)
    for name in ("custom_layer.keras", "custom_layer.h5"):
        _assert_custom_class_message(messages[name], "LearnedScale (custom class)")


@pytest.mark.tensorflow
@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
def test_written_models_name_their_custom_classes(written: Path, unsafe: bool) -> None:
    names = ["two_custom.keras", "two_custom.h5", "k2_custom.h5", "k2_lambda.h5"]
    messages = _load_all([written / name for name in names], tf_keras=True, unsafe=unsafe)
    _assert_custom_class_message(messages["two_custom.keras"], "ZetaGate, OmegaShift (custom classes)")
    _assert_custom_class_message(messages["two_custom.h5"], "ZetaGate, OmegaShift (custom classes)")
    # A tf.keras 2 file: tf_keras is installed, but cannot build a class whose code is not here either.
    _assert_custom_class_message(messages["k2_custom.h5"], "KappaDouble (custom class)")
    if unsafe:  # where --unsafe does help, it helps
        assert messages["k2_lambda.h5"] == "loaded"
    else:  # ...and is the advice
        assert "Lambda" in messages["k2_lambda.h5"] and "--unsafe" in messages["k2_lambda.h5"]


@pytest.mark.tensorflow
def test_a_tf_keras_2_file_without_tf_keras_says_how_to_install_it(written: Path) -> None:
    messages = _load_all([SAMPLES / "keras2_nested.h5", written / "two_custom.h5"], tf_keras=False)
    message = messages["keras2_nested.h5"]
    assert message.startswith("capture unavailable: Keras 3 cannot load this tf.keras 2 file (")
    assert message.endswith(f"); to run it, install tf_keras: {tf_keras_install_hint()}")
    assert "--unsafe" not in message and "{<B" not in message
    keras_text = message[message.index("(") + 1:message.index("); to run it")]
    assert keras_text.endswith("…") and keras_text[-2].isalnum()  # cut after a whole word
    assert len(message) < 240
    # A Keras 3 file of the same kind is never pointed at tf_keras.
    assert "tf_keras" not in messages["two_custom.h5"] and "tf-keras" not in messages["two_custom.h5"]


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", ["custom_layer.keras", "custom_layer.h5"])
def test_cli_drift_on_the_sample_custom_layer_is_one_honest_line(name: str) -> None:
    result = _cli(str(SAMPLES / name), "--drift", "normal:0:64", tf_keras=False)
    assert result.returncode == 1
    assert result.stderr == f"bntui: capture unavailable: the model uses LearnedScale (custom class), {CUSTOM_TAIL}\n"
    unsafe = _cli(str(SAMPLES / name), "--drift", "normal:0:64", "--unsafe")
    assert unsafe.returncode == 1
    assert unsafe.stderr.splitlines()[-1] == result.stderr.strip()
    assert "Traceback" not in unsafe.stderr and "allows it" not in unsafe.stderr
