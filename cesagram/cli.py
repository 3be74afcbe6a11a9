"""``cesagram``: one command for every user, dispatching to the package that serves them.

Handlers are imported lazily so that ``cesagram data check`` does not pay for torch or
Flower. Every expected error (:class:`federation.errors.CesagramError`) becomes one line
on stderr and its exit code; a traceback means a bug. SIGTERM (``timeout``, systemd, batch
schedulers) and SIGHUP stop a command as Ctrl-C does: every process it started is stopped.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from federation.errors import CesagramError

# subcommand path -> "module:function"; each function takes the parsed namespace and returns an exit code.
HANDLERS: dict[tuple[str, ...], str] = {
    ("data", "check"): "cesagram.data_check:check_command",
    ("data", "synth"): "simulations.prepare:synth_command",
    ("simulate",): "simulations.main:simulate_command",
    ("node", "budget"): "clients.budget:budget_command",
    ("node", "keygen"): "clients.node_cli:keygen_command",
    ("node", "init"): "clients.node_cli:node_init_command",
    ("node", "check"): "clients.node_cli:node_check_command",
    ("node", "start"): "clients.node_cli:node_start_command",
    ("server", "certs"): "server.cli:certs_command",
    ("server", "start"): "server.cli:start_command",
    ("server", "register"): "server.cli:register_command",
    ("server", "run"): "server.cli:run_command",
    ("server", "resume"): "server.cli:resume_command",
    ("score",): "cesagram.score:score_command",
    ("evaluate",): "cesagram.evaluate:evaluate_command",
    ("evaluate", "--behaviour"): "cesagram.behaviour:behaviour_command",
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
    budget = node_commands.add_parser("budget", help="show what a node's privacy ledger has spent; change its cap")
    budget.add_argument("ledger", type=Path)
    budget.add_argument("--set-cap", type=float, metavar="EPSILON", help="change the lifetime cap (lowering is always allowed)")
    budget.add_argument("--raise", dest="allow_raise", action="store_true", help="allow --set-cap to raise the cap: the operator's decision to spend more privacy")
    budget.add_argument("--switch-accountant", choices=["rdp", "prv"], help="recompose the ledger's whole history with this accountant from now on (recorded in the ledger; prv is tighter)")
    _add_node_parsers(node_commands)
    _add_server_parsers(commands)
    score = commands.add_parser("score", help="analyst: score conversations with early warnings and evidence")
    score.add_argument("--model", type=Path, required=True, help="model bundle folder (a run's model/)")
    score.add_argument("input", type=Path, nargs="?", help="JSONL or PAN-2012 XML file; with --follow, an optional file of message lines (default: stdin)")
    score.add_argument("--out", type=Path, help="write the JSON lines here instead of stdout")
    score.add_argument("--follow", action="store_true", help="read messages as JSON lines on stdin; warn as they come")
    score.add_argument("--html", type=Path, metavar="FILE", help="also write the review page: one offline HTML file for analysts")

    evaluate = commands.add_parser("evaluate", help="analyst: metrics of a model bundle on labelled conversations")
    evaluate.add_argument("--model", type=Path, required=True, help="model bundle folder (a run's model/)")
    evaluate.add_argument("input", type=Path, nargs="?", help="labelled JSONL or PAN-2012 XML file (none with --behaviour)")
    evaluate.add_argument("--predators", type=Path, help="PAN-2012 ground truth: predator author ids")
    evaluate.add_argument("--out", type=Path, help="also write the metrics as JSON here")
    evaluate.add_argument("--behaviour", action="store_true", help="run the behavioural suite (CheckList) on the bundle instead of a file")
    return parser


def _add_node_parsers(node_commands) -> None:  # type: ignore[no-untyped-def]
    """``cesagram node keygen | check | start`` (the node operator's production commands)."""
    keygen = node_commands.add_parser("keygen", help="create this node's key pair for SuperNode authentication")
    keygen.add_argument("dir", type=Path, help="folder for node.key (stays here) and node.pub (goes to the coordinator)")

    init = node_commands.add_parser("init", help="create this node's privacy ledger and secret (once)")
    init.add_argument("ledger", type=Path, help="the ledger file to create (its secret goes beside it)")
    init.add_argument("--cap", required=True, type=float, help="this node's lifetime epsilon cap")
    init.add_argument("--delta", type=float, default=1e-5, help="this node's delta (fixed for the ledger's life)")
    init.add_argument("--name", help="the node's name in the ledger (default: the ledger file's name)")
    init.add_argument("--accountant", choices=["rdp", "prv"], default="rdp", help="the accountant the ledger composes its spend with (changed later only by `node budget --switch-accountant`)")

    check = node_commands.add_parser("check", help="check a data file and what a planned run would spend")
    check.add_argument("data", type=Path, help="the node's JSONL or PAN-2012 XML file")
    check.add_argument("--predators", type=Path, help="PAN-2012 ground truth: predator author ids")
    check.add_argument("--max-issues", type=int, default=100, help="list at most this many bad records")
    check.add_argument("--rounds", type=int, help="rounds of the planned run (default: conf's rounds)")
    check.add_argument("--epsilon", type=float, help="epsilon the run may spend (default: conf's privacy.epsilon)")
    check.add_argument("--delta", type=float, default=1e-5, help="the node's delta (when no --ledger)")
    check.add_argument("--cap", type=float, help="the node's lifetime cap (default: the ledger's)")
    check.add_argument("--ledger", type=Path, help="the node's privacy ledger, to include what it has spent")
    check.add_argument("--batch-size", type=int, help="train.batch_size of the run (default: conf's)")
    check.add_argument("--epochs", type=float, help="train.local_epochs of the run (default: conf's)")
    check.add_argument("--validation-fraction", type=float, help="evaluation.validation_fraction (default: conf's)")
    check.add_argument("--seed", type=int, default=0, help="split seed when no --ledger (a node splits with the secret beside its ledger)")

    start = node_commands.add_parser("start", help="start this node's Flower SuperNode (TLS, authentication)")
    start.add_argument("--superlink", required=True, help="HOST:PORT of the coordinator's SuperLink")
    start.add_argument("--ca", required=True, type=Path, help="the coordinator's CA certificate (ca.crt)")
    start.add_argument("--key", required=True, type=Path, help="this node's private key (node.key)")
    start.add_argument("--data", required=True, type=Path, help="this node's conversations (JSONL or PAN-2012 XML)")
    start.add_argument("--ledger", required=True, type=Path, help="this node's privacy ledger (`cesagram node init`)")
    start.add_argument("--cap", required=True, type=float, help="this node's lifetime epsilon cap")
    start.add_argument("--delta", type=float, default=1e-5, help="this node's delta (fixed for the ledger's life)")
    start.add_argument("--name", help="name in reports (default: the data file's name)")
    start.add_argument("--kind", default="unknown", choices=["hotline", "police", "platform", "unknown"])
    start.add_argument("--runtime-port", type=int, default=9094, help="local port for Flower's ClientApp runtime")
    start.add_argument("--probe-timeout", type=float, default=10.0, help="seconds to wait for the SuperLink to answer")
    policy = start.add_argument_group("node policy (what this node agrees to, whatever a run asks)")
    policy.add_argument(
        "--accept-privacy",
        action="append",
        choices=["record", "central", "none"],
        help="a privacy mode runs may use (repeat; default: record, i.e. record-level DP-SGD only)",
    )
    policy.add_argument(
        "--allow-test-privacy", action="store_true", help="confirm --accept-privacy central/none (test federations)"
    )
    policy.add_argument(
        "--accept-audit",
        action="append",
        choices=["off", "white", "black", "both"],
        help="an audit runs may ask (repeat; default: off and white, the one-run white-box audit whose canaries never "
        "touch the model's weights; black adds random-word canary conversations with random labels to the node's "
        "training data); --accept-audit off alone refuses audits",
    )
    policy.add_argument(
        "--accept-app",
        action="append",
        help="a run's app this node runs: a FAB's SHA-256, or `cesagram` (default: a FAB with no code that names "
        "the installed cesagram-fl ClientApp); repeat for more",
    )
    policy.add_argument("--cache-dir", type=Path, help="the only folder for the embedding cache (default: $CESAGRAM_CACHE_DIR)")
    policy.add_argument("--validation-fraction", type=float, help="share held out for validation (0.05-0.5; default 0.2)")
    policy.add_argument("--max-histogram-bins", type=int, help="finest score histogram sent, bins per class (default 200)")
    policy.add_argument("--max-latency-bins", type=int, help="bins of the early-warning latency histogram (default 200; same on every node)")
    policy.add_argument("--max-evaluations-per-run", type=int, help="evaluate calls answered per run (default 50)")
    policy.add_argument("--max-evaluations-per-day", type=int, help="evaluate calls answered per UTC day (default 200)")
    policy.add_argument("--max-rounds", type=int, help="longest run (rounds) this node joins (default 100)")
    policy.add_argument("--count-granularity", type=int, help="counts sent are rounded to a multiple of this (default 10)")
    policy.add_argument(
        "--histogram-noise",
        type=float,
        help="send score histograms under DP: Gaussian noise of this standard deviation per bin, charged to the "
        "ledger (default 0: off)",
    )


def _add_server_parsers(commands) -> None:  # type: ignore[no-untyped-def]
    """``cesagram server certs | start | register | run | resume`` (the coordinator's commands)."""
    server = commands.add_parser("server", help="coordinator: certificates, SuperLink, production runs")
    server_commands = server.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    certs = server_commands.add_parser("certs", help="create a pilot CA and the SuperLink's TLS certificate")
    certs.add_argument("dir", type=Path, help="folder for ca.crt, superlink.crt, superlink.key and ca-private/ca.key")
    certs.add_argument("--encrypt-ca-key", action="store_true", help="encrypt the CA key with a passphrase (asked twice)")
    certs.add_argument("--ca-passphrase-file", type=Path, help="encrypt the CA key with the passphrase in this file")
    certs.add_argument("--host", action="append", required=True, help="a name or IP nodes dial (repeat for more)")
    certs.add_argument("--valid-days", type=int, default=365)

    start = server_commands.add_parser("start", help="start the SuperLink with TLS and SuperNode authentication")
    start.add_argument("--certs", type=Path, help="folder from `cesagram server certs`")
    start.add_argument("--ca", type=Path, help="CA certificate (own PKI; instead of --certs)")
    start.add_argument("--cert", type=Path, help="SuperLink certificate (own PKI)")
    start.add_argument("--key", type=Path, help="SuperLink private key (own PKI)")
    start.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all interfaces)")
    start.add_argument("--port", type=int, default=9092, help="port of the Fleet, Control and Runtime APIs")
    start.add_argument("--database", type=Path, default=Path("superlink.db"), help="SuperLink state file")

    register = server_commands.add_parser("register", help="register node public keys (flwr supernode register)")
    register.add_argument("public_keys", nargs="+", type=Path, help="node.pub files from `cesagram node keygen`")
    register.add_argument("--superlink", required=True, help="HOST:PORT of the SuperLink")
    register.add_argument("--ca", required=True, type=Path, help="the federation's CA certificate")
    register.add_argument("--name", help="a name for the node (one key only)")

    run = server_commands.add_parser("run", help="launch a production run (Hydra overrides, federation=production)")
    run.add_argument("overrides", nargs="*", help="e.g. experiment=pilot federation.superlink=HOST:PORT")

    resume = server_commands.add_parser("resume", help="continue a production run from its last checkpoint")
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("--superlink", help="HOST:PORT, if the SuperLink moved")
    resume.add_argument("--ca", type=Path, help="CA certificate, if it moved")


