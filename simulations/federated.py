"""A federated run on this machine: data on disk, ledgers, Flower's runtime, progress, report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from federation.privacy.node_policy import virtual_policy_env
from federation.errors import ConfigError, RuntimeFailure
from federation.attack import VIRTUAL_NODES_ENV
from federation.io import atomic_write_json
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.progress import ProgressPrinter
from federation.privacy.ledger import PrivacyLedger
from federation.report import write_report
from federation.runconfig import PrivacySettings, RunSettings
from deploy.flower_processes import write_app_dir
from deploy.settings import SimulationResources
from simulations.flower_runtime import LocalSuperLink
from simulations.encoding import encode_ahead
from simulations.prepare import prepare_data
from simulations.attacks import attack_record, attack_success_rate, poison_federation, write_virtual_nodes
from simulations.progress import BarsFactory, no_bars
from conf.settings import plain
from simulations.settings import attack_settings, run_settings, runtime_settings


def ensure_ledgers(settings: RunSettings) -> None:
    """Create each virtual node's ledger if absent (the researcher is every node's operator).

    An existing ledger is left alone, so a rerun with the same ledger folder continues its
    spend (with its own accountant: ``privacy.accountant`` only sets a new ledger's); a
    corrupt one makes that node refuse to train (fail closed), it is not replaced.
    """
    if settings.privacy.mode != "record":
        return
    cap = settings.privacy.simulated_cap
    for i in range(settings.nodes):
        path = Path(settings.ledger_dir) / f"node-{i}.json"
        if not path.exists():
            PrivacyLedger.create(
                path, node=f"node-{i}", cap=cap, delta=settings.privacy.delta, accountant=settings.privacy.accountant
            )


def virtual_node_env(cfg: DictConfig, settings: RunSettings) -> dict[str, str]:
    """The virtual nodes' policy, from the simulation's ``federation.node_policy`` (never the run config).

    The validation split keeps the simulation's seed and share (reproducible, and the same
    split the baselines use); the cache folder is the simulation's.
    """
    values = {key: value for key, value in plain(cfg.federation.node_policy).items() if value is not None}
    values.setdefault("validation_fraction", settings.evaluation.validation_fraction)
    if settings.cache_dir:
        values.setdefault("cache_dir", str(Path(settings.cache_dir).resolve()))
    if settings.privacy.mode not in list(values.get("accept_privacy", ["record"])):
        raise ConfigError(
            f"privacy={settings.privacy.mode}: the virtual nodes' policy accepts only "
            f"{', '.join(values.get('accept_privacy', ['record']))}; add it with "
            f"federation.node_policy.accept_privacy=[record,{settings.privacy.mode}]"
        )
    audits = ["off", *[str(kind) for kind in values.get("accept_audit", ["off", "white"])]]
    if settings.privacy.audit not in audits:
        raise ConfigError(
            f"privacy.audit={settings.privacy.audit}: the virtual nodes' policy accepts audits "
            f"{', '.join(dict.fromkeys(audits))} only; add it with federation.node_policy.accept_audit=[off,"
            f"{settings.privacy.audit}] or set privacy.audit=off"
        )
    return virtual_policy_env(values, split_seed=settings.seed)


def last_error(log_path: Path) -> str:
    """The last exception line of Flower's log, to name the cause in one line."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        head = line.strip().split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Exceeded")) and " " not in head:
            return f" ({line.strip()[:300]})"
    return ""


