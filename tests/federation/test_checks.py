"""The number checks every configured value goes through: bools are not numbers, NaN is not finite."""

from __future__ import annotations

import math

import numpy as np
import pytest

from federation.checks import is_finite_number, is_integer, is_number

NOT_NUMBERS = [True, False, None, "1", b"1", [1], 1j, np.int64(1), np.float32(1.0), np.bool_(True)]


@pytest.mark.parametrize("value", [0, -3, 10**30, 0.5, -1e300, np.float64(2.5)])
def test_finite_numbers_are_numbers(value: object) -> None:
    assert is_number(value) and is_finite_number(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_nan_and_infinities_are_numbers_but_not_finite(value: object) -> None:
    assert is_number(value) and not is_finite_number(value)


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_bools_strings_and_numpy_scalars_other_than_float64_are_not_numbers(value: object) -> None:
    assert not is_number(value) and not is_finite_number(value)


@pytest.mark.parametrize("value", [0, -1, 10**30, np.int64(3), np.uint8(3), np.int32(-2)])
def test_python_and_numpy_integers_are_integers(value: object) -> None:
    assert is_integer(value)
    assert is_integer(value, numpy=False) == isinstance(value, int)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, np.float64(1.0), "1", None, math.nan])
def test_bools_and_whole_floats_are_not_integers(value: object) -> None:
    assert not is_integer(value) and not is_integer(value, numpy=False)


def test_an_integer_too_large_for_a_float_is_not_a_finite_number() -> None:
    """A config value no float can hold gets the site's one-line error, not an OverflowError."""
    assert not is_finite_number(10**400)
    assert is_finite_number(10**300)
