"""The pure core of bntui: numpy and h5py only, never Textual or TensorFlow.

Everything a user can ask of a model file (its BN layers, each channel's computation, the
diagnostics, the parsing of typed input) is answered here, so the CLI and the TUI only
present results. A test imports this package in a fresh process and checks ``sys.modules``.
"""

from typing import TYPE_CHECKING

from bntui.core.errors import BntuiError, InputValueError, LayerNotFoundError, ModelFileError
from bntui.core.model import BNLayer, ModelInfo

if TYPE_CHECKING:
    from bntui.core.reader import open_model


def __getattr__(name: str) -> object:
    """``open_model`` on first use: the TUI process never reads files itself (a forked child
    does), so it need not pay for importing h5py."""
    if name == "open_model":
        from bntui.core.reader import open_model

        return open_model
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
