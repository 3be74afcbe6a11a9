"""A production run: Hydra config -> run settings -> ``flwr run`` against the federation's SuperLink.

The coordinator composes ``conf/`` with ``federation=production`` (and any experiment), and
this module turns it into what Flower carries: the flat :class:`RunSettings` plus the
``deployment.*`` keys of :class:`DeploymentSettings` (SuperLink address and CA, how long
to wait for nodes, SecAgg+). It writes the run folder (``config.json``, ``run.json``, the
Flower App folder and a Flower connection under the run folder's own ``FLWR_HOME``), checks
that the SuperLink answers with a certificate of the federation's CA, and submits the run
with ``flwr run --stream``.

The ServerApp runs on the SuperLink's machine and writes the report, the checkpoints and
the model bundle into the run folder, so ``cesagram server run`` is meant to be run there
(the run folder path must mean the same on both sides).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from federation.errors import ConfigError
from deploy.flower_processes import (
    CLIENT_APP,
    SECAGG_CLIENT_APP,
    DeploymentError,
    parse_address,
    probe_tls,
    write_app_dir,
    write_connection,
)
from deploy.flower_run import submit_run
from deploy.settings import DEPLOYMENT_PREFIX, DeploymentSettings
from federation.io import atomic_write_json
from federation.progress import ProgressPrinter
from federation.runconfig import RunSettings
from conf.settings import build, compose, plain, settings_from_config
from server.secagg import SecAggSettings, check_secagg_compatible

__all__ = [
    "DEPLOYMENT_PREFIX",
    "DeploymentSettings",
    "compose_production",
    "launch",
    "production_settings",
]

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
_NO_ATTACKS = (
    "attack={kind} simulates misbehaving nodes in `cesagram simulate` only; a real node's "
    "behaviour is set by its own operator, never by the coordinator's run"
)


# -- composition -------------------------------------------------------------------------------
def compose_production(overrides: Sequence[str]) -> Any:
    """The root config with ``federation=production`` and ``overrides`` (Hydra's run dir resolved)."""
    overrides = list(overrides)
    if not any(o.lstrip("+~").startswith("federation=") for o in overrides):
        overrides.insert(0, "federation=production")
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if sep and key == "attack" and value not in ("none", "null", ""):
            raise ConfigError(_NO_ATTACKS.format(kind=value))
    try:
        cfg = compose(overrides, return_hydra_config=True)
    except ConfigError as error:
        if "not in 'ProductionFederationConfig'" not in str(error):
            raise
        raise ConfigError(
            f"{error}; that key sets up simulated federations (`cesagram simulate`) only: a real node's own "
            "operator sets its policy (`cesagram node start`)"
        ) from None
    if cfg.federation.kind != "production":
        raise ConfigError(
            f"federation={cfg.federation.kind!r} is not a production federation; "
            "`cesagram server run` needs federation=production (`cesagram simulate` runs simulations)"
        )
    return cfg


def _required_path(value: Any, key: str) -> Path:
    if value in (None, "", "???"):
        raise ConfigError(f"{key} is not set; give it on the command line, e.g. {key}=certs/ca.crt")
    return Path(str(value)).expanduser().resolve()


def production_settings(cfg: Any, *, run_dir: Path) -> tuple[RunSettings, DeploymentSettings]:
    """Validate the composed config; return the run's settings and its deployment settings.

    Notes
    -----
    The run settings are :func:`conf.settings.settings_from_config`'s, as for a simulation;
    nothing there concerns a node's privacy cap, data or ledger (each node takes those from
    its own ``--node-config``). Here: no simulated attack, and the deployment (SuperLink, CA, SecAgg+).
    """
    if cfg.attack.kind != "none":
        raise ConfigError(_NO_ATTACKS.format(kind=cfg.attack.kind))
    run = settings_from_config(cfg, run_dir=run_dir)
    federation = plain(cfg.federation)
    secagg = build(SecAggSettings, "federation.secagg", federation["secagg"])
    if secagg.enabled:
        check_secagg_compatible(
            strategy=run.strategy.name, privacy_mode=run.privacy.mode, required_nodes=run.required_nodes
        )
    superlink = str(federation["superlink"] or "")
    parse_address(superlink, what="federation.superlink")
    ca = _required_path(federation["root_certificates"], "federation.root_certificates")
    deployment = DeploymentSettings(
        superlink=superlink,
        root_certificates=str(ca),
        tls=True,
        node_authentication=federation["node_authentication"],
        wait_for_nodes_s=federation["wait_for_nodes_s"],
        secagg=secagg,
    )
    return run, deployment


# -- launching ---------------------------------------------------------------------------------
def save_run_files(run_dir: Path, *, cfg: Any | None, run: RunSettings, deployment: DeploymentSettings) -> None:
    """``config.json`` (the composed config, for the report) and ``run.json`` (what resume needs)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg is not None:
        from omegaconf import OmegaConf

        config = plain(OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]))
        atomic_write_json(run_dir / "config.json", config)
    atomic_write_json(run_dir / RUN_FILE, {**run.to_flat(), **deployment.to_flat()})


def load_run_file(run_dir: Path) -> tuple[RunSettings, DeploymentSettings]:
    """The settings a run was started with (``run.json``), for ``resume``."""
    path = run_dir / RUN_FILE
    try:
        flat = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: {run_dir} is not the folder of a `cesagram server run`") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: unreadable ({type(error).__name__}); it cannot be resumed") from None
    deployment = DeploymentSettings.from_run_config(flat)
    if deployment is None:
        raise ConfigError(f"{path} has no deployment settings: {run_dir} is not the folder of a production run")
    return RunSettings.from_flat(flat), deployment


def launch(
    run_dir: Path,
    *,
    run: RunSettings,
    deployment: DeploymentSettings,
    emit: Callable[[str], None] = print,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Submit the run to the SuperLink, print its progress, and return its report.

    Raises
    ------
    DeploymentError
        If the SuperLink cannot be reached or trusted, if ``flwr run`` fails, or if the
        run ended without a report.
    RuntimeFailure
        If the run did not end within ``timeout_s`` (``flwr run`` is then stopped).
    """
    ca = Path(deployment.root_certificates)
    probe_tls(deployment.superlink, ca_path=ca, what="federation.superlink")
    flat = {**run.to_flat(), **deployment.to_flat()}
    clientapp = SECAGG_CLIENT_APP if deployment.secagg.enabled else CLIENT_APP
    app_dir = write_app_dir(run_dir / ".flower-app", flat, clientapp=clientapp)
    flwr_home = run_dir / ".flwr"
    connection = write_connection(flwr_home, address=deployment.superlink, root_certificates=ca)
    progress = run_dir / "progress.jsonl"
    done = len(progress.read_text(encoding="utf-8").splitlines()) if progress.exists() else 0
    printer = ProgressPrinter(progress, emit, done)
    log_path = run_dir / "flower.log"
    printer.start()
    launched_at = time.time()
    try:
        status = submit_run(app_dir, connection, flwr_home=flwr_home, log_path=log_path, timeout_s=timeout_s)
    finally:
        printer.stop()
    report_path = run_dir / "report.json"
    fresh = report_path.is_file() and report_path.stat().st_mtime >= launched_at - 1.0
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8")) if fresh else {}
    if status != 0 or report.get("run_id") != run.run_id:
        hint = (
            f"; resume it with `cesagram server resume {run_dir}`" if (run_dir / "checkpoint.npz").exists() else ""
        )
        raise DeploymentError(
            f"the run stopped before writing its report (flwr run exited with {status}); "
            f"see {log_path}{hint}"
        )
    return report


def summary_lines(report: Mapping[str, Any], run_dir: Path) -> list[str]:
    """What the coordinator reads at the end of a run."""
    lines = []
    final = report.get("final") or report.get("federated_validation") or {}
    shown = [f"{key} {final[key]:.3f}" for key in ("f05", "f1", "auprc") if isinstance(final.get(key), (int, float))]
    if shown:
        lines.append(("test set: " if report.get("final") else "nodes' validation data: ") + ", ".join(shown))
    protections = report.get("protections") or {}
    if protections:
        lines.append("protections: " + ", ".join(f"{k}={'on' if v else 'off'}" for k, v in protections.items()))
    for name, node in sorted((report.get("nodes") or {}).items()):
        if node.get("missed_rounds") or node.get("failed") or node.get("declined"):
            lines.append(
                f"node {name}: trained in rounds {node.get('rounds')}, missed {node.get('missed_rounds')}, "
                f"failed in {sorted(node.get('failed') or {})}, declined in {sorted(node.get('declined') or {})}"
            )
    lines.append(f"run folder: {run_dir}")
    return lines


def rounds_done(report: Mapping[str, Any]) -> int:
    return len(report.get("rounds") or [])
