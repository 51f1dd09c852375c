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

from typing import TYPE_CHECKING

from bntui.core.errors import BntuiError, ModelFileError

if TYPE_CHECKING:
    from bntui.core.model import ModelInfo

#: Seconds a read may take. Reading only BN datasets of even a large model takes well under one.
READ_TIMEOUT = 20.0


class PendingRead:
    """A read started now in a forked child; :meth:`result` waits for it.

    Starting early lets the read run while the caller does other slow things (the TUI
    imports Textual meanwhile): the child has its own process, so it truly runs in parallel.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = READ_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._pid: int | None = None
        self._fd: int | None = None
        if hasattr(os, "fork") and sys.platform != "win32":
            self._fork()

    def _fork(self) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: read, send the result, leave without running any cleanup
            os.close(read_end)
            try:
                from bntui.core.reader import open_model  # h5py is imported here, in the child

                payload = pickle.dumps(("ok", open_model(self.path)))
            except BntuiError as err:
                payload = pickle.dumps(("error", str(err)))
            except BaseException as err:  # noqa: BLE001 - reported by the parent as a bug, not hidden
                payload = pickle.dumps(("bug", f"{type(err).__name__}: {err}"))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            os._exit(0)
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    def result(self) -> ModelInfo:  # noqa: F821 - the name exists for type checkers only
        """The model, or a ModelFileError for a bad file, a hang or a crash of the library."""
        if self._pid is None or self._fd is None:
            from bntui.core.reader import open_model

            return open_model(self.path)
        pid, fd = self._pid, self._fd
        self._pid = self._fd = None
        try:
            data = _read_all(fd, self._deadline)
        finally:
            os.close(fd)
        if data is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise ModelFileError(
                f"{Path(self.path)}: reading did not finish in {self.timeout:g} s; "
                "the HDF5 library loops on this damaged file"
            )
        _, status = os.waitpid(pid, 0)
        if not data:
            signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            detail = f"signal {signal_number}" if signal_number else f"exit status {os.WEXITSTATUS(status)}"
            raise ModelFileError(f"{Path(self.path)}: the HDF5 library crashed reading this damaged file ({detail})")
        kind, value = pickle.loads(data)
        if kind == "ok":
            return value
        if kind == "error":
            raise ModelFileError(value)
        raise RuntimeError(f"bntui bug while reading {self.path}: {value}")


def open_model_guarded(path: str | os.PathLike[str], timeout: float = READ_TIMEOUT) -> ModelInfo:
    """Like :func:`bntui.core.reader.open_model`, but a hang or crash of the HDF5 library
    becomes a ModelFileError."""
    return PendingRead(path, timeout).result()


def _read_all(fd: int, deadline: float) -> bytes | None:
    """Everything written to ``fd`` until EOF, or None when the deadline passes first."""
    chunks: list[bytes] = []
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
