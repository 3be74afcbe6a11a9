"""The node operator's commands: ``cesagram node keygen | init | check | start``.

A node operator (a helpline, a police unit, a platform) runs a Flower SuperNode next to
its own data. These commands check everything that can be checked before the SuperNode
starts, so that a wrong path, key or certificate costs one clear line, not a retry loop:

- ``keygen DIR``: the node's key pair for SuperNode authentication (``node.pub`` goes to
  the coordinator, ``node.key`` never leaves the node);
- ``init LEDGER --cap EPSILON``: the node's privacy ledger and its secret, once;
- ``check DATA``: the data check, plus the noise and epsilon a planned run would cost;
- ``start``: checks the key, the CA, the data, the ledger and the SuperLink's certificate,
  then runs ``flower-supernode`` (through :mod:`clients.supernode_guard`, which refuses
  apps the operator did not accept) with TLS, the authentication key and the node's own
  data path, ledger, privacy cap and policy as its ``--node-config``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import socket
import subprocess
import json
import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import IO

from federation.privacy.node_policy import (
    DERIVED_FIELDS,
    NodePolicy,
    create_secret,
    policy_from_values,
    read_secret,
    secret_path_for,
)
from clients.supernode_guard import ACCEPT_ENV, INSTALLED_RULE, NAME_ENV, check_accepted
from federation.data.check import check_file
from federation.data.load import read_conversations
from federation.data.split import split_validation
from federation.errors import ConfigError, DataError, DeploymentError, LedgerError
from deploy.flower_processes import die_with_parent, flower_bin, flower_env, parse_address, probe_tls
from deploy.pki import check_ca_certificate, check_node_private_key, generate_node_keys
from federation.privacy.accounting import epsilon_of
from federation.privacy.ledger import PrivacyLedger
from federation.privacy.plan import plan_run
from federation.training import TrainSettings, steps_per_call

log = logging.getLogger(__name__)

#: Default port of the SuperNode's local Runtime API (Flower's default); one per node on a machine.
RUNTIME_PORT = 9094


# -- keygen ------------------------------------------------------------------------------------
def keygen_command(args: argparse.Namespace) -> int:
    """Write ``DIR/node.key`` and ``DIR/node.pub``; print what to do with each.

    Notes
    -----
    The private key authenticates this node to the SuperLink; anyone holding it can join
    the federation as this node. It is written with mode 0600 and never overwritten.
    """
    private, public = generate_node_keys(Path(args.dir))
    print(f"private key: {private}  (keep it on this machine; `cesagram node start --key {private}`)")
    print(f"public key:  {public}  (send it to the coordinator, who registers it with the SuperLink)")
    return 0


# -- check -------------------------------------------------------------------------------------
def _planned_spend(args: argparse.Namespace, conversations: int, train_count: int) -> list[str]:
    """What a run of ``args.rounds`` rounds would cost this node, as lines for the operator."""
    settings = TrainSettings(local_epochs=float(args.epochs), batch_size=int(args.batch_size))
    steps = steps_per_call(settings, num_examples=train_count)
    sample_rate = min(settings.batch_size, train_count) / train_count
    history: list[tuple[float, float, int]] = []
    cap = args.cap
    delta = args.delta
    source = "no ledger given: nothing spent yet"
    accountant = "rdp"
    if args.ledger is not None:
        ledger = PrivacyLedger.open(Path(args.ledger))
        history = [tuple(step) for step in ledger.history]  # type: ignore[misc]
        delta = ledger.delta
        accountant = ledger.accountant
        cap = min(cap, ledger.cap) if cap is not None else ledger.cap
        source = f"ledger {args.ledger}"
    spent = epsilon_of(history, delta=delta, accountant=accountant) if history else 0.0
    cap = cap if cap is not None else spent + args.epsilon
    plan = plan_run(
        history=history,
        delta=delta,
        cap=cap,
        run_epsilon=args.epsilon,
        sample_rate=sample_rate,
        planned_steps=steps * args.rounds,
        created="planning only",
        accountant=accountant,
    )
    return [
        f"planned run: {args.rounds} rounds x {steps} DP-SGD steps on {train_count} of {conversations} conversations "
        f"(the rest is validation), Poisson sample rate {sample_rate:.4g}",
        f"  already spent: epsilon {spent:.4f} at delta {delta:g} ({source}); cap {cap:g}",
        f"  noise multiplier {plan.noise_multiplier:.4f} -> epsilon {plan.target_epsilon:.4f} after the run "
        f"(this run: +{plan.target_epsilon - spent:.4f}; {accountant} accountant, unit: one conversation)",
    ]


def _conf_defaults() -> dict[str, float]:
    """The run settings a coordinator's ``cesagram server run`` gets by default (composed from ``conf/``)."""
    from conf.settings import default_settings

    run = default_settings()
    return {
        "rounds": run.rounds,
        "epsilon": run.privacy.epsilon,
        "batch_size": run.train.batch_size,
        "epochs": run.train.local_epochs,
        "validation_fraction": run.evaluation.validation_fraction,
    }


