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
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.errors import ConfigError
from deploy.flower_processes import (
    CLIENT_APP,
    SECAGG_CLIENT_APP,
    DeploymentError,
    die_with_parent,
    flower_bin,
    flower_env,
    parse_address,
    probe_tls,
    write_app_dir,
    write_connection,
)
from federation.io import atomic_write_json
from federation.progress import ProgressPrinter
from federation.runconfig import RunSettings, Scalar, flatten, unflatten
from server.secagg import SecAggSettings, check_secagg_compatible

__all__ = [
    "DEPLOYMENT_PREFIX",
    "DeploymentSettings",
    "compose_production",
    "launch",
    "production_settings",
]

log = logging.getLogger(__name__)

DEPLOYMENT_PREFIX = "deployment."
RUN_FILE = "run.json"
GROUPS = ("data", "model", "privacy", "strategy", "federation", "attack", "experiment")
_NO_ATTACKS = (
    "attack={kind} simulates misbehaving nodes in `cesagram simulate` only; a real node's "
    "behaviour is set by its own operator, never by the coordinator's run"
)


@dataclass(frozen=True)
class DeploymentSettings:
    """The production part of a run's settings (flat keys ``deployment.*`` in the run config).

    Notes
    -----
    ``tls`` is true only when ``cesagram server run`` verified the SuperLink's certificate
    against ``root_certificates`` before submitting; ``node_authentication`` states that the
    SuperLink was started by ``cesagram server start`` (which always enables SuperNode
    authentication). Both are written into the report's protections.
    """

    superlink: str
    root_certificates: str
    tls: bool = True
    node_authentication: bool = True
    wait_for_nodes_s: float = 600.0
    resume: bool = False
    secagg: SecAggSettings = field(default_factory=SecAggSettings)

    def __post_init__(self) -> None:
        if self.wait_for_nodes_s <= 0:
            raise ConfigError(f"federation.wait_for_nodes_s={self.wait_for_nodes_s!r} must be > 0 (seconds)")

    def to_flat(self) -> dict[str, Scalar]:
        return flatten(self, DEPLOYMENT_PREFIX)

    @classmethod
    def from_run_config(cls, flat: Mapping[str, Any]) -> DeploymentSettings | None:
        """The deployment settings of a production run; None for a simulated run."""
        if f"{DEPLOYMENT_PREFIX}superlink" not in flat:
            return None
        return unflatten(cls, flat, DEPLOYMENT_PREFIX)


# -- composition -------------------------------------------------------------------------------
def _conf_dir() -> Path:
    import conf

    return Path(conf.__file__).resolve().parent


def _check_group_overrides(overrides: Sequence[str]) -> None:
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if sep and key == "attack" and value not in ("none", "null", ""):
            raise ConfigError(_NO_ATTACKS.format(kind=value))
        if sep and key in GROUPS and value not in ("null", ""):
            options = sorted(p.stem for p in (_conf_dir() / key).glob("*.yaml"))
            if value not in options:
                raise ConfigError(f"{key}={value!r} is not allowed; choose one of: {', '.join(options)}")


