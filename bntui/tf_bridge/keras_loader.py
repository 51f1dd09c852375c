"""Importing Keras (and with it TensorFlow) quietly, and the errors of the TensorFlow side."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bntui.core.errors import BntuiError


class CaptureUnavailable(BntuiError):
    """The model cannot be run safely (or at all) by Keras, so its real input is unknown."""


class TensorFlowUnavailable(BntuiError):
    """TensorFlow or Keras 3 is not installed (or fails to import)."""


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while TensorFlow starts: its C++ start-up log lines ignore
    TF_CPP_MIN_LOG_LEVEL and would otherwise land in the middle of the TUI or of the CLI's
    one-line error messages."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def silence_stderr() -> None:
    """Point this process's fd 2 at the null device for good (the TUI's TensorFlow process)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def import_keras():  # type: ignore[no-untyped-def]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if "keras" in sys.modules:
            import keras
        else:
            with _quiet_stderr():
                import keras
                import tensorflow  # noqa: F401 - its start-up logging happens here, silenced
    except Exception as err:  # noqa: BLE001 - a broken TF install raises anything
        raise TensorFlowUnavailable(
            f"TensorFlow/Keras cannot be imported ({type(err).__name__}: {str(err)[:120]}); "
            "install it with: pip install tensorflow-cpu"
        ) from None
    return keras
