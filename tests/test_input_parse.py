"""Typed input: the accepted syntaxes, the shapes they give, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bntui.core.errors import InputValueError
from bntui.core.input_parse import MAX_ELEMENTS, load_npy, parse_for_layer, parse_values, value_notes


@pytest.mark.parametrize("text, channels, axis, shape, flat", [
    ("1, 5", 1, -1, (2, 1), [1, 5]),
    ("1 5", 1, -1, (2, 1), [1, 5]),
    ("[[1], [5]]", 1, -1, (2, 1), [1, 5]),
    ("[[[[1], [5]]]]", 1, -1, (1, 1, 2, 1), [1, 5]),
    ("-2.5e-3", 3, -1, (1, 3), [-2.5e-3] * 3),
    ("1, 2, 3", 3, -1, (1, 3), [1, 2, 3]),
    ("1 5", 1, 2, (1, 2, 1), [1, 5]),
    ("[[1], [5]]", 1, 2, (1, 2, 1), [1, 5]),
    ("1, 2, 3", 3, 1, (1, 3), [1, 2, 3]),
    ("[[[[1, 2]]], [[[3, 4]]]]", 2, 1, (2, 1, 1, 2), None),
])
def test_accepted_forms(text: str, channels: int, axis: int, shape: tuple, flat: list | None) -> None:
    if flat is None:  # channels-first tensor: axis 1 must hold the channels
        with pytest.raises(InputValueError, match="entries on axis 1"):
            parse_for_layer(text, channels, axis)
        return
    x = parse_for_layer(text, channels, axis)
    assert x.shape == shape
    assert x.ravel().tolist() == flat


def test_nan_and_inf_are_accepted() -> None:
    x = parse_for_layer("nan, inf, -inf", 1, -1)
    assert np.isnan(x[0, 0]) and x[1, 0] == np.inf and x[2, 0] == -np.inf


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("   ", "empty"),
    ("[]", "empty"),
    ("abc", "is not a number"),
    ("1, two", "'two' is not a number"),
    ("__import__('os').system('true')", "is not a number"),
    ("[1, [2]]", "rectangular"),
    ("[1, 2", "not closed"),
    ("[1] 2", "after the closing bracket"),
    ("1 [2]", "brackets must enclose"),
    ("1 2 3 4", "expected 1 value, 3 values"),
    ("[[1, 2]]", "has 2 entries on axis -1; the layer has 3 channels"),
])
def test_refusals_name_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(InputValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_for_layer(text, 3, -1)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_an_array_or_our_error(text: str) -> None:
    try:
        result = parse_values(text)
    except InputValueError as err:
        assert str(err)
    else:
        assert isinstance(result, np.ndarray) and result.dtype == np.float64 and result.size > 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=20),
       st.sampled_from([", ", " ", ",", " , "]))
def test_numbers_round_trip(values: list[float], separator: str) -> None:
    text = separator.join(repr(v) for v in values)
    assert parse_values(text).tolist() == values


def test_npy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    assert load_npy(tmp_path / "x.npy").shape == (3, 2)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputValueError, match="not a readable .npy"):
        load_npy(tmp_path / "o.npy")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(InputValueError, match="not a readable .npy"):
        load_npy(tmp_path / "bad.npy")
    with pytest.raises(InputValueError, match="no such file"):
        load_npy(tmp_path / "missing.npy")


def test_huge_npy_is_refused_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(MAX_ELEMENTS + 1,))
    del big
    with pytest.raises(InputValueError, match=f"at most {MAX_ELEMENTS}"):
        load_npy(path)


@pytest.mark.parametrize("text", ["1,,2", ",1", "1,", "[1,,2]", "[[1],,[2]]", "[1,]", "[,1]"])
def test_a_comma_without_a_value_is_refused(text: str) -> None:
    with pytest.raises(InputValueError, match="comma has no value"):
        parse_values(text)


def test_what_reading_changed_is_said() -> None:
    notes = value_notes("1e400, -1e400, 1e-400, 0e5, 0.0, 1e39, nan, inf, 3")
    assert notes == [
        "1e400 is beyond float64 and was read as inf",
        "-1e400 is beyond float64 and was read as -inf",
        "1e-400 is below float64's smallest number and was read as 0",
        "1e39 is beyond float32: TensorFlow's float32 input holds inf there",
    ]
    # float32's largest value itself is exact in float32: nothing to say
    assert value_notes(repr(float(np.finfo(np.float32).max))) == []


def test_empty_npy_has_its_own_message(tmp_path: Path) -> None:
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(InputValueError, match=r"holds no values \(shape \(0, 3\)\)"):
        load_npy(tmp_path / "empty.npy")
