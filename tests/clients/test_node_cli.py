"""The node operator's commands without a SuperNode: the node config Flower parses, exit explanations, the planned spend."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from flwr.common.config import parse_config_args

from cesagram.cli import _build_parser
from clients.node_cli import explain_supernode_exit, node_config_string, policy_from_args
from federation.errors import ConfigError
from federation.privacy.node_policy import DERIVED_FIELDS, NodePolicy


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


# -- the node policy from `cesagram node start`'s flags ----------------------------------------
def _node_start_options() -> dict[str, argparse.Action]:
    parser = _build_parser()
    for command in ("node", "start"):
        subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        parser = subparsers.choices[command]
    return {option: action for action in parser._actions for option in action.option_strings}


def _a_value_other_than_the_default(field: dataclasses.Field, action: argparse.Action, tmp_path: Path) -> tuple[list[str], object]:
    """The command-line words that set ``field`` to something else than its default, and that value."""
    default = field.default
    if isinstance(default, tuple):  # a repeated flag with choices
        choice = next(c for c in action.choices if getattr(NodePolicy(**{field.name: (c,)}), field.name) != default)
        return [choice], (choice,)
    if isinstance(default, str):  # a folder
        return [str(tmp_path / "elsewhere")], str((tmp_path / "elsewhere").resolve())
    value = default + (1 if isinstance(default, int) else 0.1)
    return [str(value)], value


def test_every_node_policy_field_is_set_by_a_flag_of_node_start(tmp_path: Path) -> None:
    """A new NodePolicy field needs its `--kebab-case` flag on `cesagram node start`, read by policy_from_args."""
    options = _node_start_options()
    required = ["--superlink", "h:9092", "--ca", "ca.crt", "--key", "node.key", "--data", "d.jsonl", "--ledger", "l.json", "--cap", "8"]
    defaults = NodePolicy()
    settable = [field for field in dataclasses.fields(NodePolicy) if field.name not in DERIVED_FIELDS]
    assert {field.name for field in settable} >= {"accept_privacy", "cache_dir", "max_rounds", "histogram_noise"}
    for field in settable:
        flag = "--" + field.name.replace("_", "-")
        if flag not in options:
            pytest.fail(f"NodePolicy.{field.name} has no {flag} flag on `cesagram node start` (cesagram/cli.py)")
        words, expected = _a_value_other_than_the_default(field, options[flag], tmp_path)
        args = _build_parser().parse_args(["node", "start", *required, "--allow-test-privacy", flag, *words])
        policy = policy_from_args(args)
        assert getattr(policy, field.name) == expected != getattr(defaults, field.name), field.name
        unchanged = {f.name for f in dataclasses.fields(NodePolicy)} - {field.name}
        assert {name: getattr(policy, name) for name in unchanged} == {name: getattr(defaults, name) for name in unchanged}


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
