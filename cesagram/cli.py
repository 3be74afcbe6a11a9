"""``cesagram``: one command for every user, dispatching to the package that serves them.

Handlers are imported lazily so that ``cesagram data check`` does not pay for torch or
Flower. Every expected error (:class:`federation.errors.CesagramError`) becomes one line
on stderr and its exit code; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from federation.errors import CesagramError

# subcommand path -> "module:function"; each function takes the parsed namespace and returns an exit code.
HANDLERS: dict[tuple[str, ...], str] = {
    ("data", "check"): "federation.data.check:check_command",
    ("data", "synth"): "simulations.prepare:synth_command",
    ("simulate",): "simulations.main:simulate_command",
    ("node", "budget"): "clients.budget:budget_command",
    ("score",): "federation.scoring.cli:score_command",
    ("evaluate",): "federation.scoring.cli:evaluate_command",
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cesagram", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="check and synthesise conversation data")
    data_commands = data.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    check = data_commands.add_parser("check", help="validate a JSONL or PAN-2012 XML file")
    check.add_argument("path", type=Path, help="JSONL file or PAN-2012 XML file")
    check.add_argument("--predators", type=Path, help="PAN-2012 ground truth: predator author ids, one a line")
    check.add_argument("--max-issues", type=int, default=100, help="report at most this many bad records")
    synth = data_commands.add_parser("synth", help="write a synthetic federation: one JSONL file per node")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.seed=7 federation.nodes=10")

    simulate = commands.add_parser(
        "simulate", help="run a simulated federation (Hydra overrides and --multirun accepted)", add_help=False
    )
    simulate.add_argument("hydra_args", nargs=argparse.REMAINDER)

    node = commands.add_parser("node", help="node operator: keys, data check, budget, start")
    node_commands = node.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    budget = node_commands.add_parser("budget", help="show what a node's privacy ledger has spent")
    budget.add_argument("ledger", type=Path)
    score = commands.add_parser("score", help="analyst: score conversations with early warnings and evidence")
    score.add_argument("--model", type=Path, required=True, help="model bundle folder (a run's model/)")
    score.add_argument("input", type=Path, nargs="?", help="JSONL or PAN-2012 XML file (omit with --follow)")
    score.add_argument("--out", type=Path, help="write the JSON lines here instead of stdout")
    score.add_argument("--follow", action="store_true", help="read messages as JSON lines on stdin; warn as they come")

    evaluate = commands.add_parser("evaluate", help="analyst: metrics of a model bundle on labelled conversations")
    evaluate.add_argument("--model", type=Path, required=True, help="model bundle folder (a run's model/)")
    evaluate.add_argument("input", type=Path, help="labelled JSONL or PAN-2012 XML file")
    evaluate.add_argument("--predators", type=Path, help="PAN-2012 ground truth: predator author ids")
    evaluate.add_argument("--out", type=Path, help="also write the metrics as JSON here")
    return parser


def _handler(args: argparse.Namespace):
    key = tuple(part for part in (args.command, getattr(args, "subcommand", None)) if part)
    module_name, func_name = HANDLERS[key].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cesagram`` console script."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(_handler(args)(args) or 0)
    except CesagramError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
