"""A corpus of bad model files, each made here from real samples or by h5py and zipfile,
with the message bntui must give for it."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from conftest import SAMPLES, SEED
from legacy_writer import bn_config, bn_weights, write_legacy

Maker = Callable[[Path], Path]


def _write(name: str, data: bytes) -> Maker:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path
    return make


def _truncated(source: Path, fraction: float) -> Maker:
    def make(folder: Path) -> Path:
        data = source.read_bytes()
        path = folder / f"cut-{fraction}{source.suffix}"
        path.write_bytes(data[: int(len(data) * fraction)])
        return path
    return make


def _plain_hdf5(folder: Path) -> Path:
    path = folder / "data.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("images", data=np.zeros((2, 2)))
    return path


def _one_bn(folder: Path, name: str, weights: list, config: dict | None = None, **kwargs: object) -> Path:
    config = config or {"class_name": "Sequential", "config": {"name": "s", "layers": [bn_config("bn")]}}
    return write_legacy(folder / name, [("bn", weights)], config=config, **kwargs)


def _bad_json(folder: Path) -> Path:
    path = _one_bn(folder, "badjson.h5", bn_weights("bn", 2, seed=0))
    with h5py.File(path, "r+") as h5:
        h5.attrs["model_config"] = b'{"class_name": "Sequential", "config": {'
    return path


def _ghost_group(folder: Path) -> Path:
    path = _one_bn(folder, "ghost.h5", bn_weights("bn", 2, seed=0))
    with h5py.File(path, "r+") as h5:
        h5["model_weights"].attrs["layer_names"] = np.array([b"bn", b"ghost"])
    return path


def _wrong_length(folder: Path) -> Path:
    weights = bn_weights("bn", 4, seed=0)
    weights[0] = (weights[0][0], weights[0][1][:3])
    return _one_bn(folder, "length.h5", weights)


def _wrong_rank(folder: Path) -> Path:
    weights = bn_weights("bn", 4, seed=0)
    weights[1] = (weights[1][0], weights[1][1].reshape(2, 2))
    return _one_bn(folder, "rank.h5", weights)


def _partial(folder: Path) -> Path:
    return _one_bn(folder, "partial.h5", bn_weights("bn", 4, seed=0)[:3])


def _keras_zip(name: str, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Maker:
    def make(folder: Path) -> Path:
        path = folder / name
        with zipfile.ZipFile(path, "w", compression=compression) as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        return path
    return make


def _seed_member(name: str) -> bytes:
    with zipfile.ZipFile(SAMPLES / "seed.keras") as archive:
        return archive.read(name)


def _bomb(folder: Path) -> Path:
    """A .keras whose config.json inflates from ~70 kB to 70 MB."""
    members = {"metadata.json": b"{}", "config.json": b" " * (70 * 1024 * 1024),
               "model.weights.h5": _seed_member("model.weights.h5")}
    return _keras_zip("bomb.keras", members, zipfile.ZIP_DEFLATED)(folder)


def _directory(folder: Path) -> Path:
    path = folder / "folder.h5"
    path.mkdir()
    return path


def _symlink_loop(folder: Path) -> Path:
    a, b = folder / "a.h5", folder / "b.h5"
    os.symlink(b, a)
    os.symlink(a, b)
    return a


#: (id, maker, fragment of the one-line message)
CORPUS: list[tuple[str, Maker, str]] = [
    ("empty", _write("empty.h5", b""), "the file is empty"),
    ("random-bytes", _write("random.h5", np.random.default_rng(0).bytes(5000)), "not a Keras model file"),
    ("text-named-h5", _write("notes.h5", b"model weights are elsewhere\n"), "not a Keras model file"),
    *[(f"truncated-{f}-{s.stem}", _truncated(s, f), "damaged or truncated")
      for s in (SEED, SAMPLES / "nested.h5") for f in (0.1, 0.5, 0.9)],
    ("truncated-keras", _truncated(SAMPLES / "nested.keras", 0.5), "damaged or truncated"),
    ("hdf5-not-keras", _plain_hdf5, "an HDF5 file, but not a Keras model"),
    ("malformed-config", _bad_json, "the model config is not valid JSON"),
    ("missing-group", _ghost_group, "layer_names lists 'ghost' but the file has no such group"),
    ("wrong-length", _wrong_length, "gamma has 3 values but moving_mean has 4"),
    ("wrong-rank", _wrong_rank, "has shape (2, 2); a BN weight is one value per channel"),
    ("partial-weights", _partial, "is missing its moving_variance weight"),
    ("zip-no-config", _keras_zip("noconfig.keras", {"model.weights.h5": _seed_member("model.weights.h5")}),
     "a zip, but not a .keras model (no config.json)"),
    ("zip-no-weights", _keras_zip("noweights.keras", {"config.json": _seed_member("config.json")}),
     "a zip, but not a .keras model (no model.weights.h5)"),
    ("zip-garbage-config", _keras_zip("garbage-config.keras", {
        "config.json": b"\x00\xffnot json", "model.weights.h5": _seed_member("model.weights.h5")}),
     "the model config is not valid JSON"),
    ("zip-garbage-weights", _keras_zip("garbage-weights.keras", {
        "config.json": _seed_member("config.json"), "model.weights.h5": b"garbage" * 100}),
     "model.weights.h5 inside the zip is damaged"),
    ("zip-bomb", _bomb, "config.json claims 73400320 bytes; refusing"),
    ("directory", _directory, "is a directory, not a model file"),
    ("missing", lambda folder: folder / "missing.h5", "no such file"),
    ("symlink-loop", _symlink_loop, "symbolic link loop"),
]


def weird_weights(folder: Path) -> Path:
    """NaN, Inf, negative and denormal values: the file opens, with warnings."""
    weights = [
        ("bn/gamma:0", np.array([np.nan, 1.0, 1.0, 1.0], np.float32)),
        ("bn/beta:0", np.array([0.0, np.inf, 0.0, 0.0], np.float32)),
        ("bn/moving_mean:0", np.array([0.0, 0.0, 0.0, 0.0], np.float32)),
        ("bn/moving_variance:0", np.array([1.0, -1.0, 1e-41, 1.0], np.float32)),
    ]
    return _one_bn(folder, "weird.h5", weights)


def no_bn(folder: Path) -> Path:
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "dense", "units": 2}}]}}
    return write_legacy(folder / "plain.h5", [("dense", [])], config=config)


__all__ = ["CORPUS", "json", "no_bn", "weird_weights"]
