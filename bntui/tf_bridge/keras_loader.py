"""Importing Keras quietly, loading a whole model safely, and the errors of the TensorFlow side.

Loading order (:func:`load_whole_model`):

1. Keras 3 with ``safe_mode=True`` (it refuses Lambda bytecode itself);
2. only if Keras 3 cannot read the file (tf.keras 2.x ``.h5`` files it rejects), tf_keras,
   which has no safe mode: so first the file's config is read as JSON and checked by
   :func:`bntui.core.config_safety.unsafe_objects` for Lambda, TF-op layers and any class
   that is not a built-in Keras one. With ``unsafe=True`` both load anything.

When neither loads, the message says what would help, and only that: a model using a custom
class whose code is not installed here cannot be run by any Keras (``--unsafe`` only lets
Lambda code run), so it names the class; a Keras 3 file is never sent to tf_keras, which
reads tf.keras 2 files; a tf.keras 2 file without tf_keras says how to install it.

Every failure becomes one clean line: Keras' warnings are silenced while loading, and ANSI
escape codes or control characters in its messages are stripped.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bntui.core.errors import BntuiError


class CaptureUnavailable(BntuiError):
    """The model cannot be run safely (or at all) by Keras, so its real input is unknown."""


class TensorFlowUnavailable(BntuiError):
    """TensorFlow or Keras 3 is not installed (or fails to import)."""


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b.")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def one_line(err: BaseException | str, limit: int = 160) -> str:
    """An error message as one plain line: escape codes and control characters removed, the
    first non-empty line kept, at most ``limit`` characters (cut after a whole word when one
    ends in the second half of the limit, so no half token such as ``{<B`` is left)."""
    text = _CONTROL.sub("", _ANSI.sub("", str(err)))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else (type(err).__name__ if isinstance(err, BaseException) else "")
    if len(line) <= limit:
        return line
    cut = line[:limit]
    space = cut.rfind(" ") if line[limit] != " " else limit
    if space >= limit // 2:
        cut = cut[:space].rstrip(" ,;:")
    return cut + "…"


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while TensorFlow works: its C++ log lines ignore
    TF_CPP_MIN_LOG_LEVEL and would otherwise land in the middle of the TUI or of the CLI's
    one-line error messages."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextmanager
def quiet() -> Iterator[None]:
    """No Python warnings, no absl/TensorFlow log lines: for loading and running a model."""
    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        yield


def silence_stderr() -> None:
    """Point this process's fd 2 at the null device for good (the TUI's TensorFlow process)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def import_keras() -> Any:
    """Keras 3 (and TensorFlow behind it), imported with its start-up logging silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if "keras" in sys.modules:
            import keras
        else:
            with _quiet_stderr():
                import keras
                import tensorflow  # noqa: F401 - its start-up logging happens here, silenced
    except Exception as err:  # noqa: BLE001 - a broken TF install raises anything
        raise TensorFlowUnavailable(
            f"TensorFlow/Keras cannot be imported ({type(err).__name__}: {one_line(err, 120)}); "
            "install it with: pip install tensorflow-cpu"
        ) from None
    return keras


def import_tf_keras() -> Any:
    """tf_keras (Keras 2 for TensorFlow 2.16+), or None when it is not installed."""
    import_keras()
    try:
        with quiet():
            import tf_keras
    except Exception:  # noqa: BLE001 - missing or broken: either way there is no fallback
        return None
    return tf_keras


def _is_safe_mode_refusal(err: BaseException) -> bool:
    """Keras 3 refusing Lambda bytecode (its message names ``safe_mode``), not an unknown
    class that merely has "Lambda" in its name (``TFOpLambda``)."""
    return "safe_mode" in str(err)


def stored_config(path: str | Path) -> dict[str, Any] | None:
    """The model config a file stores (``config.json`` of a ``.keras`` zip, ``model_config``
    of an HDF5 file) parsed as JSON, or None for a weights-only file."""
    import zipfile

    import h5py

    from bntui.core.hdf5_attrs import text_attr
    from bntui.core.keras_config import parse_config_json
    from bntui.core.zip_member import read_small_member

    with open(path, "rb") as raw:
        is_zip = raw.read(4) == b"PK\x03\x04"
    if is_zip:
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                return None
            return parse_config_json(read_small_member(archive, "config.json"))
    with h5py.File(path, "r") as h5:
        text = text_attr(h5, "model_config")
    return parse_config_json(text) if text else None


def written_by_keras_major(path: str | Path) -> int | None:
    """The major version of the Keras that wrote the file (``keras_version`` in a ``.keras``
    zip's metadata.json or an HDF5 file's attributes), or None when it does not say. A
    ``.keras`` zip that does not say is taken as Keras 3 (the format it introduced)."""
    import json
    import zipfile

    import h5py

    from bntui.core.hdf5_attrs import text_attr
    from bntui.core.zip_member import read_small_member

    version: object = None
    try:
        with open(path, "rb") as raw:
            is_zip = raw.read(4) == b"PK\x03\x04"
        if is_zip:
            with zipfile.ZipFile(path) as archive:
                if "metadata.json" not in archive.namelist():
                    return 3
                metadata = json.loads(read_small_member(archive, "metadata.json"))
            version = metadata.get("keras_version") if isinstance(metadata, dict) else None
            if not isinstance(version, str):
                return 3
        else:
            with h5py.File(path, "r") as h5:
                version = text_attr(h5, "keras_version")
    except (OSError, ValueError, zipfile.BadZipFile, BntuiError):
        return None
    if not isinstance(version, str):
        return None
    major = version.strip().split(".", 1)[0]
    return int(major) if major.isdigit() else None


def tf_keras_install_hint() -> str:
    """How to install tf_keras next to this TensorFlow: pinned to its minor version, and with
    ``--no-deps`` where tensorflow-cpu is installed (tf-keras depends on ``tensorflow``, so pip
    would otherwise download the full TensorFlow as well)."""
    from importlib import metadata

    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    full, cpu = installed("tensorflow"), installed("tensorflow-cpu")
    version = full or cpu
    parts = version.split(".")[:2] if version else []
    pin = f"~={parts[0]}.{parts[1]}.0" if len(parts) == 2 and all(p.isdigit() for p in parts) else ""
    no_deps = "--no-deps " if cpu and not full else ""
    return f"pip install {no_deps}tf-keras{pin}"


def _first_three(items: tuple[str, ...]) -> str:
    """``a, b, c and 2 more``: enough to act on, short enough for one line."""
    return ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")


def _custom_class_refusal(names: tuple[str, ...]) -> CaptureUnavailable:
    shown = _first_three(names)
    kind = "custom class" if len(names) == 1 else "custom classes"
    return CaptureUnavailable(
        f"capture unavailable: the model uses {shown} ({kind}), whose code is not installed here, so Keras "
        "cannot run it; its BN layers can still be read and computed")


def _refuse_formats_that_would_run(path: str | Path) -> None:
    """Only .keras and .h5 files are loaded whole. Loading a SavedModel runs the graph functions
    stored in it (even with --unsafe, this is refused: nothing in bntui runs a file's code to
    read it); TF.js models and checkpoints hold no model Keras can run here."""
    from bntui.core.io.savedmodel import CAPTURE_REFUSAL
    from bntui.core.reader import sniff

    try:
        kind = sniff(Path(path)).kind
    except BntuiError:
        return  # the load below says what is wrong with the file
    if kind == "SavedModel":
        raise CaptureUnavailable(f"capture unavailable: {CAPTURE_REFUSAL}")
    if kind not in (".keras zip", "HDF5"):
        raise CaptureUnavailable(f"capture unavailable: a {kind} holds the weights but no model Keras can run "
                                 "here; capture needs the model as a .keras or .h5 file")


def load_whole_model(path: str | Path, *, unsafe: bool = False) -> Any:
    """The whole model, loaded by Keras 3 (safe mode) or, failing that, by a checked tf_keras.

    Raises :class:`CaptureUnavailable` with one line saying why neither could be used.
    """
    from bntui.core.config_safety import custom_classes, unsafe_objects

    _refuse_formats_that_would_run(path)
    keras = import_keras()
    try:
        with quiet():
            return keras.models.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as err:  # noqa: BLE001 - Keras raises many types; all mean "cannot load"
        keras_error = err
    if _is_safe_mode_refusal(keras_error) and not unsafe:
        raise CaptureUnavailable(
            "capture unavailable: the model holds Lambda code, which is not run without --unsafe")
    reason = one_line(keras_error)
    config = stored_config(path)
    if config is None:
        raise CaptureUnavailable(f"capture unavailable: Keras cannot load this model ({reason})")
    missing = custom_classes(config)
    if missing:  # no Keras can build a class whose code is not here, --unsafe or not
        raise _custom_class_refusal(missing)
    major = written_by_keras_major(path)
    if major is not None and major >= 3:  # tf_keras reads tf.keras 2 files, not these
        raise CaptureUnavailable(f"capture unavailable: Keras cannot load this model ({reason})")
    tf_keras = import_tf_keras()
    if tf_keras is None:
        short = one_line(keras_error, 90)
        what = "this tf.keras 2 file" if major == 2 else "this model (if it is a tf.keras 2 file)"
        raise CaptureUnavailable(f"capture unavailable: Keras 3 cannot load {what} ({short}); to run it, "
                                 f"install tf_keras: {tf_keras_install_hint()}")
    problems = unsafe_objects(config)
    if problems and not unsafe:
        shown = _first_three(problems)
        raise CaptureUnavailable(
            f"capture unavailable: Keras 3 cannot load this model ({reason}), and tf_keras, which has no "
            f"safe mode, is not used on a model holding {shown} (--unsafe allows it)")
    try:
        with quiet():
            return tf_keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - as above
        raise CaptureUnavailable(f"capture unavailable: neither Keras 3 ({reason}) nor tf_keras "
                                 f"({one_line(err)}) can load this model") from None
