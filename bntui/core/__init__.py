"""The pure core of bntui: numpy and h5py only, never Textual or TensorFlow.

Everything a user can ask of a model file (its BN layers, each channel's computation, the
diagnostics, the parsing of typed input) is answered here, so the CLI and the TUI only
present results. A test imports this package in a fresh process and checks ``sys.modules``.
"""

from bntui.core.errors import BntuiError, InputValueError, LayerNotFoundError, ModelFileError
from bntui.core.model import BNLayer, ModelInfo
from bntui.core.reader import open_model

__all__ = [
    "BNLayer",
    "BntuiError",
    "InputValueError",
    "LayerNotFoundError",
    "ModelFileError",
    "ModelInfo",
    "open_model",
]
