"""Damaged SavedModels, TF.js models and checkpoints: one clear line, no traceback, no hang;
fuzz tests of the hand-written decoders (protobuf wire format, LevelDB table, bundle), and of
the data shards (a damaged tensor is an error, never different numbers)."""

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

import google_crc32c
import pytest
from conftest import ROOT
from formats_fixtures import Built, build, bundle_entries, flip_byte

from bntui.core.errors import ModelFileError
from bntui.core.guarded_open import open_model_guarded
from bntui.core.io.protobuf_wire import Message, WireError, read_varint
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


def _trailer(block: bytes) -> bytes:
    """A block's 5-byte trailer: no compression, then the masked crc32c of the block and that
    byte, masked as ``crc32c::Mask`` in tsl/lib/hash/crc32c.h (written out here, not taken from
    bntui; TensorFlow reading these tables is the check, below)."""
    crc = google_crc32c.value(block + b"\x00")
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    return b"\x00" + ((rotated + 0xA282EAD8) % 2**32).to_bytes(4, "little")


def write_table(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB table as TensorFlow writes bundle indexes: one data block with every key in
    full (a restart point each), an empty meta-index block, an index block, the 48-byte footer;
    each block with its checksummed trailer."""
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
    footer = _varint(meta_offset) + _varint(len(meta)) + _varint(index_offset) + _varint(len(index))
    footer = footer.ljust(40, b"\x00") + (0xDB4775248B80FB57).to_bytes(8, "little")
    return data + _trailer(data) + meta + _trailer(meta) + index + _trailer(index) + footer


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


def _flipped_bn_tensor_byte(built: Built, tmp_path: Path) -> Path:
    """One byte of a BN tensor changed in the shard: the index is intact, only the checksum sees it."""
    folder = _copy(built, "ckpt", tmp_path)
    entries = bundle_entries(folder / "w")
    key = next(name for name in entries if name.endswith("moving_mean/.ATTRIBUTES/VARIABLE_VALUE"))
    flip_byte(folder / "w.data-00000-of-00001", entries[key].offset + 5)
    return folder


def _flipped_index_byte(built: Built, tmp_path: Path) -> Path:
    """One byte of a key in the index's data block: the block no longer matches its trailer."""
    folder = _copy(built, "sm", tmp_path)
    flip_byte(folder / "variables" / "variables.index", 10)
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
    ("flipped byte in a BN tensor", _flipped_bn_tensor_byte, "/.ATTRIBUTES/VARIABLE_VALUE' do not match their checksum"),
    ("flipped byte in an index block", _flipped_index_byte, "damaged bundle index (a data block at byte 0 does not match"),
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


def _layer_arrays(target: Path) -> dict[str, bytes]:
    """Every BN array of a model, as ``path/role`` -> dtype, shape and bytes."""
    arrays = {}
    for layer in open_model(target).layers:
        for role in ("gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev"):
            array = getattr(layer, role)
            if array is not None:
                arrays[f"{layer.path}/{role}"] = str(array.dtype).encode() + bytes(str(array.shape), "ascii") + array.tobytes()
    return arrays


SHARDS = [("sm", "variables/variables"), ("ckpt", "w")]


@pytest.mark.parametrize("folder, prefix", SHARDS, ids=[f for f, _ in SHARDS])
def test_fuzz_shards_never_give_other_numbers(built: Built, tmp_path: Path, folder: str, prefix: str) -> None:
    """50 changes of 1 to 4 bytes inside one tensor of a data shard, the tensor drawn at random:
    when bntui reads it (a BN weight, known by its bytes being one Keras set, or the object
    graph) the result is one ModelFileError line; when it does not (the Dense kernel and bias)
    every BN array is bit for bit the undamaged one. Before checksums were verified, a changed
    BN weight was read as other numbers, silently."""
    rng = random.Random(f"shard {folder}")
    work = _copy(built, folder, tmp_path)
    shard = work / (prefix + ".data-00000-of-00001")
    original = shard.read_bytes()
    reference = _layer_arrays(work)
    bn_bytes = {array.tobytes() for roles in built.expected.values() for array in roles.values()}
    spans = {name: (entry.offset, entry.size) for name, entry in bundle_entries(work / prefix).items()}
    read = {name for name, (start, size) in spans.items()
            if name == "_CHECKPOINTABLE_OBJECT_GRAPH" or original[start : start + size] in bn_bytes}
    assert len(read) == 1 + sum(len(roles) for roles in built.expected.values()) and len(read) < len(spans)
    outcomes = {"error": 0, "same numbers": 0}
    for _ in range(50):
        name = rng.choice(sorted(spans))
        start, size = spans[name]
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[start + rng.randrange(size)] ^= rng.randrange(1, 256)
        shard.write_bytes(bytes(data))
        try:
            arrays = _layer_arrays(work)
        except ModelFileError as err:
            assert name in read, f"{name}: {err}"
            assert str(err) == f"{shard}: the bytes of {name!r} do not match their checksum (the file is damaged)"
            outcomes["error"] += 1
            continue
        assert name not in read and arrays == reference, name
        outcomes["same numbers"] += 1
    assert outcomes["error"] > 0 and outcomes["same numbers"] > 0, outcomes


@pytest.mark.parametrize("folder, prefix", SHARDS, ids=[f for f, _ in SHARDS])
def test_fuzz_index_entries_under_right_checksums(built: Built, tmp_path: Path, folder: str, prefix: str) -> None:
    """What a checksum cannot catch: an index whose entries are wrong but whose blocks are
    checksummed again (a faulty writer). 50 entries with 1 to 3 bytes changed, the table
    rewritten with right trailers: a model or one ModelFileError line, never another exception."""
    rng = random.Random(f"entries {folder}")
    work = _copy(built, folder, tmp_path)
    index = work / (prefix + ".index")
    entries = [(name.encode(), bytes(value)) for name, value in read_table(index.read_bytes()).items()]
    errors = 0
    for _ in range(50):
        mutated = list(entries)
        chosen = rng.randrange(1, len(mutated))  # 0 is the header, under the empty key
        value = bytearray(mutated[chosen][1])
        for _ in range(rng.randint(1, 3)):
            value[rng.randrange(len(value))] ^= rng.randrange(1, 256)
        mutated[chosen] = (mutated[chosen][0], bytes(value))
        index.write_bytes(write_table(mutated))
        try:
            open_model(work)
        except ModelFileError as err:
            assert str(err) and "\n" not in str(err)
            errors += 1
    assert errors > 0


def test_write_table_writes_what_tensorflow_reads(built: Built, tmp_path: Path) -> None:
    """The test's own table writer (its trailers masked independently of bntui) gives an index
    TensorFlow reads every tensor through, and one with a wrong trailer TensorFlow refuses:
    so the cases above that rewrite an index test bntui against TensorFlow's checksums."""
    import tensorflow as tf

    folder = _copy(built, "ckpt", tmp_path)
    index = folder / "w.index"
    rewritten = write_table([(name.encode(), bytes(value)) for name, value in read_table(index.read_bytes()).items()])
    index.write_bytes(rewritten)
    reader = tf.train.load_checkpoint(str(folder / "w"))
    assert all(reader.get_tensor(key) is not None for key in reader.get_variable_to_dtype_map())
    assert read_table(rewritten).keys() == read_table(built.path("ckpt/w.index").read_bytes()).keys()
    flip_byte(index, len(read_table(rewritten)[""]) + 30)  # inside the data block, past the header entry
    with pytest.raises(tf.errors.OpError, match="block checksum mismatch"):
        tf.train.load_checkpoint(str(folder / "w"))
    with pytest.raises(WireError, match="a data block at byte 0 does not match its checksum"):
        read_table(index.read_bytes())


def _footer_handles(index: bytes) -> tuple[int, int, int, int]:
    """(meta-index offset, size, index block offset, size) from a table's footer."""
    footer = memoryview(index[-48:])
    values, pos = [], 0
    for _ in range(4):
        value, pos = read_varint(footer, pos)
        values.append(value)
    return values[0], values[1], values[2], values[3]


def test_fuzz_decoders_raise_only_wire_errors(built: Built) -> None:
    """Random bytes into the protobuf decoder, and byte flips of a real bundle index into the
    table decoder with its checksums off (as a crafted file would carry right ones): a result or
    WireError, nothing else (400 inputs each). With checksums on, every flip inside the data
    blocks or the index block is refused (the meta-index block, empty, and the footer's
    padding are read by neither TensorFlow nor bntui)."""
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
    meta_offset, _meta_size, index_offset, index_size = _footer_handles(index)
    checked = [*range(meta_offset), *range(index_offset, index_offset + index_size + 5)]
    decoded = refused = 0
    for _ in range(400):
        data, flipped = bytearray(index), bytearray(index)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
            flipped[rng.choice(checked)] ^= rng.randrange(1, 256)
        try:
            read_table(bytes(data), verify=False)
            decoded += 1
        except WireError:
            pass
        with pytest.raises(WireError, match="does not match its checksum"):
            read_table(bytes(flipped))
        refused += 1
    assert decoded > 0  # most flips land in keys and values, which the table layer does not judge
    assert refused == 400
