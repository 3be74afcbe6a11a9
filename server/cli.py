"""The coordinator's commands: ``cesagram server certs | start | register | run | resume``.

- ``certs DIR --host NAME...``: a pilot CA and the SuperLink's certificate (an organisation
  with its own PKI passes its own files to ``start`` instead);
- ``start``: checks the certificates, then becomes ``flower-superlink`` with TLS, SuperNode
  authentication and its state in a database file;
- ``register PUB...``: registers node public keys through Flower's own
  ``flwr supernode register``;
- ``run [hydra overrides]``: composes ``federation=production`` and submits the run;
- ``resume RUN_DIR``: continues a run from its last checkpoint after a crash.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from federation.errors import ConfigError, DeploymentError
from deploy.flower_processes import die_with_parent, flower_bin, flower_env, probe_tls, write_connection
from deploy.pki import (
    CA_CERT,
    SERVER_CERT,
    SERVER_KEY,
    check_ca_certificate,
    check_node_public_key,
    generate_pilot_certificates,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 9092


# -- certs -------------------------------------------------------------------------------------
def _ca_passphrase(args: argparse.Namespace) -> bytes | None:
    """The CA key's passphrase: from ``--ca-passphrase-file``, or asked twice with ``--encrypt-ca-key``."""
    if getattr(args, "ca_passphrase_file", None):
        path = Path(args.ca_passphrase_file)
        try:
            text = path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as error:
            raise ConfigError(f"--ca-passphrase-file {path}: cannot read it ({error.strerror})") from None
        return text.encode("utf-8")
    if getattr(args, "encrypt_ca_key", False):
        import getpass

        first = getpass.getpass("passphrase for the CA key: ")
        if first != getpass.getpass("the same passphrase again: "):
            raise ConfigError("the two passphrases differ; nothing was written")
        return first.encode("utf-8")
    return None


