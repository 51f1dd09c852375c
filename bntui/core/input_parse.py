"""Turning what a user types (or a ``.npy`` file) into an input tensor for one BN layer.

Accepted text: numbers separated by commas or spaces, optionally nested in brackets
(``1, 5``; ``1 5``; ``[[1], [5]]``; ``-2.5e-3``; ``nan``; ``inf``). Nothing is ever
``eval``-ed: a small tokenizer reads numbers and brackets and nothing else.

How values become a tensor for a layer with C channels on axis ``a``:
- one number: the same value for every channel, shape ``(1, C)``;
- a flat list of C numbers (C > 1): one value per channel, shape ``(1, C)``;
- a flat list of n numbers when C == 1: n samples of the one channel, shape ``(n, 1)``;
- a nested list: used as the tensor itself, and its axis ``a`` must have C entries.
When ``a`` is a non-negative axis beyond the tensor's rank (tf.keras stores ``axis=[2]``
for a ``(batch, 2, 1)`` input), leading axes of size 1 are added until it fits.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from bntui.core.errors import InputValueError

#: Inputs larger than this many elements are refused, so a typo cannot exhaust memory.
MAX_ELEMENTS = 50_000_000
#: Typed text longer than this is refused before tokenizing.
MAX_TEXT = 1_000_000

_TOKEN = re.compile(
    r"\s*(?:(?P<open>\[)|(?P<close>\])|(?P<comma>,)|"
    r"(?P<number>[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?))|(?P<bad>\S+?(?=[\s,\[\]]|$)))",
    re.IGNORECASE,
)


def parse_values(text: str) -> np.ndarray:
    """Parse typed text into a float64 array (any rank). Raises :class:`InputValueError`."""
    if len(text) > MAX_TEXT:
        raise InputValueError(f"input is {len(text)} characters; at most {MAX_TEXT} can be typed (use a .npy file)")
    tokens = _tokenize(text)
    if not tokens:
        raise InputValueError("input is empty: type numbers such as 1, 5")
    _check_commas(tokens)
    if tokens[0] != "[":
        if "[" in tokens or "]" in tokens:
            raise InputValueError("brackets must enclose the whole input, as in [[1], [5]]")
        numbers = [token for token in tokens if token != ","]
        if not numbers:
            raise InputValueError("input is empty: type numbers such as 1, 5")
        return np.array([float(token) for token in numbers], dtype=np.float64)
    value, position = _parse_list(tokens, 0, depth=0)
    if position != len(tokens):
        raise InputValueError("unexpected text after the closing bracket")
    try:
        array = np.array(value, dtype=np.float64)
    except ValueError:
        raise InputValueError("nested lists have different lengths: the input must be a rectangular tensor") from None
    if array.size == 0:
        raise InputValueError("input is empty: type numbers such as 1, 5")
    return array


def _check_commas(tokens: list[str]) -> None:
    """Refuse a comma with no value before or after it (``1,,2``, ``,1``, ``1,``, ``[1,]``):
    silently dropping it would hide a value the user meant to type."""
    for index, token in enumerate(tokens):
        if token != ",":
            continue
        before = tokens[index - 1] if index > 0 else None
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        if before in (None, ",", "[") or after in (None, ",", "]"):
            raise InputValueError("a comma has no value on one side (as in 1,,2): type every number, such as 1, 5")


def value_notes(text: str) -> list[str]:
    """What reading the typed numbers changed, to be said rather than hidden: a number beyond
    float64 becomes inf, one below its smallest denormal becomes 0, and one beyond float32
    becomes inf in TensorFlow's float32 computation."""
    notes: list[str] = []
    float32_max = float(np.finfo(np.float32).max)
    for match in _TOKEN.finditer(text):
        token = match.group("number")
        if token is None or "n" in token.lower():  # nan, inf, infinity are meant as typed
            continue
        value = float(token)
        if math.isinf(value):
            notes.append(f"{token} is beyond float64 and was read as {'-' if value < 0 else ''}inf")
        elif value == 0 and any(digit in "123456789" for digit in token.lower().split("e")[0]):
            notes.append(f"{token} is below float64's smallest number and was read as 0")
        elif abs(value) > float32_max:
            notes.append(f"{token} is beyond float32: TensorFlow's float32 input holds inf there")
    return notes


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        if match.group("bad") is not None:
            raise InputValueError(f"{match.group('bad')[:40]!r} is not a number: type numbers such as 1, 5 or [[1], [5]]")
        token = match.group("open") or match.group("close") or match.group("comma") or match.group("number")
        if token is not None:
            tokens.append(token)
    return tokens


