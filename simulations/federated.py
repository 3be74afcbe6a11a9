"""A federated run on this machine: data on disk, ledgers, Flower's runtime, progress, report."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from federation.attack import VIRTUAL_NODES_ENV
from federation.io import atomic_write_json
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.progress import ProgressPrinter
from federation.privacy.ledger import PrivacyLedger
from federation.report import report_markdown
from federation.runconfig import PrivacySettings, RunSettings
from federation.flower_processes import write_app_dir
from simulations.flower_runtime import LocalSuperLink, RuntimeFailure, SimulationResources
from simulations.prepare import prepare_data
from simulations.attacks import attack_record, attack_success_rate, poison_federation, write_virtual_nodes
from simulations.settings import attack_settings, plain, run_settings


def ensure_ledgers(settings: RunSettings) -> None:
    """Create each virtual node's ledger if absent (the researcher is every node's operator).

    An existing ledger is left alone, so a rerun with the same ledger folder continues its
    spend; a corrupt one makes that node refuse to train (fail closed), it is not replaced.
    """
    if settings.privacy.mode != "record":
        return
    cap = settings.privacy.cap if settings.privacy.cap is not None else settings.privacy.epsilon
    for i in range(settings.nodes):
        path = Path(settings.ledger_dir) / f"node-{i}.json"
        if not path.exists():
            PrivacyLedger.create(path, node=f"node-{i}", cap=cap, delta=settings.privacy.delta)


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


def run_federated(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run the ServerApp and ClientApps under Flower's simulation runtime; return the report."""
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir, test_path = prepare_data(cfg, run_dir)
    attack = attack_settings(cfg)
    data_dir = poison_federation(attack, data_dir=data_dir, nodes=int(cfg.federation.nodes), out_dir=run_dir / "data-attacked")
    roles = write_virtual_nodes(attack, nodes=int(cfg.federation.nodes), path=run_dir / "virtual-nodes.json")
    ledger_dir = Path(str(cfg.federation.ledger_dir)) if cfg.federation.get("ledger_dir") else run_dir / "ledgers"
    settings = run_settings(cfg, run_dir=run_dir, data_dir=data_dir, test_path=test_path, ledger_dir=ledger_dir)
    ensure_ledgers(settings)
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
        with LocalSuperLink(run_dir, env={VIRTUAL_NODES_ENV: str(roles)} if roles else None) as superlink:
            code = superlink.run_app(app_dir, resources, log_path=run_dir / "flower.log")
    finally:
        printer.stop()
    report_path = run_dir / "report.json"
    if code != 0 or not report_path.is_file():
        raise RuntimeFailure(f"the federated run failed{last_error(run_dir / 'flower.log')}; see {run_dir / 'flower.log'}")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report.setdefault("timing", {})["wall_including_runtime"] = time.perf_counter() - started
    if attack.active:
        report["attack"] = attack_record(attack, nodes=settings.nodes)
        if attack.kind == "backdoor":
            report["attack"]["backdoor"] = attack_success_rate(
                run_dir / "model", test_path, attack.trigger, cache=EmbeddingCache(cache_path_for(settings.cache_dir))
            )
    if cfg.get("compare_baselines", False):
        report["comparison"] = compare_with_baselines(settings, report, config=plain(cfg))
    atomic_write_json(report_path, report)
    (run_dir / "report.md").write_text(report_markdown(report), encoding="utf-8")
    return report


def compare_with_baselines(settings: RunSettings, report: dict[str, Any], *, config: dict[str, Any]) -> dict[str, Any]:
    """Centralized non-private and local-only baselines on the same data, against this run's test F0.5."""
    from simulations.baselines import baseline_report

    started = time.perf_counter()
    base = Path(settings.run_dir) / "baselines"
    centralized = baseline_report(
        replace(settings, mode="centralized", privacy=PrivacySettings(mode="none"), run_dir=str(base / "centralized")),
        config=config,
        started=started,
        write_bundle=False,
        evaluate_each_round=False,
    )
    local = baseline_report(
        replace(settings, mode="local", run_dir=str(base / "local")),
        config=config,
        started=started,
        write_bundle=False,
        evaluate_each_round=False,
    )
    federated_f05 = float(report["final"]["f05"])
    centralized_f05 = float(centralized["final"]["f05"])
    local_f05 = float(local["final"]["f05"])
    gap = centralized_f05 - federated_f05
    return {
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