def node_check_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram node check DATA``: the data check and the planned privacy spend.

    Returns 1 when the data has bad records (nothing is planned then), else 0.

    Notes
    -----
    Prints counts and privacy figures only, never text or author ids. The figures use the
    same calibration a node makes at its first training call of a run; the coordinator's
    run settings (rounds, epsilon, batch size, epochs) decide the real ones.
    """
    for key, value in _conf_defaults().items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.rounds < 1:
        raise ConfigError(f"--rounds {args.rounds} must be >= 1")
    if args.epsilon <= 0:
        raise ConfigError(f"--epsilon {args.epsilon} must be > 0")
    check = check_file(Path(args.data), predators=args.predators, max_issues=args.max_issues)
    for line in check.lines:
        print(line)
    if not check.ok:
        return 1
    conversations = list(check.conversations)
    seed = args.seed
    secret = secret_path_for(Path(args.ledger)) if args.ledger is not None else None
    if secret is not None and secret.exists():  # the split the node itself makes (from its secret)
        seed = policy_from_values({}, secret=read_secret(secret)).split_seed
    train, _ = split_validation(conversations, fraction=args.validation_fraction, seed=seed)
    if not train:
        raise DataError(f"{args.data}: no conversation left for training after the validation split")
    for line in _planned_spend(args, len(conversations), len(train)):
        print(line)
    return 0


# -- start -------------------------------------------------------------------------------------
def _toml_string(value: str, *, what: str) -> str:
    """Quote ``value`` so that Flower's ``--node-config`` parser reads it back unchanged.

    Flower splits the string with a regular expression that knows no escapes: a value is
    a TOML literal string (single quotes) or, when it holds a single quote, a basic one.
    """
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    if '"' not in value and "\n" not in value:
        return '"' + value.replace("\\", "\\\\") + '"'
    raise ConfigError(f"{what} {value!r} holds both quote characters (or a newline); rename it")


def _toml_scalar(value: object, *, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _toml_string(str(value), what=what)


def node_config_string(
    *,
    data: Path,
    ledger: Path,
    cap: float,
    delta: float,
    name: str,
    kind: str,
    secret: Path | None = None,
    policy: Mapping[str, object] | None = None,
) -> str:
    """The SuperNode's ``--node-config``: what :mod:`clients.node_settings` and :mod:`federation.privacy.node_policy` read."""
    parts = [
        f"data-path={_toml_string(str(data), what='--data')}",
        f"ledger-path={_toml_string(str(ledger), what='--ledger')}",
        f"cap={float(cap)!r}",
        f"delta={float(delta)!r}",
        f"name={_toml_string(name, what='--name')}",
        f"kind={_toml_string(kind, what='--kind')}",
    ]
    if secret is not None:
        parts.append(f"secret-path={_toml_string(str(secret), what='--ledger')}")
    for key, value in (policy or {}).items():
        parts.append(f"{key}={_toml_scalar(value, what=key)}")
    return " ".join(parts)


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DeploymentError(
                f"--runtime-port {port} on 127.0.0.1 is in use (another SuperNode on this machine?); "
                "give each node its own with --runtime-port"
            ) from None


