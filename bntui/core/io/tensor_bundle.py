"""TensorFlow's tensor bundle: the ``PREFIX.index`` table plus ``PREFIX.data-NNNNN-of-MMMMM`` shards.

Every TF2 checkpoint and every SavedModel's ``variables/`` is one. The index is a LevelDB
table (sorted keys, prefix-compressed, in blocks listed by an index block and a 48-byte
footer); under the empty key is a ``BundleHeaderProto`` (number of shards, byte order), under
every other key a ``BundleEntryProto`` saying where a tensor's bytes are: shard, offset, size,
dtype, shape and a crc32c of those bytes. We read the whole index (it is small: entries, not
tensors), and then only the tensors asked for, each with one seek and one read of exactly its
size.

Checksums are verified as TensorFlow's own reader verifies them: every index block against
the crc32c in its 5-byte trailer, every tensor read against its entry's crc32c (for a string
tensor, over the lengths as 4-byte integers, the length checksum and the strings, as
``tensor_bundle.cc`` computes it), so a flipped bit gives an error naming the file and the
tensor instead of wrong numbers. Both are stored *masked* (``crc32c.h``: rotated right by 15
bits plus ``0xa282ead8``). The crc32c itself comes from ``google-crc32c`` (a C extension: a
BN tensor or a whole index costs microseconds). Sizes and offsets are checked too, against the
dtype, the shape, the shard's real length and each other (no two tensors may claim the same
bytes), so a wrong index is named as such rather than as damaged tensor bytes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import numpy as np

from bntui.core.errors import ModelFileError
from bntui.core.io.protobuf_wire import Message, WireError, read_varint

with warnings.catch_warnings():
    # Where no wheel has the C extension, google-crc32c warns that it falls back to pure
    # Python: slower (about 0.16 s more to list ResNet50), still right, not the user's concern.
    warnings.simplefilter("ignore", RuntimeWarning)
    import google_crc32c

if TYPE_CHECKING:
    from typing_extensions import Self

#: Largest index file read into memory: an index holds one short entry per tensor.
MAX_INDEX_BYTES = 64 * 1024**2
#: Largest tensor read (BN vectors are a few kB; the object graph of a large model a few MB).
MAX_TENSOR_BYTES = 256 * 1024**2

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # compression type byte + masked crc32c of the block and that byte
_CRC_MASK_DELTA = 0xA282EAD8

#: TensorFlow DataType enum -> numpy dtype, for the dtypes a weight can have. bfloat16 (14)
#: is read as its raw 16 bits and widened to float32, which is exact.
_DTYPES: dict[int, str] = {1: "f4", 2: "f8", 3: "i4", 4: "u1", 5: "i2", 6: "i1", 9: "i8", 14: "u2", 17: "u2",
                           19: "f2", 22: "u4", 23: "u8"}
DT_STRING = 7
DT_BFLOAT16 = 14
DTYPE_NAMES: dict[int, str] = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
                               9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 19: "float16", 22: "uint32",
                               23: "uint64"}


class BundleError(ModelFileError):
    """A damaged or unsupported tensor bundle."""


def masked_crc32c(data: bytes) -> int:
    """The crc32c of ``data`` as TensorFlow and LevelDB store it: rotated right by 15 bits plus
    a constant (``crc32c::Mask``), so that a checksum of bytes holding checksums stays strong."""
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor's bytes are (BundleEntryProto)."""

    key: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    sliced: bool
    #: the masked crc32c TensorFlow wrote for the tensor's bytes (field 6, fixed32)
    crc32c: int

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, f"dtype {self.dtype}")


def _handle(data: memoryview, pos: int) -> tuple[int, int, int]:
    offset, pos = read_varint(data, pos)
    size, pos = read_varint(data, pos)
    return offset, size, pos


def _block(data: memoryview, offset: int, size: int, what: str, verify: bool) -> memoryview:
    if offset + size + _BLOCK_TRAILER_SIZE > len(data) or size < 4:
        raise WireError(f"{what} points outside the index file (offset {offset}, size {size})")
    if verify:
        stored = int.from_bytes(data[offset + size + 1 : offset + size + _BLOCK_TRAILER_SIZE], "little")
        if masked_crc32c(bytes(data[offset : offset + size + 1])) != stored:
            raise WireError(f"{what} at byte {offset} does not match its checksum")
    if data[offset + size] != 0:
        raise WireError(f"{what} is compressed (type {data[offset + size]}); TensorFlow writes bundles uncompressed")
    return data[offset : offset + size]


