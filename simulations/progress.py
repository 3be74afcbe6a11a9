"""How a launcher hands its progress bars to a run: a factory of ``with`` blocks, or none."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

__all__ = ["BarsFactory", "ProgressBars", "no_bars"]


class ProgressBars(Protocol):
    """What a run needs of the command's bars (``cesagram.console.Bars``)."""

    def tracker(self, description: str, *, unit: str) -> Callable[[int, int], None]: ...


#: Opens the command's progress bars for one stretch of a run (``None`` inside: no bars).
BarsFactory = Callable[[], AbstractContextManager[ProgressBars | None]]


@contextmanager
def no_bars() -> Iterator[None]:
    """No progress bars (library use, tests)."""
    yield None
