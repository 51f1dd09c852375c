"""Damaged SavedModels, TF.js models and checkpoints: one clear line, no traceback, no hang;
and a fuzz test of the hand-written decoders (protobuf wire format, LevelDB table, bundle)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT
from formats_fixtures import Built, build

from bntui.core.errors import ModelFileError
from bntui.core.guarded_open import open_model_guarded
from bntui.core.io.protobuf_wire import Message, WireError
from bntui.core.io.tensor_bundle import read_table
from bntui.core.reader import open_model

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.getbasetemp() / "formats")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def write_table(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB table as TensorFlow writes bundle indexes: one data block with every key in
    full (a restart point each), an empty meta-index block, an index block, the 48-byte footer."""
    def block(items: list[tuple[bytes, bytes]]) -> bytes:
        body, restarts = bytearray(), []
        for key, value in items:
            restarts.append(len(body))
            body += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
        for offset in restarts or [0]:
            body += offset.to_bytes(4, "little")
        return bytes(body + len(restarts or [0]).to_bytes(4, "little"))

    data = block(sorted(entries))
    meta = block([])
    data_handle = _varint(0) + _varint(len(data))
    meta_offset = len(data) + 5
    index = block([(max(key for key, _ in entries) + b"\xff", data_handle)])
    index_offset = meta_offset + len(meta) + 5
    trailer = b"\x00" + b"\x00" * 4  # no compression; the crc is not checked by bntui
    footer = _varint(meta_offset) + _varint(len(meta)) + _varint(index_offset) + _varint(len(index))
    footer = footer.ljust(40, b"\x00") + (0xDB4775248B80FB57).to_bytes(8, "little")
    return data + trailer + meta + trailer + index + trailer + footer


def _rewrite_entry(index: Path, key: str, offset: int) -> None:
    """Set one BundleEntryProto's offset (field 4), using TensorFlow's own message class."""
    from tensorflow.core.protobuf import tensor_bundle_pb2

    entries = [(name.encode(), bytes(value)) for name, value in read_table(index.read_bytes()).items()]
    rewritten = []
    for name, value in entries:
        if name.decode() == key:
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(value)
            entry.offset = offset
            value = entry.SerializeToString()
        rewritten.append((name, value))
    index.write_bytes(write_table(rewritten))


def _bn_key(index: Path, offset_of: Callable[[dict[str, tuple[int, int]]], int]) -> tuple[str, int]:
    from tensorflow.core.protobuf import tensor_bundle_pb2

    spans = {}
    for name, value in read_table(index.read_bytes()).items():
        if name:
            entry = tensor_bundle_pb2.BundleEntryProto()
            entry.ParseFromString(bytes(value))
            spans[name] = (entry.offset, entry.size)
    key = next(name for name in spans if name.endswith("moving_mean/.ATTRIBUTES/VARIABLE_VALUE"))
    return key, offset_of(spans)


