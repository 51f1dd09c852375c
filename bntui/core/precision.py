"""Rounding values the way a dtype policy does, with numpy alone.

float16 is numpy's own; bfloat16 (the top 16 bits of a float32) is not, so it is rounded here
to nearest-even on the float32 bits, as TensorFlow's cast does. No ml_dtypes or TensorFlow
import is needed on the fast path.
"""

from __future__ import annotations

import numpy as np


def to_bfloat16_float32(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), returned as float32."""
    x = np.ascontiguousarray(values, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    rounded = ((bits + rounding) & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, rounded).astype(np.float32)


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` (float16, bfloat16, float32 or float64); bfloat16 comes
    back as float32 holding bfloat16 values, the others in their own dtype."""
    array = np.asarray(values)
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "bfloat16":
            return to_bfloat16_float32(array.astype(np.float32))
        return array.astype(dtype)
