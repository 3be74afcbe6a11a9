"""Type checks of configured numbers that Python's own types get wrong.

``isinstance(True, int)`` holds and NaN is a float: a setting read from a config must be
neither, so every check of a number a user wrote goes through these two.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["is_finite_number", "is_integer"]


def is_finite_number(value: object) -> bool:
    """A real, finite number (bools are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def is_integer(value: object) -> bool:
    """A Python or NumPy integer (bools are not integers here)."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))