def _block_entries(block: memoryview) -> list[tuple[bytes, memoryview]]:
    """(key, value) pairs of one table block, undoing LevelDB's prefix compression."""
    restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 - 4 * restarts
    if restarts < 1 or end < 0:
        raise WireError("block restart array is damaged")
    entries: list[tuple[bytes, memoryview]] = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_length, pos = read_varint(block, pos)
        if shared > len(key) or pos + unshared + value_length > end:
            raise WireError("block entry runs past its block")
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    return entries


def read_table(data: bytes, *, verify: bool = True) -> dict[str, memoryview]:
    """Every key -> value of a LevelDB-format table held in ``data``, each block checked
    against its trailer's crc32c (``verify=False`` skips that, to test the decoding alone)."""
    view = memoryview(data)
    if len(view) < _FOOTER_SIZE or int.from_bytes(view[-8:], "little") != _TABLE_MAGIC:
        raise WireError("not a TensorFlow bundle index: no table footer")
    footer = view[-_FOOTER_SIZE:]
    _meta_offset, _meta_size, pos = _handle(footer, 0)
    index_offset, index_size, _ = _handle(footer, pos)
    table: dict[str, memoryview] = {}
    for _separator, handle in _block_entries(_block(view, index_offset, index_size, "the index block", verify)):
        offset, size, _ = _handle(handle, 0)
        for key, value in _block_entries(_block(view, offset, size, "a data block", verify)):
            table[key.decode("utf-8", errors="replace")] = value
    return table


def shard_path(prefix: Path, shard: int, shards: int) -> Path:
    return prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{shards:05d}")


