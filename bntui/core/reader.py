"""Open any saved Keras model file read-only and describe its BatchNormalization layers.

The format is recognised by the file's first bytes, never by its extension: people name
HDF5 files ``.h5``, ``.hdf5``, ``.model`` or ``.keras`` alike. Nothing in the file is ever
executed: configs are parsed as JSON and classes are only compared by name.
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from pathlib import Path

import h5py

from bntui.core.errors import ModelFileError
from bntui.core.keras_config import build_tree, parse_config_json
from bntui.core.keras_v3 import read_v3_weights
from bntui.core.legacy_h5 import read_legacy
from bntui.core.model import ModelInfo
from bntui.core.zip_member import open_member, read_small_member

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"

# What h5py and zipfile raise on damaged files; turned into one clear line in one place.
_DAMAGE = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, EOFError, zipfile.BadZipFile)


def open_model(path: str | os.PathLike[str]) -> ModelInfo:
    """Read a model file and return its BN layers; raise :class:`ModelFileError` on any problem."""
    file_path = Path(path)
    head = _read_head(file_path)
    try:
        if head.startswith(ZIP_SIGNATURE):
            return _open_keras_zip(file_path)
        if head.startswith(HDF5_SIGNATURE) or h5py.is_hdf5(str(file_path)):
            with h5py.File(file_path, "r") as h5:
                return _from_h5(h5, str(file_path))
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(f"{file_path}: nested too deeply to read") from None
    except _DAMAGE as err:
        raise ModelFileError(f"{file_path}: damaged or truncated file ({_short(err)})") from None
    raise ModelFileError(f"{file_path}: not a Keras model file (neither HDF5 nor a .keras zip)")


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


def _open_keras_zip(file_path: Path) -> ModelInfo:
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
