"""The node operator's commands without a SuperNode: the node config Flower parses, exit explanations, the planned spend."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.common.config import parse_config_args

from clients.node_cli import explain_supernode_exit, node_config_string
from federation.errors import ConfigError


# -- what Flower receives ----------------------------------------------------------------------
@pytest.mark.parametrize("data", ['/srv/data/a "b".jsonl', "/srv/o'brien/data.jsonl", "C:\\data\\node 1.jsonl"])
def test_node_config_survives_flowers_parser(data: str) -> None:
    text = node_config_string(
        data=Path(data), ledger=Path("/srv/ledger.json"), cap=8.0, delta=1e-5, name="hotline a", kind="hotline"
    )
    assert parse_config_args([text]) == {
        "data-path": data,
        "ledger-path": "/srv/ledger.json",
        "cap": 8.0,
        "delta": 1e-5,
        "name": "hotline a",
        "kind": "hotline",
    }


def test_node_config_refuses_what_flower_cannot_read() -> None:
    with pytest.raises(ConfigError, match="--name"):
        node_config_string(data=Path("/d"), ledger=Path("/l"), cap=1.0, delta=1e-5, name="a'b\"c", kind="x")


def test_supernode_exit_explanations(tmp_path: Path) -> None:
    refused = explain_supernode_exit(1, "Exit Code: 305\n[code: 2004] Failed to activate SuperNode.", key=tmp_path / "node.key")
    assert "not registered" in refused and str(tmp_path / "node.pub") in refused
    assert "--ca" in explain_supernode_exit(1, "[SSL: CERTIFICATE_VERIFY_FAILED] x", key=tmp_path / "k")
    assert "305" in explain_supernode_exit(1, "ERROR: boom\nExit Code: 305", key=tmp_path / "k")


# -- a command that must fail or plan before starting anything ---------------------------------
def test_node_check_prints_the_planned_spend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main
    from federation.data.synthetic import SynthSettings, generate_federation
    from federation.privacy.ledger import PrivacyLedger

    generate_federation(SynthSettings(conversations_per_node=40, test_conversations=0, min_node_conversations=30), node_kinds=["police"], out_dir=tmp_path)
    ledger = tmp_path / "ledger.json"
    PrivacyLedger.create(ledger, node="n", cap=5.0, delta=1e-5)
    assert main(["node", "check", str(tmp_path / "node-0.jsonl"), "--rounds", "4", "--epsilon", "8", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    assert "planned run: 4 rounds" in out
    assert "cap 5" in out and "-> epsilon 5.0000 after the run" in out  # the node's cap binds, not the run's 8


def test_node_check_lists_bad_records_and_plans_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main

    path = tmp_path / "node.jsonl"
    path.write_text('{"id": "a", "label": 0, "messages": [{"author": "x", "text": "hi"}]}\n{oops\n')
    assert main(["node", "check", str(path), "--rounds", "2", "--epsilon", "4"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{path}:2: not valid JSON")
    assert lines[-1] == f"{path}: 1 problem; fix it and run the check again"
    assert not any(line.startswith("planned run") for line in lines)