def _copy(built: Built, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name.replace("/", "_")
    shutil.copytree(built.path(name), target)
    return target


def _truncated_shard(built: Built, tmp_path: Path) -> Path:
    folder = _copy(built, "sm", tmp_path)
    shard = folder / "variables" / "variables.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    return folder


def _offset_past_the_end(built: Built, tmp_path: Path) -> Path:
    folder = _copy(built, "ckpt", tmp_path)
    key, offset = _bn_key(folder / "w.index", lambda spans: 10**6)
    _rewrite_entry(folder / "w.index", key, offset)
    return folder


def _overlapping_offsets(built: Built, tmp_path: Path) -> Path:
    """An offset inside the shard but on another tensor's bytes: only the layout check sees it."""
    folder = _copy(built, "sm", tmp_path)
    index = folder / "variables" / "variables.index"
    key, offset = _bn_key(index, lambda spans: min(start for start, size in spans.values() if size > 8) + 4)
    _rewrite_entry(index, key, offset)
    return folder


def _manifest_mismatch(built: Built, tmp_path: Path) -> Path:
    folder = _copy(built, "tfjs", tmp_path)
    document = json.loads((folder / "model.json").read_text())
    document["weightsManifest"][0]["weights"][0]["shape"] = [5, 3]  # one row more than the shards hold
    (folder / "model.json").write_text(json.dumps(document))
    return folder


def _missing_shard(built: Built, tmp_path: Path) -> Path:
    folder = _copy(built, "tfjs", tmp_path)
    (folder / "group1-shard2of{}.bin".format(len(list(folder.glob("*.bin"))))).unlink()
    return folder


def _cut_index(built: Built, tmp_path: Path) -> Path:
    folder = _copy(built, "ckpt", tmp_path)
    (folder / "w.index").write_bytes((folder / "w.index").read_bytes()[:-20])
    return folder


def _garbage_metadata(built: Built, tmp_path: Path) -> Path:
    folder = _copy(built, "sm", tmp_path)
    (folder / "keras_metadata.pb").write_bytes(b"\x0a\xff\xff\xff\x0f" + b"x" * 30)
    return folder


CASES = [
    ("truncated shard", _truncated_shard, "truncated shard or wrong index"),
    ("offset past the end", _offset_past_the_end, "truncated shard or wrong index"),
    ("overlapping offsets", _overlapping_offsets, "damaged bundle index"),
    ("manifest mismatch", _manifest_mismatch, "the manifest does not match its shards"),
    ("missing shard", _missing_shard, "is missing"),
    ("cut index", _cut_index, "damaged bundle index"),
    ("garbage metadata", _garbage_metadata, "damaged SavedModel metadata"),
]


@pytest.mark.parametrize("name, make, message", CASES, ids=[case[0] for case in CASES])
def test_damaged_file_gives_one_clear_line(built: Built, tmp_path: Path, name: str,
                                           make: Callable[[Built, Path], Path], message: str) -> None:
    path = make(built, tmp_path)
    with pytest.raises(ModelFileError) as caught:
        open_model_guarded(path, timeout=10)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    result = subprocess.run([sys.executable, "-m", "bntui", str(path), "--list"], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("bntui: ") and message in result.stderr


#: (folder, file in it that gets mutated)
FUZZED = [("sm", "variables/variables.index"), ("sm", "keras_metadata.pb"), ("sm_tf24", "saved_model.pb"),
          ("ckpt", "w.index"), ("tf1", "model.ckpt.meta"), ("tf1_savedmodel", "saved_model.pb"),
          ("tfjs", "model.json")]


@pytest.mark.parametrize("folder, member", FUZZED, ids=[f"{f}/{m}" for f, m in FUZZED])
def test_fuzz_new_formats(built: Built, tmp_path: Path, folder: str, member: str) -> None:
    """50 random byte flips or cuts of each file: a model or one ModelFileError line, never
    another exception (350 mutations in all). Read in this process: these readers hold no C
    library that could hang (every loop of the decoders advances through bytes it has), and a
    fork per read of a process holding TensorFlow costs 0.1 s; each read must stay quick."""
    rng = random.Random(f"{folder}/{member}")
    work = _copy(built, folder, tmp_path)
    original = (work / member).read_bytes()
    target = work if folder != "tf1" else work / "model.ckpt"
    errors = 0
    for _ in range(50):
        data = bytearray(original)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        (work / member).write_bytes(bytes(data))
        started = time.monotonic()
        try:
            open_model(target)
        except ModelFileError as err:
            assert str(err) and "\n" not in str(err)
            errors += 1
        assert time.monotonic() - started < 2.0
    assert errors > 0


def test_fuzz_decoders_raise_only_wire_errors(built: Built) -> None:
    """Random bytes into the protobuf decoder, and byte flips of a real bundle index into the
    table decoder: a result or WireError, nothing else (400 inputs each)."""
    rng = random.Random(11)
    for _ in range(400):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
        try:
            message = Message(data)
        except WireError:
            continue
        for number in range(1, 8):
            try:
                message.messages(number)
                message.packed_ints(number)
            except WireError:
                pass
    index = built.path("sm/variables/variables.index").read_bytes()
    decoded = 0
    for _ in range(400):
        data = bytearray(index)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            read_table(bytes(data))
            decoded += 1
        except WireError:
            pass
    assert decoded > 0  # most flips land in keys and values, which the table layer does not judge