def certs_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram server certs DIR --host NAME...``."""
    passphrase = _ca_passphrase(args)
    paths = generate_pilot_certificates(
        Path(args.dir), hosts=args.host, valid_days=args.valid_days, ca_passphrase=passphrase
    )
    print(f"CA certificate:        {paths.ca_cert}  (send to every node operator: `cesagram node start --ca`)")
    protection = "encrypted with your passphrase" if passphrase is not None else "NOT encrypted"
    print(
        f"CA key:                {paths.ca_key}  ({protection}; move {paths.ca_key.parent} offline now: "
        "the SuperLink never needs it, anyone holding it can impersonate the SuperLink)"
    )
    print(f"SuperLink certificate: {paths.server_cert}  (names {', '.join(paths.hosts)})")
    print(f"SuperLink key:         {paths.server_key}")
    print(f"next: cesagram server start --certs {args.dir}")
    return 0


# -- start -------------------------------------------------------------------------------------
def _load_server_files(ca_path: Path, cert_path: Path, key_path: Path) -> x509.Certificate:
    """Check that the certificate and key belong together and that the CA signed the certificate."""
    ca = check_ca_certificate(ca_path)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{cert_path}: SuperLink certificate not found; create one with `cesagram server certs`") from None
    except (OSError, ValueError):
        raise ConfigError(f"{cert_path}: not a readable PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"{key_path}: SuperLink private key not found") from None
    except (OSError, ValueError, TypeError):
        raise ConfigError(f"{key_path}: not a readable, unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    if key.public_key().public_bytes(pem, public) != cert.public_key().public_bytes(pem, public):
        raise ConfigError(f"{key_path} is not the key of {cert_path}; pass the matching pair")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ConfigError(f"{cert_path} was not signed by {ca_path}; nodes would refuse it") from None
    now = dt.datetime.now(dt.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ConfigError(f"{cert_path} is not valid now (valid {cert.not_valid_before_utc} to {cert.not_valid_after_utc})")
    return cert


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise DeploymentError(
                f"cannot listen on {host}:{port} ({error.strerror}); is a SuperLink already running? choose --port"
            ) from None


#: Flower 1.42 still starts its older gRPC Control API (``--control-api-address``, default
#: ``0.0.0.0:9093``) beside the HTTP one, with the same (no-op) authentication: anyone who
#: reaches it can submit a run. It is bound to loopback; runs are submitted over ``--port``.
LEGACY_CONTROL_ADDRESS = "127.0.0.1:9093"


def superlink_argv(
    *, ca: Path, cert: Path, key: Path, host: str, port: int, database: Path,
    control_address: str = LEGACY_CONTROL_ADDRESS,
) -> list[str]:  # fmt: skip
    """``flower-superlink`` with TLS, SuperNode authentication, a database file and its gRPC Control API on loopback."""
    return [
        flower_bin("flower-superlink"),
        "--ssl-ca-certfile",
        str(ca),
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        "--enable-supernode-auth",
        "--database",
        str(database),
        "--host",
        host,
        "--port",
        str(port),
        "--control-api-address",
        control_address,
        "--isolation",
        "subprocess",
        "--disable-runtime-dependency-installation",
    ]


def start_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram server start``: check, then replace this process by the SuperLink.

    Notes
    -----
    TLS and SuperNode authentication are always on: only nodes whose public key was
    registered can join, and every byte between nodes and SuperLink is encrypted. The
    SuperLink keeps registered nodes and runs in ``--database``, so a restart keeps them.
    """
    certs = Path(args.certs) if args.certs else None
    ca = Path(args.ca) if args.ca else (certs / CA_CERT if certs else None)
    cert = Path(args.cert) if args.cert else (certs / SERVER_CERT if certs else None)
    key = Path(args.key) if args.key else (certs / SERVER_KEY if certs else None)
    if ca is None or cert is None or key is None:
        raise ConfigError("give --certs DIR (from `cesagram server certs`) or all of --ca, --cert and --key")
    certificate = _load_server_files(ca, cert, key)
    database = Path(args.database).resolve()
    if not database.parent.is_dir():
        raise ConfigError(f"--database {database}: folder {database.parent} does not exist; create it first")
    _check_port(args.host, args.port)
    env = flower_env(None if "FLWR_HOME" in os.environ else database.parent / ".flwr")
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dialable = ", ".join(str(n.value) for n in names)
    if args.host in ("0.0.0.0", "::"):
        print(f"listening on all interfaces, port {args.port}; nodes dial one of: {dialable}", flush=True)
    else:
        print(f"listening on {args.host}:{args.port} only; nodes dial one of: {dialable}", flush=True)
    print(f"TLS: {cert} (CA {ca}); SuperNode authentication on; state in {database}", flush=True)
    print(
        f"register each node's node.pub: cesagram server register node.pub --superlink HOST:{args.port} --ca {ca}",
        flush=True,
    )
    argv = superlink_argv(ca=ca.resolve(), cert=cert.resolve(), key=key.resolve(), host=args.host, port=args.port, database=database)
    os.execve(argv[0], argv, env)
    return 0  # not reached


