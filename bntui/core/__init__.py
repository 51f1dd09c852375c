"""The pure core of bntui: numpy and h5py only, never Textual or TensorFlow.

Everything a user can ask of a model file (its BN layers, each channel's computation, the
diagnostics, the parsing of typed input) is answered here, so the CLI and the TUI only
present results. A test imports this package in a fresh process and checks ``sys.modules``.
"""

from typing import TYPE_CHECKING

from bntui.core.errors import BntuiError, InputValueError, LayerNotFoundError, ModelFileError

if TYPE_CHECKING:
    from bntui.core.model import BNLayer, ModelInfo
    from bntui.core.reader import open_model

_LAZY = {"BNLayer": "bntui.core.model", "ModelInfo": "bntui.core.model", "open_model": "bntui.core.reader"}


def __getattr__(name: str) -> object:
    """Import numpy and h5py only when first needed: the CLI starts reading a file in a
    forked child before it imports numpy itself, and the TUI process never needs h5py."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bntui.core' has no attribute {name!r}")

__all__ = [
    "BNLayer",
    "BntuiError",
    "InputValueError",
    "LayerNotFoundError",
    "ModelFileError",
    "ModelInfo",
    "open_model",
]