class TensorBundle:
    """An open bundle: its entries, and the tensors read on demand. Use as a context manager."""

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        self.prefix = Path(prefix)
        index = self.prefix.with_name(self.prefix.name + ".index")
        try:
            size = index.stat().st_size
            if size > MAX_INDEX_BYTES:
                raise BundleError(f"{index}: an index of {size} bytes; refusing more than {MAX_INDEX_BYTES}")
            data = index.read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{index}: no such file") from None
        except OSError as err:
            raise BundleError(f"{index}: cannot read ({err.strerror or err})") from None
        try:
            self._table = read_table(data)
            header = Message(self._table.pop("", b""))
        except WireError as err:
            raise BundleError(f"{index}: damaged bundle index ({err})") from None
        self.shards = header.varint(1, 1)
        self.big_endian = header.varint(2) == 1
        if not 1 <= self.shards <= 100_000:
            raise BundleError(f"{index}: the bundle header claims {self.shards} shards")
        self._files: dict[int, BinaryIO] = {}
        self._layout_checked = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def __iter__(self) -> Iterator[str]:
        """The tensor keys, in the index's sorted order."""
        return iter(self._table)

    def __contains__(self, key: str) -> bool:
        return key in self._table

    def entry(self, key: str) -> BundleEntry:
        raw = self._table.get(key)
        if raw is None:
            raise BundleError(f"{self.prefix}: the bundle has no tensor {key!r}")
        try:
            proto = Message(raw)
            dims = [dim.signed(1) for dim in proto.message(2).messages(2)]
            entry = BundleEntry(key=key, dtype=proto.varint(1), shape=tuple(dims), shard_id=proto.varint(3),
                                offset=proto.signed(4), size=proto.signed(5), sliced=proto.has(7),
                                crc32c=proto.fixed32(6))
        except WireError as err:
            raise BundleError(f"{self.prefix}: damaged entry for {key!r} ({err})") from None
        if entry.sliced:
            raise BundleError(f"{self.prefix}: {key!r} is a partitioned variable, which bntui does not read")
        if any(dim < 0 for dim in entry.shape) or entry.offset < 0 or entry.size < 0:
            raise BundleError(f"{self.prefix}: damaged entry for {key!r} (negative size, offset or dimension)")
        if entry.shard_id >= self.shards:
            raise BundleError(f"{self.prefix}: {key!r} is in shard {entry.shard_id}; the bundle has {self.shards}")
        return entry

    def _check_layout(self) -> None:
        """No two tensors may claim the same bytes of a shard: TensorFlow writes them one after
        another. A wrong offset would also fail the tensor's checksum, but that would blame the
        shard; this names the index (a few ms for the 321 entries of ResNet50's)."""
        spans: list[tuple[int, int, int, str]] = []
        for key, raw in self._table.items():
            try:
                proto = Message(raw)
            except WireError as err:
                raise BundleError(f"{self.prefix}: damaged entry for {key!r} ({err})") from None
            if proto.signed(5) > 0 and not proto.has(7):
                spans.append((proto.varint(3), proto.signed(4), proto.signed(5), key))
        spans.sort()
        for (shard, start, size, key), (next_shard, next_start, _, next_key) in pairwise(spans):
            if shard == next_shard and start + size > next_start:
                raise BundleError(
                    f"{self.prefix}.index: damaged bundle index: {key!r} and {next_key!r} overlap in shard {shard} "
                    "(wrong offsets)"
                )
        self._layout_checked = True

    def _verify(self, entry: BundleEntry, checksummed: bytes) -> None:
        if masked_crc32c(checksummed) != entry.crc32c:
            raise BundleError(
                f"{shard_path(self.prefix, entry.shard_id, self.shards)}: the bytes of {entry.key!r} "
                "do not match their checksum (the file is damaged)"
            )

    def _read_bytes(self, entry: BundleEntry) -> bytes:
        """The tensor's bytes as stored; a numeric tensor's are verified against its checksum
        here (a string tensor's checksum covers its lengths decoded, so :meth:`strings` does it)."""
        if not self._layout_checked:
            self._check_layout()
        if entry.size > MAX_TENSOR_BYTES:
            raise BundleError(f"{self.prefix}: {entry.key!r} claims {entry.size} bytes; refusing more than {MAX_TENSOR_BYTES}")
        path = shard_path(self.prefix, entry.shard_id, self.shards)
        handle = self._files.get(entry.shard_id)
        try:
            if handle is None:
                handle = self._files[entry.shard_id] = open(path, "rb")  # noqa: SIM115 - closed by close()
            length = os.fstat(handle.fileno()).st_size
            if entry.offset + entry.size > length:
                raise BundleError(
                    f"{path}: {entry.key!r} is said to be at bytes {entry.offset}-{entry.offset + entry.size}, "
                    f"but the shard has {length} bytes (truncated shard or wrong index)"
                )
            handle.seek(entry.offset)
            data = handle.read(entry.size)
        except FileNotFoundError:
            raise BundleError(f"{path}: missing data shard") from None
        except OSError as err:
            raise BundleError(f"{path}: cannot read ({err.strerror or err})") from None
        if entry.dtype != DT_STRING:
            self._verify(entry, data)
        return data

    def tensor(self, key: str) -> np.ndarray:
        """One numeric tensor, in its stored dtype (bfloat16 widened exactly to float32)."""
        entry = self.entry(key)
        code = _DTYPES.get(entry.dtype)
        if code is None:
            raise BundleError(f"{self.prefix}: {key!r} holds {entry.dtype_name}, not numbers")
        dtype = np.dtype(("<" if not self.big_endian else ">") + code)
        count = math.prod(entry.shape)
        if count * dtype.itemsize != entry.size:
            raise BundleError(
                f"{self.prefix}: {key!r} has shape {list(entry.shape)} of {entry.dtype_name} "
                f"({count * dtype.itemsize} bytes) but its entry says {entry.size} bytes"
            )
        array = np.frombuffer(self._read_bytes(entry), dtype=dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))
        if entry.dtype == DT_BFLOAT16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def strings(self, key: str) -> list[bytes]:
        """A string tensor: varint lengths, a 4-byte checksum of them, then the bytes. Its
        crc32c covers each length as a 4-byte integer in the bundle's byte order (8 bytes above
        4 GiB), then the length checksum and the strings as stored."""
        entry = self.entry(key)
        if entry.dtype != DT_STRING:
            raise BundleError(f"{self.prefix}: {key!r} holds {entry.dtype_name}, not strings")
        count = math.prod(entry.shape)
        data = memoryview(self._read_bytes(entry))
        if count > len(data):
            raise BundleError(f"{self.prefix}: string tensor {key!r} claims {count} strings in {len(data)} bytes")
        lengths: list[int] = []
        pos = 0
        try:
            for _ in range(count):
                length, pos = read_varint(data, pos)
                lengths.append(length)
        except WireError as err:
            raise BundleError(f"{self.prefix}: damaged string tensor {key!r} ({err})") from None
        order: Literal["big", "little"] = "big" if self.big_endian else "little"
        lengths_as_stored = b"".join(length.to_bytes(4 if length <= 0xFFFFFFFF else 8, order) for length in lengths)
        self._verify(entry, lengths_as_stored + bytes(data[pos:]))
        pos += 4
        if pos + sum(lengths) != len(data):
            raise BundleError(f"{self.prefix}: string tensor {key!r} does not add up to its {entry.size} bytes")
        values: list[bytes] = []
        for length in lengths:
            values.append(bytes(data[pos : pos + length]))
            pos += length
        return values