def _handler(args: argparse.Namespace):
    key = tuple(part for part in (args.command, getattr(args, "subcommand", None)) if part)
    if key == ("evaluate",) and args.behaviour:
        key = ("evaluate", "--behaviour")
    module_name, func_name = HANDLERS[key].split(":")
    return getattr(importlib.import_module(module_name), func_name)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be, so that the same clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """A handler, not SIG_IGN: children started later must not inherit an ignored SIGTERM."""


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Once: a second signal during the clean-up (which is bounded) must not cut it short.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _ignore)
    raise Terminated(signum)


def stop_like_ctrl_c() -> dict[int, object]:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` in the main thread, as SIGINT raises KeyboardInterrupt.

    Without it Python dies on SIGTERM without running a ``finally``: the SuperLink, its
    SuperExec and Ray would stay behind, holding their ports. Returns the handlers it
    replaced (none outside the main thread, or where a caller set its own).
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _terminate) for sig in _STOP_SIGNALS if signal.getsignal(sig) is signal.SIG_DFL}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cesagram`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    if "simulate" in argv and all(a.startswith("-") for a in argv[: argv.index("simulate")]):
        # Everything after `simulate` belongs to Hydra (`--cfg job`, `-m`, `--help` included).
        split = argv.index("simulate")
        args = parser.parse_args(argv[: split + 1])
        args.hydra_args = argv[split + 1 :]
    else:
        args = parser.parse_args(argv)
    if args.command == "evaluate" and args.input is None and not args.behaviour:
        parser.error("evaluate needs INPUT (a labelled JSONL or PAN-2012 XML file), or --behaviour")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    replaced = stop_like_ctrl_c()
    try:
        return int(_handler(args)(args) or 0)
    except CesagramError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except Terminated as stop:
        print(f"stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for sig, handler in replaced.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