def run_federated(cfg: DictConfig, run_dir: Path, *, bars: BarsFactory = no_bars) -> dict[str, Any]:
    """Run the ServerApp and ClientApps under Flower's simulation runtime; return the report.

    The texts are encoded first, here, with a progress bar (:mod:`simulations.encoding`);
    ``bars`` opens the progress bars of the command that launched the run.
    """
    runtime = runtime_settings(cfg)  # a bad deadline or Ray address fails before any work
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir, test_path = prepare_data(cfg, run_dir)
    attack = attack_settings(cfg)
    data_dir = poison_federation(attack, data_dir=data_dir, nodes=int(cfg.federation.nodes), out_dir=run_dir / "data-attacked")
    roles = write_virtual_nodes(attack, nodes=int(cfg.federation.nodes), path=run_dir / "virtual-nodes.json")
    ledger_dir = Path(str(cfg.federation.ledger_dir)) if cfg.federation.get("ledger_dir") else run_dir / "ledgers"
    settings = run_settings(cfg, run_dir=run_dir, data_dir=data_dir, test_path=test_path, ledger_dir=ledger_dir)
    node_env = virtual_node_env(cfg, settings)
    ensure_ledgers(settings)
    with bars() as progress:
        ahead = encode_ahead(settings, on_progress=progress.tracker("encoding texts", unit="texts") if progress else None)
    atomic_write_json(run_dir / "config.json", plain(cfg))
    app_dir = write_app_dir(run_dir / ".flower-app", settings.to_flat())
    resources = SimulationResources(
        num_supernodes=settings.nodes,
        num_cpus=int(cfg.federation.num_cpus),
        num_gpus=float(cfg.federation.num_gpus),
    )
    progress = run_dir / "progress.jsonl"
    progress.unlink(missing_ok=True)
    printer = ProgressPrinter(progress)
    printer.start()
    started = time.perf_counter()
    try:
        env = {**node_env, **({VIRTUAL_NODES_ENV: str(roles)} if roles else {})}
        with LocalSuperLink(run_dir, runtime=runtime, env=env) as superlink:
            code = superlink.run_app(app_dir, resources, log_path=run_dir / "flower.log", progress_path=progress)
    finally:
        printer.stop()
    report_path = run_dir / "report.json"
    if code != 0 or not report_path.is_file():
        raise RuntimeFailure(f"the federated run failed{last_error(run_dir / 'flower.log')}; see {run_dir / 'flower.log'}")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report.setdefault("timing", {})["wall_including_runtime"] = time.perf_counter() - started
    if ahead is not None:
        report["timing"]["encoding_before_start"] = ahead["seconds"]
    if attack.active:
        report["attack"] = attack_record(attack, nodes=settings.nodes)
        if attack.kind == "backdoor":
            report["attack"]["backdoor"] = attack_success_rate(
                run_dir / "model", test_path, attack.trigger, cache=EmbeddingCache(cache_path_for(settings.cache_dir))
            )
    if cfg.get("compare_baselines", False):
        with bars() as progress:
            report["comparison"] = compare_with_baselines(
                settings,
                report,
                config=plain(cfg),
                progress=progress.tracker("training baselines", unit="rounds") if progress else None,
            )
    write_report(report, run_dir)  # again: the comparison is new (report.md, report.html and its figure)
    return report


def compare_with_baselines(
    settings: RunSettings,
    report: dict[str, Any],
    *,
    config: dict[str, Any],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Centralized non-private and local-only baselines on the same data, against this run's test F0.5.

    ``progress`` is told ``(rounds trained, rounds planned)`` of each baseline in turn.
    """
    from simulations.baselines import baseline_report

    started = time.perf_counter()
    base = Path(settings.run_dir) / "baselines"
    centralized = baseline_report(
        replace(settings, mode="centralized", privacy=PrivacySettings(mode="none"), run_dir=str(base / "centralized")),
        config=config,
        started=started,
        write_bundle=False,
        evaluate_each_round=False,
        train_progress=progress,
    )
    local = baseline_report(
        replace(settings, mode="local", run_dir=str(base / "local")),
        config=config,
        started=started,
        write_bundle=False,
        evaluate_each_round=False,
        train_progress=progress,
    )
    federated_f05 = float(report["final"]["f05"])
    centralized_f05 = float(centralized["final"]["f05"])
    local_f05 = float(local["final"]["f05"])
    gap = centralized_f05 - federated_f05
    real = {"federated": report.get("real_negatives"), "centralized_nonprivate": centralized.get("real_negatives")}
    return {
        "real_negatives": real,
        "federated_f05": federated_f05,
        "centralized_nonprivate_f05": centralized_f05,
        "local_mean_f05": local_f05,
        "local_f05": {name: m["f05"] for name, m in local["parties"].items()},
        "gap_to_centralized": gap,
        "within_0_05_of_centralized": gap <= 0.05,
        "above_local_mean": federated_f05 > local_f05,
        "seconds": time.perf_counter() - started,
        "statements": [
            f"federated F0.5 {federated_f05:.3f} vs centralized non-private {centralized_f05:.3f}: "
            f"gap {gap:+.3f} ({'within' if gap <= 0.05 else 'NOT within'} 0.05)",
            f"federated F0.5 {federated_f05:.3f} vs local-only mean {local_f05:.3f} "
            f"({'above' if federated_f05 > local_f05 else 'NOT above'})",
        ],
    }