def _check_data(path: Path) -> int:
    result = read_conversations(path, max_issues=1)
    if not result.ok:
        raise DataError(
            f"{path} has {result.total_issues} bad record(s), the first: {result.issues[0]}; "
            f"run `cesagram node check {path}` and fix them before starting the node"
        )
    if not result.conversations:
        raise DataError(f"{path} holds no conversation; a node needs data to train")
    return len(result.conversations)


def _open_ledger(path: Path, *, cap: float, delta: float) -> str:
    """Open the node's existing ledger (never create one); return a line for the operator.

    A missing ledger is refused, not replaced by a fresh budget: it may have been lost or
    moved, and only the operator knows which (``cesagram node init`` creates one).
    """
    if not (path.exists() or path.is_symlink()):
        raise LedgerError(
            f"--ledger {path}: no privacy ledger there; if this node never had one, create it with "
            f"`cesagram node init {path} --cap {cap:g} --delta {delta:g}`, else restore it from the backup"
        )
    ledger = PrivacyLedger.open(path)
    if ledger.delta != delta:
        raise LedgerError(
            f"{path} was kept at delta {ledger.delta:g}, not --delta {delta:g}; a ledger keeps one delta for life"
        )
    effective = min(cap, ledger.cap)
    note = "" if cap <= ledger.cap else f" (--cap {cap:g} is above the ledger's cap; {ledger.cap:g} applies)"
    return (
        f"privacy ledger {path}: epsilon {ledger.spent:.4f} spent of cap {effective:g} at delta {delta:g} "
        f"({ledger.accountant} accountant){note}"
    )


