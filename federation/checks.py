"""Type checks of configured numbers that Python's own types get wrong.

``isinstance(True, int)`` holds and NaN is a float: a setting read from a config must be
neither, so every check of a number a user wrote goes through these (the architecture
test refuses a hand-written ``isinstance(value, bool) or not isinstance(...)``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["is_finite_number", "is_integer", "is_number"]


def is_number(value: object) -> bool:
    """A real number, NaN and infinities included (bools are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float))


def is_finite_number(value: object) -> bool:
    """A real, finite number that a float can hold (bools are not numbers here; nor is 10**400)."""
    if not is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_integer(value: object, *, numpy: bool = True) -> bool:
    """A Python or, unless ``numpy`` is False, a NumPy integer (bools are not integers here).

    ``numpy=False`` is for values that JSON, YAML, the command line and Flower's records
    carry: there a NumPy integer is a caller's mistake, refused before it fails where the
    value is written or sent.
    """
    return not isinstance(value, bool) and isinstance(value, (int, np.integer) if numpy else int)
