"""A cross-device federation's report: thousands of nodes summarised per kind, a small one still node by node.

The reports are built by the real code (``RunHistory`` -> ``build_report`` -> ``write_report``
and ``model_card``) from a made-up history: node ``i`` is of kind ``KINDS[i % 3]`` with
``2 + i % 4`` conversations; in round ``r`` (1 to 5) the nodes with ``i % 10 == r - 1``
train (and those with ``i % 10 == 0`` again in round 5), those with ``i % 10 == 5`` decline round 1 (every other one for its privacy budget),
those with ``i % 10 == 6`` miss round 2, those with ``i % 100 == 7`` fail round 3 and
``node-8`` is rejected in round 1. ``node-3`` and every 30th node sent white-box audit
figures; ``node-3``'s bound is above its epsilon.
"""

from __future__ import annotations

import json
import re
import statistics
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from federation.history import NodeRecord, RoundRecord, RunHistory
from federation.report import NODE_ROWS, build_report, model_card, report_markdown, write_report
from federation.report_figures import participation_counts, participation_grid
from federation.runconfig import PrivacySettings, RunSettings
from tests.federation.privacy.test_audit import CHANCE, DELTA, _node_audit

KINDS = ("hotline", "police", "platform")
ROUNDS = 5
LARGE = 3000
HEALTHY = "node-2341"  # trains in round 2, nothing else happens to it (and it is no attacker)
FAILURE = "DataError: unreadable line"
REJECTION = "update norm above the bound"
AUDITED = LARGE // 30 + 1


def _trained_round(i: int) -> int | None:
    return i % 10 + 1 if i % 10 < ROUNDS else None


def _node(i: int) -> NodeRecord:
    name = f"node-{i}"
    trained = _trained_round(i)
    node = NodeRecord(
        name=name, kind=KINDS[i % 3], conversations=2 + i % 4, positives=i % 2, cap=8.0, delta=DELTA,
        accountant="rdp", epsilon=0.1 * (i % 7), steps=4 if trained else 0,
    )  # fmt: skip
    if trained:
        node.rounds += [trained, ROUNDS] if trained == 1 else [trained]  # the first tenth trains twice
    if trained and (i % 30 == 0 or i == 3):  # the pooled audit's test takes seconds per thousand nodes
        node.audit = _node_audit(5.0 if i == 3 else 0.0, 1.0, CHANCE)
    if i % 10 == 5:
        node.declined[1] = "privacy budget exhausted" if i % 20 == 5 else "its policy: not this week"
    if i % 10 == 6:
        node.missed.append(2)
    if i % 100 == 7:
        node.failed[3] = FAILURE
    if i == 8:
        node.rejected[1] = REJECTION
    return node


def _history(count: int) -> RunHistory:
    nodes = {f"node-{i}": _node(i) for i in range(count)}
    history = RunHistory(nodes=nodes)
    for r in range(1, ROUNDS + 1):
        trained = [name for name, node in nodes.items() if r in node.rounds]
        history.rounds.append(
            RoundRecord(
                round=r,
                participants=trained,
                declined={name: why for name, node in nodes.items() for rr, why in node.declined.items() if rr == r},
                failed={name: why for name, node in nodes.items() for rr, why in node.failed.items() if rr == r},
                rejected={name: why for name, node in nodes.items() for rr, why in node.rejected.items() if rr == r},
                missed=[name for name, node in nodes.items() if r in node.missed],
                metrics={"f05": 0.5, "auprc": 0.6},
                epsilon={name: nodes[name].epsilon for name in trained},
            )
        )
        history.communication += [
            {"node": name, "round": r, "sent_bytes": 1000, "received_bytes": 2000} for name in trained
        ]
    return history


@dataclass(frozen=True)
class Written:
    """A report built and written into a run folder."""

    report: dict
    folder: Path
    markdown: str
    html: str
    card: str


def _written(count: int, folder: Path) -> Written:
    run = RunSettings(
        run_id="big",
        run_dir=str(folder),
        rounds=ROUNDS,
        nodes=count,
        privacy=PrivacySettings(mode="record", audit="white"),
    )
    report = build_report(
        run=run, config={}, recorder=_history(count), final={"f05": 0.5, "auprc": 0.6, "threshold": 0.4},
        federated_final={}, timing={"total": 1.0},
    )  # fmt: skip
    report["attack"] = {"kind": "scaled", "attackers": [f"node-{i}" for i in range(0, count, 10)], "from_round": 2}
    local = {f"node-{i}": 0.3 + 0.0001 * i for i in range(count)}
    report["comparison"] = {
        "federated_f05": 0.5, "centralized_nonprivate_f05": 0.6, "local_mean_f05": 0.4, "local_f05": local,
        "statements": ["federated 0.5 vs centralized 0.6"],
    }  # fmt: skip
    write_report(report, folder)
    return Written(
        report=report,
        folder=folder,
        markdown=(folder / "report.md").read_text(encoding="utf-8"),
        html=(folder / "report.html").read_text(encoding="utf-8"),
        card=model_card(report),
    )


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Written:
    return _written(LARGE, tmp_path_factory.mktemp("large"))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Written:
    return _written(5, tmp_path_factory.mktemp("small"))


