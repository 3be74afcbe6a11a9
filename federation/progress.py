"""Round-by-round progress for whoever launched a run: the ServerApp appends lines to
``progress.jsonl`` (one JSON object per round) and the launcher prints them as they come.
Shared by ``cesagram simulate`` and ``cesagram server run``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def format_progress(line: Mapping[str, Any]) -> str:
    """One console line per round."""

    def num(value: Any, fmt: str = ".3f") -> str:
        return "-" if value is None else format(value, fmt)

    # Nodes of this version send no training loss (it is not on their allow-list): no column then.
    loss = "" if line.get("train_loss") is None else f" | train loss {num(line.get('train_loss'))}"
    if "central_epsilon" in line:  # central DP: one client-level epsilon for the run (null: no noise, infinite)
        value = line["central_epsilon"]
        epsilon = f"client-level epsilon {'inf' if value is None else format(value, '.2f')}"
    else:
        epsilon = f"max epsilon {num(line.get('max_epsilon'), '.2f')}"
    text = (
        f"round {line['round']:>3}{loss} | F0.5 {num(line.get('f05'))} | "
        f"AUPRC {num(line.get('auprc'))} | {epsilon} | {num(line.get('seconds'), '.1f')} s"
    )
    if line.get("declined"):
        text += f" | declined: {', '.join(line['declined'])}"
    if line.get("failed"):
        text += f" | failed: {', '.join(line['failed'])}"
    return text


class ProgressPrinter(threading.Thread):
    """Prints the lines of ``progress.jsonl`` (from ``start_line`` on) as they appear."""

    def __init__(self, path: Path, emit: Callable[[str], None] = print, start_line: int = 0) -> None:
        super().__init__(daemon=True)
        self.path, self.emit, self.printed = path, emit, start_line
        self.stopped = threading.Event()

    def _drain(self) -> None:
        if not self.path.exists():
            return
        for raw in self.path.read_text(encoding="utf-8").splitlines()[self.printed :]:
            try:
                self.emit(format_progress(json.loads(raw)))
            except (json.JSONDecodeError, KeyError):
                break  # a line being written: read it next time
            self.printed += 1

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self._drain()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)
        self._drain()
