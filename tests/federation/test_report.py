"""report.md: what it says of each node."""

from __future__ import annotations


def test_report_markdown_lists_missed_and_declined_rounds_per_node() -> None:
    from federation.report import report_markdown

    report = {
        "run_id": "r",
        "mode": "federated",
        "privacy": {"guarantee": "none"},
        "protections": {"tls": False},
        "timing": {"total": 1.0},
        "nodes": {
            "a": {"kind": "hotline", "conversations": 10, "positives": 2, "rounds": [1], "missed_rounds": [], "declined": {"2": "cap"}, "failed": {}},
            "b": {"kind": "police", "conversations": 5, "positives": 1, "rounds": [], "missed_rounds": [1, 2], "declined": {}, "failed": {"1": "DataError: x"}},
        },
    }
    text = report_markdown(report)
    assert "| a | hotline | 10 | 2 | 1 | - | 2 | - |" in text
    assert "| b | police | 5 | 1 | 0 | 1, 2 | - | round 1: DataError: x |" in text