# -- register ----------------------------------------------------------------------------------
def register_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram server register PUB... --superlink HOST:PORT --ca CA``.

    Runs Flower's own ``flwr supernode register`` once per key, with a Flower connection
    written to a temporary ``FLWR_HOME`` (the user's Flower config is not touched).
    """
    ca = Path(args.ca)
    check_ca_certificate(ca)
    keys = [Path(k) for k in args.public_keys]
    for key in keys:
        check_node_public_key(key)
    probe_tls(args.superlink, ca_path=ca)
    with tempfile.TemporaryDirectory(prefix="cesagram-flwr-") as home:
        connection = write_connection(Path(home), address=args.superlink, root_certificates=ca)
        for key in keys:
            command = [flower_bin("flwr"), "supernode", "register", str(key.resolve()), connection, "--format", "json"]
            if args.name and len(keys) == 1:
                command += ["--name", args.name]
            completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
                command, env=flower_env(Path(home)), capture_output=True, text=True, timeout=120, check=False,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - only arms the parent-death signal
            )
            node_id = _registered_id(completed.stdout)
            if completed.returncode != 0 or node_id is None:
                reason = _last_line(completed.stdout + "\n" + completed.stderr)
                raise DeploymentError(f"registering {key} failed: {reason}")
            print(f"registered {key} as SuperNode {node_id}")
    return 0


def _json_output(stdout: str) -> dict:
    start = stdout.find("{")
    if start < 0:
        return {}
    try:
        data = json.loads(stdout[start:])
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _registered_id(stdout: str) -> int | None:
    data = _json_output(stdout)
    return int(data["node-id"]) if data.get("success") and "node-id" in data else None


def _last_line(text: str) -> str:
    message = str(_json_output(text).get("error-message", "")) or text
    lines = [line.strip() for line in message.splitlines() if line.strip() and not line.startswith("Using SuperLink")]
    return lines[-1][:300] if lines else "no output"


# -- run / resume ------------------------------------------------------------------------------
def _print_summary(report: dict, run_dir: Path) -> int:
    from server.production import rounds_done, summary_lines

    for line in summary_lines(report, run_dir):
        print(line, flush=True)
    planned = int((report.get("deployment") or {}).get("rounds_planned", rounds_done(report)))
    if rounds_done(report) < planned:
        notes = report.get("notes") or []
        why = notes[-1] if notes else "see report.md"
        print(
            f"error: the run stopped after {rounds_done(report)} of {planned} rounds: {why}; "
            f"resume with `cesagram server resume {run_dir}`",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram server run [hydra overrides]``."""
    from server.production import compose_production, launch, production_settings, save_run_files

    overrides = [a for a in args.overrides if a != "--"]
    cfg = compose_production(overrides)
    run_dir = Path(str(cfg.hydra.run.dir)).resolve()
    run, deployment = production_settings(cfg, run_dir=run_dir)
    probe_tls(deployment.superlink, ca_path=Path(deployment.root_certificates), what="federation.superlink")
    save_run_files(run_dir, cfg=cfg, run=run, deployment=deployment)
    print(f"run {run.run_id}: {run.rounds} rounds, {run.nodes} nodes expected (at least {run.required_nodes} per round)"
          f", SecAgg+ {'on' if deployment.secagg.enabled else 'off'}; run folder {run_dir}", flush=True)
    report = launch(run_dir, run=run, deployment=deployment)
    return _print_summary(report, run_dir)


def resume_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram server resume RUN_DIR``: continue from the last checkpoint.

    Notes
    -----
    The run keeps its run id, so each node's ledger continues the run's noise plan
    instead of planning a new run; rounds already recorded are not trained again.
    """
    from dataclasses import replace

    from server.checkpoint import load_checkpoint
    from server.production import launch, load_run_file, save_run_files

    run_dir = Path(args.run_dir).resolve()
    run, deployment = load_run_file(run_dir)
    checkpoint = load_checkpoint(run_dir)
    if checkpoint is not None and checkpoint.run_id != run.run_id:
        raise ConfigError(f"{run_dir}: the checkpoint is of run {checkpoint.run_id}, the folder's run is {run.run_id}")
    report_path = run_dir / "report.json"
    if checkpoint is not None and checkpoint.round >= run.rounds and report_path.is_file():
        print(f"{run_dir}: all {run.rounds} rounds are done and the report is written; nothing to resume")
        return 0
    deployment = replace(
        deployment,
        resume=True,
        superlink=args.superlink or deployment.superlink,
        root_certificates=str(Path(args.ca).resolve()) if args.ca else deployment.root_certificates,
    )
    save_run_files(run_dir, cfg=None, run=run, deployment=replace(deployment, resume=False))
    done = checkpoint.round if checkpoint is not None else 0
    print(f"resuming run {run.run_id} after round {done} of {run.rounds}; run folder {run_dir}", flush=True)
    report = launch(run_dir, run=run, deployment=deployment)
    return _print_summary(report, run_dir)
