"""Read-only, bounded access to one member of a ``.keras`` zip.

h5py can read from any seekable file object. For a member stored without compression (how
Keras writes ``model.weights.h5``) we hand h5py a window onto the zip file itself, so only
the BN datasets are ever read, however large the model. A compressed member is inflated
into memory, but only after checking the size it claims, so a zip bomb is refused.
"""

from __future__ import annotations

import io
import struct
import zipfile
from typing import BinaryIO

from bntui.core.errors import ModelFileError

#: Largest compressed member we inflate into memory, and largest config we parse.
MAX_INFLATED_BYTES = 2 * 1024**3
MAX_CONFIG_BYTES = 64 * 1024**2

_LOCAL_HEADER = struct.Struct("<4s22xHH")


class MemberWindow(io.RawIOBase):
    """A seekable read-only view of ``length`` bytes of ``raw`` starting at ``start``."""

    def __init__(self, raw: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self._raw, self._start, self._length, self._pos = raw, start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = max(0, min(len(buffer), self._length - self._pos))
        if count == 0:
            return 0
        self._raw.seek(self._start + self._pos)
        data = self._raw.read(count)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Inflate a member, refusing one that claims, or turns out, to be over ``limit`` bytes."""
    if info.file_size > limit:
        raise ModelFileError(f"{info.filename} claims {info.file_size} bytes; refusing to read more than {limit}")
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ModelFileError(f"{info.filename} is larger than it claims; refusing to read it")
    return data


def read_small_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A small member such as ``config.json``, refusing one that claims an absurd size."""
    return _read_bounded(archive, archive.getinfo(name), MAX_CONFIG_BYTES)


def open_member(archive: zipfile.ZipFile, raw: BinaryIO, name: str) -> BinaryIO:
    """A seekable file object over one member, without inflating a stored one."""
    info = archive.getinfo(name)
    if info.compress_type == zipfile.ZIP_STORED:
        raw.seek(info.header_offset)
        header = raw.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size:
            raise ModelFileError(f"{name} is cut off inside the zip")
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        if signature != b"PK\x03\x04":
            raise ModelFileError(f"the zip entry for {name} is damaged")
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        return io.BufferedReader(MemberWindow(raw, start, info.file_size), buffer_size=1 << 16)
    return io.BytesIO(_read_bounded(archive, info, MAX_INFLATED_BYTES))