# -- init --------------------------------------------------------------------------------------
def node_init_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram node init LEDGER --cap EPSILON [--delta D]``: the ledger and the node secret.

    Notes
    -----
    Refuses to touch an existing ledger (its spend is the node's only memory). The secret
    (``<ledger>.secret``, mode 0600) seeds the validation split and the training
    randomness; it never leaves the node, so the coordinator can neither choose nor
    predict which conversations are held out. Back both files up together.
    """
    path = Path(args.ledger).resolve()
    if not args.cap > 0:
        raise ConfigError(f"--cap {args.cap} must be > 0 (the node's lifetime epsilon)")
    if not 0 < args.delta < 1:
        raise ConfigError(f"--delta {args.delta} must be in (0, 1), e.g. 1e-5")
    if path.exists() or path.is_symlink():
        raise LedgerError(f"{path} already exists; a ledger is created once (see `cesagram node budget {path}`)")
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: folder {path.parent} does not exist; create it first")
    secret = secret_path_for(path)
    if not secret.exists():
        create_secret(secret)
    accountant = getattr(args, "accountant", None) or "rdp"
    PrivacyLedger.create(path, node=args.name or path.stem, cap=args.cap, delta=args.delta, accountant=accountant)
    print(
        f"created privacy ledger {path} (cap epsilon {args.cap:g}, delta {args.delta:g}, accountant {accountant}) "
        f"and node secret {secret} "
        "(mode 0600): the ledger is this node's record of what it has spent, the secret picks its validation "
        "split; back both up and never delete them"
    )
    return 0


def policy_from_args(args: argparse.Namespace) -> NodePolicy:
    """The node policy from ``cesagram node start``'s flags (defaults: the safe ones)."""
    values: dict[str, object] = {}
    accept = list(args.accept_privacy or ["record"])
    if "none" in accept or "central" in accept:
        if not args.allow_test_privacy:
            raise ConfigError(
                f"--accept-privacy {','.join(accept)} lets runs train without record-level DP; add "
                "--allow-test-privacy to confirm this node is a test federation's"
            )
    values["accept-privacy"] = ",".join(dict.fromkeys(accept))
    if getattr(args, "accept_audit", None):
        values["accept-audit"] = ",".join(dict.fromkeys(args.accept_audit))
    for name in (field.name for field in fields(NodePolicy)):
        if name in DERIVED_FIELDS or name in ("accept_privacy", "accept_audit"):
            continue  # the node's own; or a repeated flag, joined above
        value = getattr(args, name, None)  # `--max-rounds` for max_rounds: one flag per field
        if value is not None:
            values[name.replace("_", "-")] = str(Path(value).resolve()) if name == "cache_dir" else value
    return policy_from_values(values)


def _accepted_apps(args: argparse.Namespace) -> list[str]:
    try:
        return sorted({check_accepted(v) for v in (args.accept_app or [INSTALLED_RULE])})
    except ValueError as error:
        raise ConfigError(str(error)) from None


_EXIT_CODE = re.compile(r"Exit Code: (\d+)")


def explain_supernode_exit(status: int, output: str, *, key: Path) -> str:
    """One line saying why ``flower-supernode`` stopped, from its exit status and last output."""
    if "Failed to activate SuperNode" in output or "[code: 2004]" in output:
        public = key.with_suffix(".pub")
        return (
            f"the SuperLink refused this node's key: its public key ({public}) is not registered; send it to "
            "the coordinator, who registers it with `flwr supernode register` (or `cesagram server register`)"
        )
    if "CERTIFICATE_VERIFY_FAILED" in output or "SSL/TLS handshake" in output:
        return "the SuperLink's certificate does not verify against --ca; check that it is the coordinator's ca.crt"
    code = _EXIT_CODE.search(output)
    reason = next(
        (line.strip() for line in reversed(output.splitlines()) if "Error" in line or "error" in line),
        "see the lines above",
    )
    flower = f" (Flower exit code {code.group(1)})" if code else ""
    return f"the SuperNode stopped with status {status}{flower}: {reason[:300]}"


def _relay(stream: IO[bytes], tail: deque[str]) -> None:
    """Copy the SuperNode's output to ours, keeping the last lines to explain a failure."""
    for raw in stream:
        line = raw.decode("utf-8", errors="replace")
        tail.append(line)
        sys.stdout.write(line)
        sys.stdout.flush()


def _stop_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the SuperNode's process group (Flower's SuperExec runs in it)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _run_supernode(argv: list[str], *, env: dict[str, str], key: Path) -> int:
    """Run ``flower-supernode`` in its own process group, relaying its output.

    When it exits, whatever it left in its group (Flower's SuperExec) is stopped too, and a
    failed start becomes one line. SIGTERM and SIGHUP are forwarded; if this command is
    killed outright (SIGKILL, the OOM killer), the kernel sends the SuperNode SIGTERM
    (:func:`die_with_parent`) and Flower's SuperExec and ClientApps follow their parent.
    """
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 - only arms the parent-death signal
    )
    stdout = process.stdout
    if stdout is None:  # Popen(stdout=PIPE) always gives one
        raise DeploymentError("could not read the SuperNode's output")
    tail: deque[str] = deque(maxlen=40)
    relay = threading.Thread(target=_relay, args=(stdout, tail), daemon=True)
    relay.start()

    def forward(signum: int, _frame: FrameType | None) -> None:
        _stop_group(process, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    interrupted = False
    try:
        while True:
            try:
                status = process.wait()
                break
            except KeyboardInterrupt:
                interrupted = True
                _stop_group(process, signal.SIGINT)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_group(process, signal.SIGTERM)
        relay.join(timeout=5.0)
        _stop_group(process, signal.SIGKILL)
    if interrupted or status in (0, -signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP):
        print("node stopped", flush=True)
        return 0
    raise DeploymentError(explain_supernode_exit(status, "".join(tail), key=key))


def node_start_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram node start``: check everything, then run the SuperNode.

    Returns
    -------
    int
        0 when the SuperNode was stopped (Ctrl-C, SIGTERM). A missing or unreadable file,
        a key or CA of the wrong kind, bad data, a corrupt ledger, an unreachable SuperLink
        or one whose certificate this CA did not sign raise a one-line error before Flower
        starts; a SuperLink that refuses the key, one after.

    Notes
    -----
    The cap and the node policy are this node's own: they travel in the SuperNode's
    ``--node-config``, and the ClientApp declines whatever falls outside them, whatever the
    coordinator's run config says. The ledger must exist (``cesagram node init``): a missing
    one is refused, never replaced by a fresh budget. What leaves the node is the allow-list
    of :mod:`clients.allow_list`: weights after DP training, rounded counts, bounded score
    histograms, the epsilon spent and the node's name and kind; never a conversation, a
    text, an author id, a loss or a per-conversation score. The SuperNode runs through
    :mod:`clients.supernode_guard`, which refuses runs of apps the operator did not accept.
    """
    key, ca = Path(args.key), Path(args.ca)
    data, ledger = Path(args.data).resolve(), Path(args.ledger).resolve()
    if not args.cap > 0:
        raise ConfigError(f"--cap {args.cap} must be > 0 (the node's lifetime epsilon)")
    if not 0 < args.delta < 1:
        raise ConfigError(f"--delta {args.delta} must be in (0, 1), e.g. 1e-5")
    parse_address(args.superlink)
    check_node_private_key(key)
    check_ca_certificate(ca)
    name = args.name or data.stem
    policy = policy_from_args(args)
    accepted = _accepted_apps(args)
    secret = secret_path_for(ledger)
    print(_open_ledger(ledger, cap=args.cap, delta=args.delta), flush=True)
    read_secret(secret)
    if policy.cache_dir:
        Path(policy.cache_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    conversations = _check_data(data)
    _check_port_free(args.runtime_port)
    probe_tls(args.superlink, ca_path=ca, timeout_s=args.probe_timeout)
    print(
        f"starting SuperNode {name!r} ({args.kind}, {conversations} conversations) -> {args.superlink} "
        f"with TLS and node authentication; cap epsilon {args.cap:g} at delta {args.delta:g}",
        flush=True,
    )
    print(
        f"node policy: privacy {','.join(policy.accept_privacy)}; audits {','.join(policy.accept_audit)}; "
        f"runs of at most {policy.max_rounds} rounds; "
        f"histograms of at most {policy.max_histogram_bins} bins; {policy.max_evaluations_per_run} evaluations "
        f"per run, {policy.max_evaluations_per_day} per day; cache {policy.cache_folder}; "
        f"apps accepted: {', '.join(accepted)}",
        flush=True,
    )
    node_config = node_config_string(
        data=data,
        ledger=ledger,
        cap=args.cap,
        delta=args.delta,
        name=name,
        kind=args.kind,
        secret=secret,
        policy=policy.to_node_config(),
    )
    argv = [
        sys.executable,
        "-m",
        "clients.supernode_guard",
        "--superlink",
        args.superlink,
        "--root-certificates",
        str(ca.resolve()),
        "--auth-supernode-private-key",
        str(key.resolve()),
        "--node-config",
        node_config,
        "--host",
        "127.0.0.1",
        "--port",
        str(args.runtime_port),
    ]
    flower_bin("flower-supernode")  # the guard runs Flower's SuperNode in-process: it must be installed
    env = flower_env(None, {ACCEPT_ENV: json.dumps(accepted), NAME_ENV: name})
    return _run_supernode(argv, env=env, key=key)