def _section(markdown: str, title: str) -> list[str]:
    lines = markdown.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0].splitlines()
    return [line for line in lines if line]


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip("|").split("|")]


def _expected_kind(kind: str) -> dict:
    """The kind's figures, counted from the made-up history's rules (not from the report)."""
    members = [i for i in range(LARGE) if KINDS[i % 3] == kind]
    conversations = sorted(2 + i % 4 for i in members)
    return {
        "nodes": len(members),
        "conversations": sum(conversations),
        "positives": sum(i % 2 for i in members),
        "conversations_per_node_min": 2,
        "conversations_per_node_median": statistics.median(conversations),
        "conversations_per_node_max": 5,
        "nodes_trained": sum(1 for i in members if _trained_round(i)),
        "node_rounds_trained": sum(1 for i in members if _trained_round(i)) + sum(1 for i in members if i % 10 == 0),
        "missed": sum(1 for i in members if i % 10 == 6),
        "declined": sum(1 for i in members if i % 10 == 5),
        "failed": sum(1 for i in members if i % 100 == 7),
    }


def test_the_summary_per_kind_is_in_report_json(large: Written) -> None:
    on_disk = json.loads((large.folder / "report.json").read_text(encoding="utf-8"))
    assert on_disk["nodes_summary"] == {kind: _expected_kind(kind) for kind in sorted(KINDS)}
    assert len(on_disk["nodes"]) == LARGE and on_disk["nodes"][HEALTHY]["rounds"] == [2]  # every node stays


def test_report_md_has_a_row_per_kind_and_no_row_per_node(large: Written) -> None:
    assert HEALTHY not in large.markdown
    nodes = _section(large.markdown, "Nodes")
    assert f"{LARGE} nodes, too many for a row each" in nodes[0] and "report.json" in nodes[0]
    rows = [_cells(line) for line in nodes if line.startswith("| ") and not line.startswith(("| kind", "| ---"))]
    assert sorted(row[0] for row in rows) == sorted(KINDS)
    for row in rows:
        want = _expected_kind(row[0])
        assert row[1:4] == [str(want["nodes"]), str(want["conversations"]), str(want["positives"])]
        assert row[4] == f"2 / {want['conversations_per_node_median']:g} / 5"
        assert row[5:] == [
            str(want[k]) for k in ("nodes_trained", "node_rounds_trained", "missed", "declined", "failed")
        ]


def test_report_md_lists_the_first_failures_with_round_and_reason(large: Written) -> None:
    nodes = _section(large.markdown, "Nodes")
    failed = [f"node-{i}" for i in range(LARGE) if i % 100 == 7]
    listed = [line for line in nodes if line.startswith("- round")]
    assert listed[0] == f"- round 1: node-8 rejected: {REJECTION}"  # by round: the rejection comes first
    assert listed[1:] == [f"- round 3: {name} failed: {FAILURE}" for name in failed[:19]]  # node-7 before node-107
    assert f"- ... and {len(failed) + 1 - 20} more, in report.json (`nodes`)" in nodes
    assert f"Failed or rejected: {len(failed) + 1} time(s), at {len(failed) + 1} node(s); by round:" in nodes


