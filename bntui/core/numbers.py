"""How numbers are shown: 8 significant digits by default, enough to tell float32 apart.

Exports and JSON carry full precision; only what a person reads is shortened.
"""

from __future__ import annotations

import math

import numpy as np

DIGITS = 8


def fmt(value: float | np.floating | None, digits: int = DIGITS) -> str:
    """One number with ``digits`` significant digits (``-`` for a missing value)."""
    if value is None:
        return "-"
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return f"{number:.{digits}g}"


def fmt_list(values: np.ndarray, digits: int = DIGITS, limit: int = 8) -> str:
    """Up to ``limit`` values in brackets, with a count of the rest."""
    flat = np.asarray(values).ravel()
    shown = ", ".join(fmt(value, digits) for value in flat[:limit])
    more = f", … (+{flat.size - limit})" if flat.size > limit else ""
    return f"[{shown}{more}]"


def to_json_value(array: np.ndarray | float | None) -> object:
    """Full-precision JSON-safe value: NaN and infinities become strings, as JSON has none."""
    if array is None:
        return None
    data = np.asarray(array, dtype=np.float64)
    if data.ndim == 0:
        return _json_float(float(data))
    if np.isfinite(data).all():
        return data.tolist()  # the fast path: one C call for the whole array
    return [to_json_value(item) for item in data]


def _json_float(number: float) -> float | str:
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return number