def compose_production(overrides: Sequence[str]) -> Any:
    """The root config with ``federation=production`` and ``overrides`` (Hydra's run dir resolved)."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    overrides = list(overrides)
    if not any(o.lstrip("+~").startswith("federation=") for o in overrides):
        overrides.insert(0, "federation=production")
    _check_group_overrides(overrides)
    try:
        with initialize_config_module(config_module="conf", version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except HydraException as error:
        raise ConfigError(str(error).splitlines()[0]) from None
    if cfg.federation.get("kind") != "production":
        raise ConfigError(
            f"federation={cfg.federation.get('kind')!r} is not a production federation; "
            "`cesagram server run` needs federation=production (`cesagram simulate` runs simulations)"
        )
    return cfg


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)


def _build(cls: type, section: str, values: Mapping[str, Any]) -> Any:
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{section}: {error}".replace("__init__() ", "")) from None


def _required_path(value: Any, key: str) -> Path:
    if value in (None, "", "???"):
        raise ConfigError(f"{key} is not set; give it on the command line, e.g. {key}=certs/ca.crt")
    return Path(str(value)).expanduser().resolve()


def new_run_id() -> str:
    """A run id that sorts by time and never repeats (ledgers key their noise plans by it)."""
    import secrets

    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def production_settings(cfg: Any, *, run_dir: Path) -> tuple[RunSettings, DeploymentSettings]:
    """Validate the composed config; return the run's settings and its deployment settings.

    Notes
    -----
    Nothing here concerns a node's privacy cap, data or ledger: each node takes those from
    its own ``--node-config`` and the run config cannot override them. ``privacy.epsilon``
    is what this run asks each node to spend at most; a node spends less when its own cap
    leaves less.
    """
    from hydra.utils import instantiate

    from federation.models.spec import ModelSpec
    from federation.runconfig import EvaluationSettings, PrivacySettings, StrategySettings
    from federation.training import TrainSettings

    federation = cfg.federation
    if cfg.get("attack") is not None and cfg.attack.get("kind", "none") != "none":
        raise ConfigError(_NO_ATTACKS.format(kind=cfg.attack.kind))
    try:
        model = instantiate(cfg.model)
    except Exception as error:  # noqa: BLE001 - Hydra wraps the dataclass's ConfigError
        cause = error.__cause__ if isinstance(error.__cause__, ConfigError) else error
        raise ConfigError(f"model: {cause}") from None
    if not isinstance(model, ModelSpec):
        raise ConfigError("model: _target_ must be federation.models.spec.ModelSpec")
    nodes = federation.get("nodes")
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        raise ConfigError(f"federation.nodes={nodes!r} must be the number of nodes expected (an integer >= 1)")
    min_nodes = federation.get("min_nodes")
    test_path = federation.get("test_path")
    if test_path and not Path(str(test_path)).expanduser().is_file():
        raise ConfigError(
            f"federation.test_path={test_path!r} is not a file; give the coordinator's labelled test set or null"
        )
    privacy_values = {k: v for k, v in _plain(cfg.privacy).items() if k not in ("ledger_dir", "cap")}
    run = RunSettings(
        run_id=new_run_id(),
        run_dir=str(run_dir),
        rounds=int(cfg.rounds),
        nodes=int(nodes),
        seed=int(cfg.seed),
        mode="federated",
        test_path=str(_required_path(test_path, "federation.test_path")) if test_path else "",
        cache_dir=str(cfg.cache_dir or ""),
        min_nodes=int(min_nodes) if min_nodes is not None else 0,
        timeout_s=float(cfg.timeout_s),
        model=model,
        train=_build(TrainSettings, "train", {**_plain(cfg.train), "seed": int(cfg.seed)}),
        privacy=_build(PrivacySettings, "privacy", privacy_values),
        strategy=_build(StrategySettings, "strategy", _plain(cfg.strategy)),
        evaluation=_build(EvaluationSettings, "evaluation", _plain(cfg.evaluation)),
    )
    if str(cfg.mode) != "federated":
        raise ConfigError(f"mode={cfg.mode!r}: production runs are federated; baselines run with `cesagram simulate`")
    secagg = _build(SecAggSettings, "federation.secagg", _plain(federation.secagg))
    if secagg.enabled:
        check_secagg_compatible(
            strategy=run.strategy.name, privacy_mode=run.privacy.mode, required_nodes=run.required_nodes
        )
    superlink = str(federation.get("superlink") or "")
    parse_address(superlink, what="federation.superlink")
    ca = _required_path(federation.get("root_certificates"), "federation.root_certificates")
    deployment = DeploymentSettings(
        superlink=superlink,
        root_certificates=str(ca),
        tls=True,
        node_authentication=bool(federation.get("node_authentication", True)),
        wait_for_nodes_s=float(federation.wait_for_nodes_s),
        secagg=secagg,
    )
    return run, deployment


# -- launching ---------------------------------------------------------------------------------
def save_run_files(run_dir: Path, *, cfg: Any | None, run: RunSettings, deployment: DeploymentSettings) -> None:
    """``config.json`` (the composed config, for the report) and ``run.json`` (what resume needs)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg is not None:
        from omegaconf import OmegaConf

        config = _plain(OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]))
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
    command = [flower_bin("flwr"), "run", str(app_dir), connection, "--stream"]
    printer.start()
    launched_at = time.time()
    try:
        with open(log_path, "ab") as log_file:
            completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
                command,
                env=flower_env(flwr_home),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 - only arms the parent-death signal
            )
    except subprocess.TimeoutExpired:
        raise DeploymentError(f"the run did not finish within {timeout_s:.0f} s; see {log_path}") from None
    finally:
        printer.stop()
    report_path = run_dir / "report.json"
    fresh = report_path.is_file() and report_path.stat().st_mtime >= launched_at - 1.0
    report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8")) if fresh else {}
    if completed.returncode != 0 or report.get("run_id") != run.run_id:
        hint = (
            f"; resume it with `cesagram server resume {run_dir}`" if (run_dir / "checkpoint.npz").exists() else ""
        )
        raise DeploymentError(
            f"the run stopped before writing its report (flwr run exited with {completed.returncode}); "
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
