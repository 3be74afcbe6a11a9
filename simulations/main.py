"""``cesagram simulate``: a Hydra app that runs one simulated federation (or a baseline) per job."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from federation.errors import CesagramError
from conf.settings import check_overrides, hydra_overrides, node_kinds

log = logging.getLogger(__name__)

#: ``-v`` as the command line gave it (Hydra calls the job without our arguments).
_VERBOSE = [False]


def summary_lines(report: dict, run_dir: Path) -> list[str]:
    """What the user reads at the end of a run."""
    final = report.get("final") or {}
    lines = []
    if final:
        lines.append(
            "test set: "
            + ", ".join(f"{key} {final[key]:.3f}" for key in ("f05", "f1", "auprc", "latency_f1") if key in final)
        )
    nodes = (report.get("privacy") or {}).get("nodes") or {}
    if nodes:
        worst = max(nodes.values(), key=lambda p: p["epsilon"])
        lines.append(
            f"privacy: highest epsilon {worst['epsilon']:.2f} at delta {worst['delta']:g} "
            f"({worst['accountant']}, unit: {worst['unit']})"
        )
    audit = report.get("audit") or {}
    for part, what in ((audit, "white-box canaries"), (audit.get("black") or {}, "black-box canary conversations")):
        if not part.get("run"):
            continue
        run = part["run"]
        claim = "no DP (control)" if run["epsilon"] is None else f"accounted epsilon {run['epsilon']:.2f}"
        auc = f", mean MIA AUC {run['mia_auc_mean']:.3f}" if "mia_auc_mean" in run else ""
        lines.append(
            ("PRIVACY AUDIT FAILED: " if part["guarantee_failed"] else "privacy audit: ")
            + f"epsilon lower bound {run['lower_bound']:.2f} at {run['confidence']:.0%} confidence against {claim} "
            f"({run['canaries_in'] + run['canaries_out']} {what} over {run['nodes']} nodes{auc})"
        )
    for statement in (report.get("comparison") or {}).get("statements", []):
        lines.append(statement)
    lines.append(f"run folder: {run_dir}")
    return lines


def audit_words(privacy: DictConfig, prefix: str) -> str:
    """The audit's canaries per node, in words (empty without an audit)."""
    kind = privacy.get("audit")
    parts = []
    if kind in ("white", "both"):
        parts.append(f"{privacy.audit_canaries} white-box audit canaries")
    if kind in ("black", "both"):
        parts.append(f"{privacy.audit_input_canaries} black-box canary conversations")
    return f"{prefix}{' and '.join(parts)} per node" if parts else ""


def header_lines(cfg: DictConfig, run_dir: Path) -> list[str]:
    """What the user reads first: what runs, on what, under which privacy, and where it is written."""
    kinds = Counter(node_kinds(cfg))
    who = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    lines = [
        f"CESAGRAM-FL {cfg.mode} run: {cfg.federation.nodes} nodes ({who}), {cfg.rounds} rounds, "
        f"model {cfg.model.name}, {cfg.data.kind} data"
    ]
    privacy = cfg.privacy
    if privacy.mode == "record":
        lines.append(
            f"privacy: record-level DP-SGD, epsilon {privacy.epsilon:g} per node at delta {privacy.delta:g} "
            f"(new ledgers: {privacy.get('accountant', 'rdp')} accountant)"
            + audit_words(privacy, "; ")
        )
    elif privacy.mode == "central":
        lines.append(
            f"privacy: central DP, noise multiplier {privacy.noise_multiplier:g}, clipping norm {privacy.clipping_norm:g}, "
            f"each node sampled with probability {cfg.strategy.fraction_train:g} per round"
        )
    elif privacy.get("audit", "off") != "off":
        lines.append(
            "privacy: none (no differential privacy); audit control: DP-SGD's sampling and clipping without noise"
            + audit_words(privacy, ", ")
        )
    else:
        lines.append("privacy: none (no differential privacy)")
    lines.append(f"writing to {run_dir} (details in main.log; -v shows them here)")
    return lines


def run_job(cfg: DictConfig, run_dir: Path, *, verbose: bool = False) -> float:
    """One Hydra job: federated, centralized or local; returns the final test F0.5 for sweeps.

    The console gets the header, progress bars, one line per round and the summary; INFO
    logs go to ``main.log`` only, unless ``verbose``.
    """
    from cesagram.console import Bars, quiet_console_logs

    with quiet_console_logs(verbose=verbose):
        for line in header_lines(cfg, run_dir):
            print(line, flush=True)
        if cfg.mode == "federated":
            from simulations.federated import run_federated

            report = run_federated(cfg, run_dir, bars=Bars)
        else:
            from simulations.baselines import run_baseline

            report = run_baseline(cfg, run_dir, bars=Bars)
    for line in summary_lines(report, run_dir):
        print(line, flush=True)
    return float((report.get("final") or {}).get("f05", 0.0))


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="config")
def hydra_main(cfg: DictConfig) -> float:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        return run_job(cfg, run_dir, verbose=_VERBOSE[0])
    except CesagramError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None


def simulate_command(args: argparse.Namespace) -> int:
    """Hand the remaining arguments to Hydra, as if ``cesagram simulate`` were a Hydra app.

    ``-v`` (before or after ``simulate``) shows the INFO logs on the console too.
    """
    hydra_args = [a for a in args.hydra_args if a not in ("-v", "--verbose")]
    _VERBOSE[0] = bool(getattr(args, "verbose", False)) or len(hydra_args) != len(args.hydra_args)
    check_overrides(hydra_args)  # a bad option, key or type: one line here, not Hydra's report
    saved = sys.argv
    sys.argv = ["cesagram simulate", *hydra_overrides(hydra_args)]
    try:
        hydra_main()
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    finally:
        sys.argv = saved
    return 0