def test_report_md_counts_nodes_in_rounds_privacy_audit_and_attack(large: Written) -> None:
    rounds = {
        int(_cells(line)[0]): _cells(line) for line in _section(large.markdown, "Rounds") if re.match(r"\| \d", line)
    }
    assert [rounds[r][5:9] for r in (1, 3)] == [["300", "300", "0", "1"], ["300", "0", "30", "0"]]
    privacy = _section(large.markdown, "Privacy")
    assert not any(line.startswith("| node-") for line in privacy)
    row = _cells(privacy[privacy.index(next(line for line in privacy if line.startswith("| nodes"))) + 2])
    assert row == [str(LARGE), "0.600", "0.300", str(DELTA), "8.000", "rdp", "conversation", str(LARGE // 20)]
    (audit,) = [line for line in privacy if line.startswith("Privacy audit")]
    assert (
        f"per node: {AUDITED} nodes (each in report.json), highest node-3 5.000 against accounted epsilon 1.000"
        in audit
    )
    assert audit.endswith("above its accounted epsilon at 1 (node-3).") and len(audit) < 1000
    (note,) = [line for line in _section(large.markdown, "Notes") if "PRIVACY AUDIT FAILED" in line]
    assert "node-3 (white-box)" in note and len(note) < 1000
    attack = _section(large.markdown, "Simulated attack")[0]
    assert attack.startswith("scaled by node-0, node-10,") and "and 280 more from round 2" in attack


def test_report_html_stays_small_and_names_no_healthy_node(large: Written) -> None:
    images = re.findall(r'src="data:image/png;base64,[^"]+"', large.html)
    assert len(images) == 4  # metrics, participation, epsilon, comparison
    assert len(large.html) - sum(map(len, images)) < 150_000
    assert HEALTHY not in large.html and "node-3 (white-box)" in large.html  # the failed audit is named
    communication = large.html.split('id="section-communication"', 1)[1].split("</details>", 1)[0]
    assert communication.count("<tr>") == 1 + ROUNDS and "<td>300000</td>" in communication  # per round, in all
    audit = large.html.split('id="section-audit"', 1)[1].split("</details>", 1)[0]
    assert f"yes at 1 of {AUDITED}" in audit  # the per-node audit rows as one


def _png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


def test_participation_is_counted_per_round_above_the_limit(large: Written, small: Written) -> None:
    """A grid of 3000 rows would be 0.4 inch a row; the bar chart keeps its size."""
    rounds, counts = participation_counts(large.report)
    assert rounds == [1, 2, 3, 4, 5] and counts["trained"] == [300, 300, 300, 300, 600]
    assert (counts["declined"], counts["failed"], counts["missed"]) == (
        [300, 0, 0, 0, 0],
        [0, 0, 30, 0, 0],
        [0, 300, 0, 0, 0],
    )
    width, height = _png_size(large.folder / "participation.png")
    assert width <= 16 * 120 and height <= 4 * 120  # a bar chart, not a row per node
    assert (small.folder / "participation.png").is_file()
    assert all(_png_size(large.folder / name)[1] <= 4 * 120 for name in ("epsilon.png", "comparison.png"))


def test_model_card_summarises_by_kind(large: Written) -> None:
    assert HEALTHY not in large.card
    want = _expected_kind("police")
    assert (
        f"- police: {want['nodes']} nodes, {want['conversations']} conversations, {want['positives']} grooming"
        in large.card
    )
    assert f"- {LARGE} nodes: epsilon at most 0.600 (median 0.300) at delta {DELTA}" in large.card
    assert len(large.card) < 5000


def test_a_small_report_keeps_its_rows_per_node(small: Written) -> None:
    assert len(small.report["nodes"]) <= NODE_ROWS
    text = report_markdown(small.report)
    assert "| node-3 | hotline | 5 | 1 | 1 | - | - | - |" in text  # the node table
    assert "| node-4 | 0.400 | 1e-05 | 8.000 | rdp | conversation | 4 | no |" in text  # the privacy table
    assert (
        "per node: node-0 0.000 against accounted epsilon 1.000; node-3 5.000 against accounted epsilon 1.000." in text
    )
    assert "- node-2 (platform): 4 conversations, 0 grooming" in small.card
    assert "- node-2: epsilon 0.200 at delta 1e-05" in small.card
    assert "too many for a row each" not in text
    names, _, grid = participation_grid(small.report)
    assert names == [f"node-{i}" for i in range(5)] and len(grid) == 5
    assert small.report["nodes_summary"]["hotline"]["nodes"] == 2  # node-0 and node-3


def test_report_md_says_why_nodes_declined_once_per_reason(large: Written) -> None:
    nodes = _section(large.markdown, "Nodes")
    assert "Declined, by reason:" in nodes
    reasons = [line for line in nodes if line.startswith("- 150 time(s): ")]
    assert [line.split(" (")[0] for line in reasons] == [
        "- 150 time(s): privacy budget exhausted",
        "- 150 time(s): its policy: not this week",
    ]
    assert "node-5, node-25, node-45" in reasons[0] and "and 130 more" in reasons[0]


def test_a_node_over_its_own_cap_is_counted_whatever_the_other_caps() -> None:
    from federation.report import privacy_summary

    entry = {"delta": DELTA, "accountant": "rdp", "unit": "conversation"}
    nodes = {
        "a": {**entry, "epsilon": 3.0, "cap": 2.0},  # over its own cap, below the largest cap
        "b": {**entry, "epsilon": 1.0, "cap": 9.0},
    }
    summary = privacy_summary(nodes)
    assert (summary["epsilon_max"], summary["cap_max"], summary["over_cap"]) == (3.0, 9.0, 1)
