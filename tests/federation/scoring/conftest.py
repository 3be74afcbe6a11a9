"""Every scoring test keeps its embedding cache in its own folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(private_cache: None) -> None:
    """``private_cache`` (``tests/federation/conftest.py``) for each test of this folder."""
