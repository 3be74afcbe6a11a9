"""The run recorder: which node a failing reply names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from federation.wire import DECLINED_BUDGET, FAILED
from server.recorder import RunRecorder


def _error_reply(code: int, reason: str) -> SimpleNamespace:
    return SimpleNamespace(has_error=lambda: True, error=SimpleNamespace(code=code, reason=reason))


def test_recorder_names_a_failing_node_from_our_error_codes_only(tmp_path: Path) -> None:
    """Our replies start with the node's name; Flower's own errors (e.g. a worker crash) do not."""
    recorder = RunRecorder()
    ours = recorder._node(7, _error_reply(FAILED, "node-3: DataError: node-3.jsonl:2: label must be 0 or 1"))
    declined = recorder._node(8, _error_reply(DECLINED_BUDGET, "node-4: declined: cap reached"))
    flowers = recorder._node(9, _error_reply(0, "<class 'TypeError'>: unsupported operand"))
    assert (ours.name, declined.name, flowers.name) == ("node-3", "node-4", "node-id-9")
