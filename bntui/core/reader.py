"""Open any saved Keras model read-only and describe its BatchNormalization layers.

:func:`sniff` picks a reader for a path: HDF5 files and ``.keras`` zips by their first bytes,
never by their extension (people name HDF5 files ``.h5``, ``.hdf5``, ``.model`` or ``.keras``
alike); SavedModel directories, TF.js ``model.json`` files and TF checkpoints by the files
that make them up (a checkpoint is named by its prefix, which is no file at all). Nothing in
a file is ever executed: configs are parsed as JSON and classes are only compared by name.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py

from bntui.core.errors import ModelFileError
from bntui.core.io.checkpoint import checkpoint_prefix, read_checkpoint
from bntui.core.io.savedmodel import read_savedmodel, savedmodel_dir
from bntui.core.io.tfjs import read_tfjs, tfjs_json
from bntui.core.keras_config import build_tree, parse_config_json
from bntui.core.keras_v3 import read_v3_weights
from bntui.core.legacy_h5 import read_legacy
from bntui.core.model import ModelInfo
from bntui.core.zip_member import open_member, read_small_member

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"

# What h5py, zipfile and the hand-written decoders raise on damaged files; turned into one
# clear line in one place.
_DAMAGE = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, EOFError, zipfile.BadZipFile,
           struct.error, OverflowError)

#: A reader: (the file or directory to read, the path as the user gave it) -> the model.
Reader = Callable[[Path, str], ModelInfo]


@dataclass(frozen=True)
class Sniffed:
    """What :func:`sniff` found: the reader for a path, and what it reads."""

    kind: str
    target: Path
    read: Reader


def open_model(path: str | os.PathLike[str]) -> ModelInfo:
    """Read a model and return its BN layers; raise :class:`ModelFileError` on any problem."""
    file_path = Path(path)
    found = sniff(file_path)
    try:
        return found.read(found.target, str(file_path))
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(f"{file_path}: nested too deeply to read") from None
    except _DAMAGE as err:
        raise ModelFileError(f"{file_path}: damaged or truncated file ({_short(err)})") from None


def sniff(file_path: Path) -> Sniffed:
    """The reader for a path, from the files it names; a one-line error when there is none."""
    try:
        is_dir = file_path.is_dir()
        exists = is_dir or file_path.exists()
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ModelFileError(f"{file_path}: symbolic link loop") from None
        raise ModelFileError(f"{file_path}: cannot open ({err.strerror or err})") from None
    if is_dir or not exists or file_path.suffix in (".pb", ".json", ".index", ".meta") or ".data-" in file_path.name:
        try:
            found = _sniff_tensorflow(file_path)
        except OSError as err:  # an unreadable checkpoint state file or folder
            raise ModelFileError(f"{file_path}: cannot open ({err.strerror or err})") from None
        if found is not None:
            return found
        if is_dir:
            raise ModelFileError(
                f"{file_path} is a directory, not a model file (no saved_model.pb, model.json or TF checkpoint in it)"
            )
    head = _read_head(file_path)
    if head.startswith(ZIP_SIGNATURE):
        return Sniffed(".keras zip", file_path, _open_keras_zip)
    if head.startswith(HDF5_SIGNATURE) or _is_hdf5(file_path):
        return Sniffed("HDF5", file_path, _open_h5)
    if head.lstrip().startswith(b"{"):
        return Sniffed("TensorFlow.js", file_path, read_tfjs)
    raise ModelFileError(
        f"{file_path}: not a Keras model file (not HDF5, a .keras zip, a SavedModel, a TF.js model or a TF checkpoint)"
    )


def _sniff_tensorflow(file_path: Path) -> Sniffed | None:
    """A SavedModel, TF.js model or checkpoint named by a directory, a member file or a prefix."""
    directory = savedmodel_dir(file_path)
    if directory is not None:
        return Sniffed("SavedModel", directory, read_savedmodel)
    model_json = tfjs_json(file_path)
    if model_json is not None and model_json.is_file():
        return Sniffed("TensorFlow.js", model_json, read_tfjs)
    prefix = checkpoint_prefix(file_path)
    if prefix is not None:
        return Sniffed("TF checkpoint", prefix, read_checkpoint)
    return None


def _is_hdf5(file_path: Path) -> bool:
    try:
        return bool(h5py.is_hdf5(str(file_path)))
    except _DAMAGE:
        return False


def _open_h5(file_path: Path, _shown: str) -> ModelInfo:
    with h5py.File(file_path, "r") as h5:
        return _from_h5(h5, str(file_path))


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:160]


def _read_head(file_path: Path) -> bytes:
    """First bytes of the file, with a plain message for every way opening can fail."""
    try:
        if file_path.is_dir():
            raise ModelFileError(f"{file_path} is a directory, not a model file")
        with open(file_path, "rb") as handle:
            head = handle.read(8)
    except FileNotFoundError:
        raise ModelFileError(f"{file_path}: no such file") from None
    except PermissionError:
        raise ModelFileError(f"{file_path}: permission denied") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ModelFileError(f"{file_path}: symbolic link loop") from None
        raise ModelFileError(f"{file_path}: cannot open ({err.strerror or err})") from None
    if not head:
        raise ModelFileError(f"{file_path}: the file is empty")
    return head


def _from_h5(h5: h5py.File, path: str) -> ModelInfo:
    """Dispatch on the HDF5 layout: legacy (named weights) or Keras 3 weights-only."""
    if "model_weights" in h5 or "layer_names" in h5.attrs or "layer_names0" in h5.attrs:
        layers, version, model_name, has_config = read_legacy(h5)
        major = (version or "?").split(".")[0]
        kind = "Keras 3 HDF5" if major == "3" else ("tf.keras HDF5" if version and "tf" in version else "Keras 2 HDF5")
        if not has_config:
            kind += " (weights only)"
        return ModelInfo(path=path, format=kind, keras_version=version, layers=tuple(layers), model_name=model_name)
    if "layers" in h5:
        layers = read_v3_weights(h5, None)
        return ModelInfo(path=path, format="Keras 3 HDF5 (weights only)", keras_version=None, layers=tuple(layers))
    raise ModelFileError(f"{path}: an HDF5 file, but not a Keras model (no model_weights, layer_names or layers)")


def _open_keras_zip(file_path: Path, _shown: str) -> ModelInfo:
    with open(file_path, "rb") as raw, zipfile.ZipFile(raw) as archive:
        names = set(archive.namelist())
        for needed in ("config.json", "model.weights.h5"):
            if needed not in names:
                raise ModelFileError(f"{file_path}: a zip, but not a .keras model (no {needed})")
        tree = build_tree(parse_config_json(read_small_member(archive, "config.json")))
        version = None
        if "metadata.json" in names:
            try:
                metadata = json.loads(read_small_member(archive, "metadata.json"))
                version = str(metadata.get("keras_version")) if isinstance(metadata, dict) else None
            except ValueError:
                version = None
        member = open_member(archive, raw, "model.weights.h5")
        try:
            with h5py.File(member, "r") as h5:
                layers = read_v3_weights(h5, tree)
        except OSError as err:
            raise ModelFileError(f"{file_path}: model.weights.h5 inside the zip is damaged ({_short(err)})") from None
    return ModelInfo(
        path=str(file_path), format=".keras zip", keras_version=version, layers=tuple(layers), model_name=tree.name
    )
