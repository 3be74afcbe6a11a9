"""The console's round line: the client-level epsilon under central DP, the nodes' highest otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from federation.history import NodeRecord, RoundRecord, RunHistory
from federation.progress import format_progress
from server.progress_file import ProgressFile


def _line(tmp_path: Path, central) -> dict:  # type: ignore[no-untyped-def]
    history = RunHistory(rounds=[RoundRecord(round=1, seconds=2.0)], nodes={"n": NodeRecord(name="n", epsilon=0.0)})
    path = tmp_path / "progress.jsonl"
    ProgressFile(path, history, central_epsilon=central).on_round_end(1, None, None)  # type: ignore[arg-type]
    return json.loads(path.read_text(encoding="utf-8").splitlines()[-1])


def test_central_dp_rounds_show_the_client_level_epsilon_and_no_noise_shows_inf(tmp_path: Path) -> None:
    line = _line(tmp_path, lambda rounds: 0.5 * rounds)
    assert line["central_epsilon"] == 0.5 and "client-level epsilon 0.50" in format_progress(line)
    infinite = _line(tmp_path, lambda rounds: float("inf"))
    assert infinite["central_epsilon"] is None  # strict JSON: no Infinity in progress.jsonl
    assert "client-level epsilon inf" in format_progress(infinite)
    plain = _line(tmp_path, None)
    assert "central_epsilon" not in plain and "max epsilon 0.00" in format_progress(plain)
