"""Benchmark of robustness (issue 12): attacks against aggregation rules, side by side with the clean run.

Run: ``python -m simulations.benchmarks.robustness [--attacks ...] [--strategies ...] [--scenarios ...]
[--out DIR] [hydra overrides]``. Each cell is one whole simulated federation (``cesagram simulate``'s
``run_federated``) with DP-SGD at epsilon 8 (the default privacy group) and update validation on, as
every run has it. Printed per scenario: final test F0.5 and AUPRC for each attack and strategy, the
difference to the clean run of the same strategy, the replies the server rejected and, for the
backdoor, the attack success rate (with the clean model's rate for the same trigger beside it).
Cells are written to ``results.json`` as they finish, so an interrupted grid keeps what it measured,
and a later call with the same ``--out`` and overrides skips the cells it already has.

The full grid (6 attacks x 5 strategies x 2 scenarios = 60 runs of a 10-round federation) takes
hours; ``--attacks``, ``--strategies`` and ``--scenarios`` pick a part of it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from federation.attack import ATTACK_KINDS
from federation.io import atomic_write_json
from federation.models.cache import EmbeddingCache, cache_path_for
from simulations.attacks import attack_success_rate
from simulations.compose import compose
from simulations.federated import run_federated
from simulations.settings import attack_settings

STRATEGIES = ("fedavg", "fedmedian", "fedtrimmedavg", "krum", "normbounded")
SCENARIOS = {"1of5": (5, 1), "2of10": (10, 2)}


def cell_overrides(*, nodes: int, attackers: int, attack: str, strategy: str) -> list[str]:
    """Hydra overrides of one cell: the scenario's federation, the attack, the strategy."""
    overrides = [f"federation.nodes={nodes}", f"strategy={strategy}", "compare_baselines=false", f"attack={attack}"]
    if attack != "none":
        overrides.append(f"attack.nodes={attackers}")
    if strategy == "krum":
        overrides.append(f"strategy.num_malicious_nodes={attackers}")  # Krum's f: the attackers it must withstand
    return overrides


def run_cell(out: Path, name: str, overrides: list[str]) -> dict[str, Any]:
    """One federation; its final metrics, rejected replies and (backdoor) success rate."""
    cfg = compose(overrides)
    started = time.perf_counter()
    report = run_federated(cfg, out / name)
    rejected = sum(len(entry.get("rejected", {})) for entry in report["rounds"])
    cell: dict[str, Any] = {
        "overrides": overrides,
        "f05": report["final"].get("f05"),
        "auprc": report["final"].get("auprc"),
        "rejected_replies": rejected,
        "rounds": len(report["rounds"]),
        "seconds": time.perf_counter() - started,
    }
    backdoor = report.get("attack", {}).get("backdoor")
    if backdoor:
        cell["attack_success_rate"] = backdoor["success_rate"]
    if attack_settings(cfg).kind == "none":  # what the backdoor's trigger does to a clean model
        trigger = attack_settings(compose([*overrides, "attack=backdoor"])).trigger
        cell["trigger_effect_on_clean_model"] = attack_success_rate(
            out / name / "model",
            Path(report["settings"]["test-path"]),
            trigger,
            cache=EmbeddingCache(cache_path_for(report["settings"].get("cache-dir") or None)),
        )["success_rate"]
    return cell


def _fmt(value: Any) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def print_table(scenario: str, results: dict[str, dict[str, Any]], attacks: list[str], strategies: list[str]) -> None:
    nodes, attackers = SCENARIOS[scenario]
    print(f"\n{attackers} of {nodes} nodes attacking (DP-SGD epsilon 8; F0.5 / AUPRC on the held-out test set)")
    print("attack      | " + " | ".join(f"{s:^30s}" for s in strategies))
    for attack in attacks:
        cells = []
        for strategy in strategies:
            cell = results.get(f"{scenario}/{strategy}/{attack}")
            clean = results.get(f"{scenario}/{strategy}/none")
            if cell is None:
                cells.append(f"{'unmeasured':^30s}")
                continue
            text = f"{_fmt(cell['f05'])} / {_fmt(cell['auprc'])}"
            if clean is not None and attack != "none" and cell["f05"] is not None and clean["f05"] is not None:
                text += f" ({cell['f05'] - clean['f05']:+.3f})"
            if "attack_success_rate" in cell:
                text += f" ASR {_fmt(cell['attack_success_rate'])}"
            if attack == "none" and "trigger_effect_on_clean_model" in cell:
                text += f" trig {_fmt(cell['trigger_effect_on_clean_model'])}"
            if cell["rejected_replies"]:
                text += f" rej {cell['rejected_replies']}"
            cells.append(f"{text:^30s}")
        print(f"{attack:11s} | " + " | ".join(cells))
    print("(+/-: F0.5 minus the clean run's; ASR: backdoor success rate; trig: the trigger's effect on the clean "
          "model; rej: train replies the server rejected)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", default=",".join(ATTACK_KINDS), help="comma-separated; 'none' is the clean run")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated of {', '.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/robustness"))
    parser.add_argument("overrides", nargs="*", help="hydra overrides for every cell (e.g. model=ngram rounds=5)")
    args = parser.parse_args(argv)
    attacks = [a for a in args.attacks.split(",") if a]
    strategies = [s for s in args.strategies.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for name, allowed in (("attack", ATTACK_KINDS), ("strategy", STRATEGIES), ("scenario", tuple(SCENARIOS))):
        chosen = {"attack": attacks, "strategy": strategies, "scenario": scenarios}[name]
        bad = [c for c in chosen if c not in allowed]
        if bad:
            parser.error(f"unknown {name} {', '.join(bad)}; choose from {', '.join(allowed)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results: dict[str, dict[str, Any]] = json.loads(results_path.read_text()) if results_path.is_file() else {}
    order = ["none", *[a for a in attacks if a != "none"]] if "none" in attacks else attacks
    for scenario in scenarios:
        nodes, attackers = SCENARIOS[scenario]
        for strategy in strategies:
            for attack in order:
                key = f"{scenario}/{strategy}/{attack}"
                overrides = [*cell_overrides(nodes=nodes, attackers=attackers, attack=attack, strategy=strategy), *args.overrides]
                if results.get(key, {}).get("overrides") == overrides:
                    print(f"== {key}: measured before, in {results_path}", flush=True)
                    continue
                print(f"== {key}: {' '.join(overrides)}", flush=True)
                results[key] = run_cell(args.out, key.replace("/", "-"), overrides)
                atomic_write_json(results_path, results)
                cell = results[key]
                print(f"   F0.5 {_fmt(cell['f05'])}  AUPRC {_fmt(cell['auprc'])}  rejected {cell['rejected_replies']}"
                      f"  [{cell['seconds']:.0f} s]", flush=True)
        print_table(scenario, results, order, strategies)
    print(f"\nresults: {results_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
