"""Benchmark of the two accountants (issue 11, point 3): the noise each allows at epsilon 1, 3 and 8.

Run: ``python -m simulations.benchmarks.accountants [--epsilons 1 3 8] [--f05] [--out DIR]
[hydra overrides]``. For the federation the overrides compose (the default one without
any), the benchmark writes the node files as ``cesagram simulate`` would, splits each node
as its policy does, and takes each node's Poisson sample rate and its DP-SGD steps over
the whole run (``rounds`` x steps per round) from the same functions the nodes use. For
each target epsilon at the config's delta it prints, per node, the smallest noise
multiplier ``rdp`` and ``prv`` certify (:func:`federation.privacy.plan.calibrate_noise`,
the nodes' own calibration), their ratio, and how long each calibration took.

``--f05`` also runs one whole simulated federation per (epsilon, accountant), without
baselines, and prints its final test F0.5: hours of CPU for the full grid.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from federation.data.nodes import read_simulated_node
from federation.data.split import split_validation
from federation.privacy.accounting import ACCOUNTANTS, epsilon_of
from federation.privacy.plan import calibrate_noise
from federation.training import steps_per_call
from simulations.compose import compose
from simulations.prepare import prepare_data
from simulations.settings import run_settings


@dataclass(frozen=True)
class NodeSpend:
    """What one node's DP-SGD does over a run: its sample rate and its steps."""

    name: str
    train: int
    sample_rate: float
    steps: int


def federation_spend(overrides: list[str], out: Path) -> tuple[list[NodeSpend], float, int]:
    """Each node's (sample rate, steps) for the run the overrides compose; also delta and rounds."""
    cfg = compose(overrides)
    data_dir, test_path = prepare_data(cfg, out)
    settings = run_settings(cfg, run_dir=out, data_dir=data_dir, test_path=test_path, ledger_dir=out / "ledgers")
    nodes = []
    for index in range(settings.nodes):
        conversations = read_simulated_node(data_dir, index)
        train, _ = split_validation(conversations, fraction=settings.evaluation.validation_fraction, seed=settings.seed)
        batch = min(settings.party_batch_size(len(train)), len(train))  # as the node's train handler
        steps = steps_per_call(replace(settings.train, batch_size=batch), num_examples=len(train)) * settings.rounds
        nodes.append(NodeSpend(name=f"node-{index}", train=len(train), sample_rate=batch / len(train), steps=steps))
    return nodes, settings.privacy.delta, settings.rounds


def noise_table(nodes: list[NodeSpend], *, epsilons: list[float], delta: float) -> list[dict[str, object]]:
    """Per epsilon and node: the calibrated noise of each accountant, its check and its time."""
    rows: list[dict[str, object]] = []
    for epsilon in epsilons:
        for node in nodes:
            row: dict[str, object] = {"epsilon": epsilon, "node": node.name, "q": node.sample_rate, "steps": node.steps}
            for accountant in ACCOUNTANTS:
                started = time.perf_counter()
                noise = calibrate_noise(history=[], delta=delta, sample_rate=node.sample_rate, steps=node.steps,
                                        target_epsilon=epsilon, accountant=accountant)  # fmt: skip
                row[f"{accountant}_seconds"] = time.perf_counter() - started
                row[accountant] = noise
                row[f"{accountant}_check"] = epsilon_of(
                    [(noise, node.sample_rate, node.steps)], delta=delta, accountant=accountant
                )
            rows.append(row)
    return rows


def print_noise_table(rows: list[dict[str, object]], *, delta: float, rounds: int) -> None:
    print(f"noise multiplier each accountant certifies, delta {delta:g}, {rounds} rounds (whole run, empty ledger)")
    print(f"{'epsilon':>7} {'node':>7} {'q':>7} {'steps':>6} {'rdp':>8} {'prv':>8} {'prv/rdp':>8} {'rdp s':>6} {'prv s':>6}")
    for row in rows:
        print(
            f"{row['epsilon']:>7g} {row['node']:>7} {row['q']:>7.4f} {row['steps']:>6} {row['rdp']:>8.4f} "
            f"{row['prv']:>8.4f} {row['prv'] / row['rdp']:>8.3f} {row['rdp_seconds']:>6.1f} {row['prv_seconds']:>6.1f}"
        )
    for epsilon in sorted({row["epsilon"] for row in rows}):
        chosen = [row for row in rows if row["epsilon"] == epsilon]
        mean = sum(row["prv"] / row["rdp"] for row in chosen) / len(chosen)
        print(f"epsilon {epsilon:g}: prv allows {100 * (1 - mean):.1f}% less noise than rdp (mean over nodes)")


def f05_grid(overrides: list[str], *, epsilons: list[float], out: Path) -> None:
    """One federation per (epsilon, accountant); prints the final test F0.5 of each."""
    from simulations.federated import run_federated

    print("final test F0.5 (one simulated federation each, no baselines)")
    for epsilon in epsilons:
        for accountant in ACCOUNTANTS:
            cell = [*overrides, f"privacy.epsilon={epsilon:g}", f"privacy.accountant={accountant}", "compare_baselines=false"]
            started = time.perf_counter()
            report = run_federated(compose(cell), out / f"eps{epsilon:g}-{accountant}")
            print(f"epsilon {epsilon:g} {accountant}: F0.5 {report['final'].get('f05', float('nan')):.3f} "
                  f"({time.perf_counter() - started:.0f} s)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 8.0])
    parser.add_argument("--f05", action="store_true", help="also train one federation per (epsilon, accountant): hours")
    parser.add_argument("--out", type=Path, help="folder for the node files and runs (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", help="hydra overrides of the federation (default: the default one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="accountants-") as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        nodes, delta, rounds = federation_spend(list(args.overrides), out / "federation")
        print_noise_table(noise_table(nodes, epsilons=list(args.epsilons), delta=delta), delta=delta, rounds=rounds)
        if args.f05:
            f05_grid(list(args.overrides), epsilons=list(args.epsilons), out=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
