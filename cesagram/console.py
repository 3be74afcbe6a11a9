"""What a person sees on the terminal: quiet logs, progress bars, one line per step.

The library (``federation/``) prints nothing: it reports progress through callbacks
(``MiniLMEncoder.on_progress``, the baselines' ``progress``) and logs through
``logging``. This module turns those into rich progress bars on stderr and keeps INFO
logs off the console unless ``-v`` asks for them (they still reach ``main.log``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

__all__ = ["Bars", "Tracker", "quiet_console_logs"]

#: ``(done, total)`` as the library reports it.
Tracker = Callable[[int, int], None]


class _Rate(ProgressColumn):
    """Items per second, with the unit of the bar (``texts/s``)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "items")
        return Text("" if speed is None else f"{speed:,.0f} {unit}/s", style="progress.data.speed")


@dataclass
class _Bar:
    description: str
    unit: str
    total: int
    started: float = field(default_factory=time.perf_counter)
    done: int = 0
    task: Any = None


class Bars:
    """Progress bars on ``stream`` (stderr): live on a terminal, otherwise one closing line each or none.

    Parameters
    ----------
    stream
        Where the bars go.
    plain
        When ``stream`` is not a terminal: True prints one line per bar when the ``with``
        block ends ("encoding: 4,499 of 4,499 texts in 32.1 s, 140 texts/s"), False nothing.
    """

    def __init__(self, *, stream: IO[str] | None = None, plain: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.plain = plain
        self._progress: Progress | None = None
        self._bars: list[_Bar] = []
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    def __enter__(self) -> Bars:
        if self.live:
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _Rate(),
                TimeElapsedColumn(),
                TextColumn("elapsed,"),
                TimeRemainingColumn(),
                TextColumn("left"),
                console=Console(file=self.stream),
                transient=False,
            )
            saved = {id(sys.stdout): "stdout", id(sys.stderr): "stderr"}
            self._progress.start()
            # rich now writes prints above the bars; log handlers opened earlier still hold
            # the real streams: point them at rich's stand-ins while the bars are drawn.
            for handler in logging.getLogger().handlers:
                if type(handler) is logging.StreamHandler and id(handler.stream) in saved:
                    self._handlers.append((handler, handler.setStream(getattr(sys, saved[id(handler.stream)]))))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            for handler, stream in self._handlers:
                handler.setStream(stream)
            self._handlers.clear()
        elif self.plain:
            for bar in self._bars:
                if bar.total == 0:
                    print(f"{bar.description}: nothing to do", file=self.stream, flush=True)
                    continue
                seconds = time.perf_counter() - bar.started
                rate = f", {bar.done / seconds:,.0f} {bar.unit}/s" if seconds > 0 and bar.done else ""
                line = f"{bar.description}: {bar.done:,} of {bar.total:,} {bar.unit} in {seconds:.1f} s{rate}"
                print(line, file=self.stream, flush=True)
        self._bars.clear()

    def tracker(self, description: str, *, unit: str) -> Tracker:
        """A callback for one bar; each ``(0, n)`` call after the first adds ``n`` to its total.

        An encoder reports each call as ``(0, n)`` then ``(i, n)``; a bar over several calls
        (one per node in a baseline) sums them.
        """
        bar: _Bar | None = None
        base = segment = 0

        def update(done: int, total: int) -> None:
            nonlocal bar, base, segment
            if bar is None:
                bar = _Bar(description, unit, total)
                self._bars.append(bar)
                if self._progress is not None:
                    bar.task = self._progress.add_task(description, total=total, unit=unit)
            elif done == 0:
                base += segment
            segment = total
            bar.done, bar.total = base + done, base + total
            if self._progress is not None:
                self._progress.update(bar.task, completed=bar.done, total=bar.total)

        return update


@contextmanager
def quiet_console_logs(*, verbose: bool) -> Iterator[None]:
    """Console log handlers show warnings only (INFO too with ``verbose``); file handlers keep everything."""
    changed = []
    if not verbose:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                changed.append((handler, handler.level))
                handler.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler, level in changed:
            handler.setLevel(level)
