"""Opening a file in a forked child, so a damaged file cannot hang or crash bntui.

The HDF5 C library can loop forever or crash on crafted or damaged metadata (byte-flip
fuzzing of our samples finds such files in a few hundred tries). Code running inside the
library cannot be interrupted from Python, so the read runs in a forked copy of this
process: a fork costs a few milliseconds and re-imports nothing. The parent waits with a
deadline and turns a hang or a crash into a one-line :class:`ModelFileError`.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import time
from pathlib import Path

from bntui.core.errors import BntuiError, ModelFileError
from bntui.core.model import ModelInfo
from bntui.core.reader import open_model

#: Seconds a read may take. Reading only BN datasets of even a large model takes well under one.
READ_TIMEOUT = 20.0


def open_model_guarded(path: str | os.PathLike[str], timeout: float = READ_TIMEOUT) -> ModelInfo:
    """:func:`open_model`, but a hang or crash of the HDF5 library becomes a ModelFileError."""
    if not hasattr(os, "fork") or sys.platform == "win32":
        return open_model(path)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: read, send the result, leave without running any cleanup
        os.close(read_end)
        try:
            payload = pickle.dumps(("ok", open_model(path)))
        except BntuiError as err:
            payload = pickle.dumps(("error", str(err)))
        except BaseException as err:  # noqa: BLE001 - reported by the parent as a bug, not hidden
            payload = pickle.dumps(("bug", f"{type(err).__name__}: {err}"))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    try:
        data = _read_all(read_end, timeout)
    finally:
        os.close(read_end)
    if data is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise ModelFileError(
            f"{Path(path)}: reading did not finish in {timeout:g} s; the HDF5 library loops on this damaged file"
        )
    _, status = os.waitpid(pid, 0)
    if not data:
        signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        detail = f"signal {signal_number}" if signal_number else f"exit status {os.WEXITSTATUS(status)}"
        raise ModelFileError(f"{Path(path)}: the HDF5 library crashed reading this damaged file ({detail})")
    kind, value = pickle.loads(data)
    if kind == "ok":
        return value
    if kind == "error":
        raise ModelFileError(value)
    raise RuntimeError(f"bntui bug while reading {path}: {value}")


def _read_all(fd: int, timeout: float) -> bytes | None:
    """Everything written to ``fd`` until EOF, or None when the deadline passes first."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