def _parse_list(tokens: list[str], position: int, depth: int) -> tuple[list[object], int]:
    """Parse ``[ item, item ... ]`` starting at ``tokens[position] == "["``."""
    if depth > 32:
        raise InputValueError("input is nested more than 32 levels deep")
    items: list[object] = []
    position += 1
    while position < len(tokens):
        token = tokens[position]
        if token == "]":
            return items, position + 1
        if token == ",":
            position += 1
        elif token == "[":
            item, position = _parse_list(tokens, position, depth + 1)
            items.append(item)
        else:
            items.append(float(token))
            position += 1
    raise InputValueError("a bracket is not closed")


def load_npy(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` file as float64, never unpickling objects stored in it."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _order, _dtype = read_header(handle)
            size = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if size > MAX_ELEMENTS:
                raise InputValueError(f"{path}: {size} values; at most {MAX_ELEMENTS} are accepted")
        array = np.load(path, allow_pickle=False)
    except InputValueError:
        raise
    except FileNotFoundError:
        raise InputValueError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError) as err:
        raise InputValueError(f"{path}: not a readable .npy file ({str(err).splitlines()[0] if str(err) else err})") from None
    if array.dtype.kind not in "fiub":
        raise InputValueError(f"{path}: holds {array.dtype} values, not numbers")
    if array.size == 0:
        raise InputValueError(f"{path}: holds no values (shape {tuple(array.shape)})")
    return np.asarray(array, dtype=np.float64)


def shape_for_layer(values: np.ndarray, channels: int, axis: int, *, typed_flat: bool) -> np.ndarray:
    """Arrange parsed values as a tensor for a layer with ``channels`` channels on ``axis``."""
    if values.size > MAX_ELEMENTS:
        raise InputValueError(f"input has {values.size} values; at most {MAX_ELEMENTS} are accepted")
    if values.size == 0:
        raise InputValueError("input is empty: type numbers such as 1, 5")
    if typed_flat or values.ndim <= 1:
        flat = values.ravel()
        if flat.size == 1:
            table = np.full((1, channels), flat[0])
        elif channels == 1:
            table = flat.reshape(-1, 1)
        elif flat.size == channels:
            table = flat.reshape(1, channels)
        else:
            raise InputValueError(
                f"got {flat.size} values; expected 1 value, {channels} values (one per channel) "
                f"or a tensor with {channels} entries on axis {axis}"
            )
        return _place(table, axis)
    tensor = _pad_rank(values, axis)
    position = resolve_axis(axis, tensor.ndim)
    if tensor.shape[position] != channels:
        raise InputValueError(
            f"input shape {tuple(values.shape)} has {tensor.shape[position]} entries on axis {axis}; "
            f"the layer has {channels} channel{'s' if channels != 1 else ''}"
        )
    return tensor


def _place(table: np.ndarray, axis: int) -> np.ndarray:
    """Lay a (samples, channels) table out with channels on ``axis``, samples on the last other axis."""
    rank = max(2, axis + 1 if axis >= 0 else -axis)
    position = axis if axis >= 0 else rank + axis
    sample_axis = [index for index in range(rank) if index != position][-1]
    tensor = table.reshape(table.shape + (1,) * (rank - 2))
    return np.moveaxis(tensor, [0, 1], [sample_axis, position])


def _pad_rank(tensor: np.ndarray, axis: int) -> np.ndarray:
    """Prepend size-1 axes until a non-negative ``axis`` exists in the tensor."""
    while axis >= 0 and tensor.ndim <= axis:
        tensor = tensor[np.newaxis, ...]
    return tensor


def resolve_axis(axis: int, ndim: int) -> int:
    """The non-negative position of ``axis`` in a tensor of rank ``ndim``."""
    if ndim < 2:
        raise InputValueError("input must have a batch axis and a channel axis")
    position = axis + ndim if axis < 0 else axis
    if not 0 <= position < ndim:
        raise InputValueError(f"axis {axis} does not exist in an input of rank {ndim}")
    return position


def parse_for_layer(text: str, channels: int, axis: int) -> np.ndarray:
    """Parse typed text and arrange it for the layer: the one call the UIs make."""
    values = parse_values(text)
    return shape_for_layer(values, channels, axis, typed_flat=not text.lstrip().startswith("["))
