"""The two kinds of failure a user can cause, each carrying a one-line message.

The CLI and the TUI catch exactly these and show their message; anything else is a bug
and is allowed to surface as such.
"""


class BntuiError(Exception):
    """Base of every expected failure; ``str(err)`` is the one line shown to the user."""


class ModelFileError(BntuiError):
    """The model file cannot be read, or is not a Keras model we understand."""


class InputValueError(BntuiError):
    """Input values typed or loaded by the user do not fit the chosen layer."""


class LayerNotFoundError(BntuiError):
    """A layer name or path names no BatchNormalization layer, or names several."""
