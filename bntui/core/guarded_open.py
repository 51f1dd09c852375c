"""Opening a file in a forked child, so a damaged file cannot hang or crash bntui.

The HDF5 C library can loop forever or crash on crafted or damaged metadata (byte-flip
fuzzing of our samples finds such files in a few hundred tries). Code running inside the
library cannot be interrupted from Python, so the read runs in a forked copy of this
process: a fork costs about a millisecond. The parent waits with a deadline and turns a hang
or a crash into a one-line :class:`ModelFileError`.

The child can also send the model as plain data (``summary``): the CLI's ``--list`` prints
that, so its parent process never imports numpy or h5py at all. Nothing but the core's own
read and summary runs in the child.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bntui.core.errors import BntuiError, ModelFileError

if TYPE_CHECKING:
    from bntui.core.model import ModelInfo

#: Seconds the read itself may take. Reading only BN datasets of even a large model takes well
#: under one. Making the summary after the read has no deadline.
READ_TIMEOUT = 20.0

#: Written by the child as soon as the file is read, which stops the deadline.
_READ_DONE = b"R"


class PendingRead:
    """A read started now in a forked child; :meth:`result` waits for it.

    Starting early lets the read run while the caller does other slow things (the TUI
    imports Textual meanwhile): the child has its own process, so it truly runs in parallel.
    With ``summary``, :meth:`result` returns :func:`bntui.core.report.model_dict` of the model,
    made in the child: plain lists and dicts, so a caller that only prints them (``--list``)
    never imports numpy or h5py itself.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        timeout: float = READ_TIMEOUT,
        *,
        summary: bool = False,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.summary = summary
        self._deadline = time.monotonic() + timeout
        self._pid: int | None = None
        self._fd: int | None = None
        if hasattr(os, "fork") and sys.platform != "win32":
            self._fork()

    def _run(self) -> Any:
        from bntui.core.reader import open_model  # h5py and numpy are imported here, in the child

        return open_model(self.path)

    @staticmethod
    def _summarised(model: ModelInfo) -> dict[str, Any]:
        from bntui.core.report import model_dict

        return model_dict(model)

    def _fork(self) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: read, send the result, leave without running any cleanup
            os.close(read_end)
            import faulthandler

            faulthandler.disable()  # a crash here is expected on damaged files: the parent reports it
            with os.fdopen(write_end, "wb") as pipe:
                try:
                    value = self._run()
                    pipe.write(_READ_DONE)
                    pipe.flush()
                    payload = pickle.dumps(("ok", self._summarised(value) if self.summary else value))
                except BntuiError as err:
                    payload = pickle.dumps(("error", err))
                except BaseException:  # noqa: BLE001 - reported by the parent as a bug, not hidden
                    import traceback

                    payload = pickle.dumps(("bug", traceback.format_exc()))
                pipe.write(payload)
            os._exit(0)
        os.close(write_end)
        self._pid, self._fd = pid, read_end

    def result(self) -> Any:
        """The model (or its summary); a ModelFileError for a bad file, a hang or a crash."""
        if self._pid is None or self._fd is None:
            value = self._run()
            return self._summarised(value) if self.summary else value
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
                f"{_culprit(self.path)} loops on this damaged file"
            )
        _, status = os.waitpid(pid, 0)
        data = data.removeprefix(_READ_DONE)
        if not data:
            signal_number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            detail = f"signal {signal_number}" if signal_number else f"exit status {os.WEXITSTATUS(status)}"
            raise ModelFileError(f"{Path(self.path)}: {_culprit(self.path)} crashed reading this damaged file ({detail})")
        kind, value = pickle.loads(data)
        if kind == "ok":
            return value
        if kind == "error":
            raise value
        raise RuntimeError(f"bntui bug while reading {self.path}; the reading process's traceback:\n{value}")


def open_model_guarded(path: str | os.PathLike[str], timeout: float = READ_TIMEOUT) -> ModelInfo:
    """Like :func:`bntui.core.reader.open_model`, but a hang or crash of the HDF5 library
    becomes a ModelFileError."""
    return PendingRead(path, timeout).result()


def _culprit(path: str | os.PathLike[str]) -> str:
    """Who hangs or crashes: the HDF5 C library for an HDF5 file (the case the guard exists
    for), the reader otherwise."""
    try:
        with open(path, "rb") as handle:
            if handle.read(8) == b"\x89HDF\r\n\x1a\n":
                return "the HDF5 library"
    except OSError:
        pass
    return "the reader"


def _read_all(fd: int, deadline: float) -> bytes | None:
    """Everything written to ``fd`` until EOF, or None when the deadline passes before the
    child says the read is done (after that, its remaining work is waited for)."""
    chunks: list[bytes] = []
    read_done = False
    while True:
        if read_done:
            ready = [fd]
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        read_done = read_done or (not chunks and chunk.startswith(_READ_DONE))
        chunks.append(chunk)
