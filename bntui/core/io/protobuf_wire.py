"""A small decoder of the protobuf wire format, for the few TensorFlow messages bntui reads.

Why not the ``protobuf`` package with generated ``_pb2`` modules: TensorFlow's own modules
import all of TensorFlow (about 4 s), and vendored generated modules are tied to the major
version of the protobuf runtime they were generated for (TF pins protobuf; users' environments
carry 3.x to 7.x), so they break with the environment. The wire format itself has been frozen
since 2008 and needs about a hundred lines. We read a handful of fields of a handful of
messages (tensor bundle entries, object graphs, metadata), named by number where they are used.

Every length is checked against the bytes present, nothing is copied (sub-messages are
memoryview slices) and a message is decoded one level at a time, so a crafted file costs at
most one pass over its bytes and raises :class:`WireError`, never anything else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, FIXED64, LENGTH_DELIMITED, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5

Value = int | memoryview


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    """The varint starting at ``pos`` and the position after it (at most 10 bytes)."""
    if pos < len(data) and data[pos] < 0x80:  # most are one byte: keys, lengths, small ids
        return data[pos], pos + 1
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise WireError("message cut off inside a number")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
    raise WireError("a number longer than 10 bytes")


def iter_fields(data: bytes | memoryview) -> Iterator[tuple[int, int, Value]]:
    """(field number, wire type, value) for every field at the top level of one message."""
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    pos, end = 0, len(view)
    while pos < end:
        key, pos = read_varint(view, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            value, pos = read_varint(view, pos)
            yield number, wire_type, value
        elif wire_type == LENGTH_DELIMITED:
            length, pos = read_varint(view, pos)
            if length > end - pos:
                raise WireError(f"field {number} claims {length} bytes; {end - pos} are left")
            yield number, wire_type, view[pos : pos + length]
            pos += length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if size > end - pos:
                raise WireError(f"message cut off inside field {number}")
            yield number, wire_type, int.from_bytes(view[pos : pos + size], "little")
            pos += size
        else:
            raise WireError(f"field {number} has wire type {wire_type}, which TensorFlow never writes")


class Message:
    """One decoded level of a message: field number -> its values, in the order written."""

    __slots__ = ("_fields",)

    def __init__(self, data: bytes | memoryview) -> None:
        fields: dict[int, list[Value]] = {}
        for number, _wire_type, value in iter_fields(data):
            fields.setdefault(number, []).append(value)
        self._fields = fields

    def has(self, number: int) -> bool:
        return number in self._fields

    def _all(self, number: int, kind: type) -> list[Value]:
        values = self._fields.get(number, [])
        for value in values:
            if not isinstance(value, kind):
                raise WireError(f"field {number} has the wrong wire type")
        return values

    def varint(self, number: int, default: int = 0) -> int:
        """The last value of a scalar field (protobuf's rule for repeated scalars)."""
        values = self._all(number, int)
        return int(values[-1]) if values else default

    def signed(self, number: int, default: int = 0) -> int:
        """An int64/int32 field: two's complement of the varint."""
        value = self.varint(number, default)
        return value - (1 << 64) if value >= 1 << 63 else value

    def fixed32(self, number: int, default: int = 0) -> int:
        """A ``fixed32`` field (such as a crc32c): its 4 little-endian bytes as an unsigned int.
        The wire type is not kept: a damaged message holding it as a varint gives that number."""
        return self.varint(number, default)

    def float32(self, number: int, default: float = 0.0) -> float:
        """A ``float`` (fixed32) field."""
        values = self._all(number, int)
        return struct.unpack("<f", int(values[-1]).to_bytes(4, "little"))[0] if values else default

    def blob(self, number: int) -> bytes:
        values = self._all(number, memoryview)
        return bytes(values[-1]) if values else b""

    def text(self, number: int) -> str:
        return self.blob(number).decode("utf-8", errors="replace")

    def raw(self, number: int) -> list[memoryview]:
        """Every value of a length-delimited field, undecoded."""
        return self._all(number, memoryview)  # type: ignore[return-value]

    def message(self, number: int) -> Message:
        """The sub-message (an empty one when absent, as protobuf reads it)."""
        values = self.raw(number)
        return Message(values[-1] if values else b"")

    def messages(self, number: int) -> list[Message]:
        return [Message(value) for value in self.raw(number)]

    def packed_ints(self, number: int) -> list[int]:
        """A repeated integer field, packed or not."""
        result: list[int] = []
        for value in self._fields.get(number, []):
            if isinstance(value, int):
                result.append(value)
                continue
            pos = 0
            while pos < len(value):
                item, pos = read_varint(value, pos)
                result.append(item)
        return result

    def map_entries(self, number: int) -> dict[str, Message]:
        """A ``map<string, Message>`` field (entries with key 1 and value 2)."""
        return {entry.text(1): entry.message(2) for entry in self.messages(number)}
