"""How far a value a person pasted may be from the number it stands for.

People paste printed values. ``0.795`` has three decimals: the number behind it lies in
[0.7945, 0.7955] when it was rounded, and in [0.795, 0.796) when it was truncated (``4.9975``
typed as ``4.99``). So a typed value ``v`` whose last digit is worth ``u`` accepts a true value
from half a unit on the near side of zero to a whole unit on the far side (away from zero,
where truncation leaves the true magnitude). Values loaded from a ``.npy`` file carry no
digits and are taken as exact.

The digits alone are not enough: a float32 framework computes ``x * s + (beta - mean * s)``
and rounds each term, so its output is off by a few ulps *of the largest term*, far more than
its own ulp when it nearly cancels (see :mod:`bntui.core.numerics`). :meth:`Given.accepts`
adds that slack on top of the digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bntui.core.errors import InputValueError
from bntui.core.input_parse import parse_values
from bntui.core.numerics import ulp_of

#: float32 rounding allowed on top of the digits, in ulps of the largest term summed:
#: the folded form rounds s, mean * s, the offset, x * s and the final sum (one half-ulp each
#: at most), so four ulps cover any float32 evaluation order of the formula.
FLOAT32_ULPS = 4.0

#: The number tokens of :mod:`bntui.core.input_parse`, to read how many digits were typed.
_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)", re.IGNORECASE)
_MANTISSA = re.compile(r"[-+]?(?P<whole>\d*)(?:\.(?P<fraction>\d*))?(?:[eE](?P<exponent>[-+]?\d+))?$")


@dataclass(frozen=True, eq=False)
class Given:
    """Values a user gave, flat, with how far below and above each its true value may lie."""

    values: np.ndarray
    #: The true value may be as low as ``values - below`` and as high as ``values + above``.
    below: np.ndarray
    above: np.ndarray
    #: ``"digits"`` (typed text) or ``"exact"`` (a ``.npy`` file).
    source: str

    def take(self, indices: np.ndarray) -> Given:
        """The same tolerance for some of the values only."""
        return Given(self.values[indices], self.below[indices], self.above[indices], self.source)

    def slack(self, terms: np.ndarray) -> np.ndarray:
        """float32 rounding room for outputs whose largest summed term is ``terms``."""
        return FLOAT32_ULPS * ulp_of(terms, np.float32)

    def excess(self, candidate: np.ndarray, terms: np.ndarray) -> np.ndarray:
        """Per value, how many allowances the candidate is away (at most 1 means accepted).

        NaN matches NaN and an infinity the same infinity; any other pairing with a
        non-finite number is infinitely far.
        """
        c = np.asarray(candidate, dtype=np.float64).ravel()
        v = self.values
        slack = self.slack(np.asarray(terms, dtype=np.float64).ravel())
        with np.errstate(all="ignore"):
            difference = c - v
            room = np.where(difference >= 0, self.above + slack, self.below + slack)
            room = np.maximum(room, np.finfo(np.float64).tiny)
            ratio = np.abs(difference) / room
        same = (c == v) | (np.isnan(c) & np.isnan(v))
        ratio = np.where(same, 0.0, ratio)
        return np.where(np.isnan(ratio), np.inf, ratio)

    def describe(self, *, short: bool = False) -> str:
        """The tolerance in words, for the explanations."""
        if short:
            room = "the digits typed" if self.source == "digits" else "exact values"
            return f"{room} plus {FLOAT32_ULPS:g} float32 ulps of the largest term"
        float32 = f"plus {FLOAT32_ULPS:g} float32 ulps of the largest term summed (float32 rounding of x * s + offset)"
        if self.source == "digits":
            return ("within the digits typed (half a unit of the last digit, or a whole unit when "
                    f"truncated), {float32}")
        return f"exactly as loaded, {float32}"


def typed(text: str) -> Given:
    """Parse typed values (as :func:`bntui.core.input_parse.parse_values` does, nested or
    flat) and give each its tolerance from the digits typed."""
    values = parse_values(text).ravel()
    tokens = _NUMBER.findall(text)
    if len(tokens) != values.size:  # parse_values accepted it, so this is a tokenizer mismatch
        raise InputValueError(f"could not read the digits of {text[:40]!r}")
    units = np.array([_unit(token) for token in tokens], dtype=np.float64)
    near, far = units / 2, units
    positive = values > 0
    negative = values < 0
    below = np.where(positive, near, np.where(negative, far, units))
    above = np.where(negative, near, np.where(positive, far, units))
    # The typed decimal itself is represented in binary to within one float64 rounding.
    representation = np.abs(values) * np.finfo(np.float64).eps
    return Given(values, below + representation, above + representation, "digits")


def exact(values: np.ndarray) -> Given:
    """Values from a file: no digits to read, so no room beyond float32 rounding."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    zero = np.zeros_like(flat)
    return Given(flat, zero, zero, "exact")


def _unit(token: str) -> float:
    """The value of one unit in the last digit of a number token (0 for nan and inf)."""
    match = _MANTISSA.match(token)
    if match is None:
        return 0.0
    decimals = len(match.group("fraction") or "")
    exponent = int(match.group("exponent") or 0)
    return float(10.0 ** (exponent - decimals))
