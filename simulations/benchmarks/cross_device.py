"""Cross-device scaling: time per round, aggregation time and peak memory against the number of nodes.

Run: ``python -m simulations.benchmarks.cross_device [--sizes 100,1000,10000] [--fraction 0.1]
[--rounds 3] [--same-sampled 100] [--keep DIR] [hydra overrides]``.

Each cell is one ``cesagram simulate experiment=cross_device`` run (the n-gram model and no
public pretraining unless overridden, so that the figures are the runtime's, not MiniLM's),
in a process of its own. While it runs, the memory of its whole process tree (the command,
the SuperLink, Flower's simulation process, Ray and its workers) is sampled every half
second as the sum of each process's proportional set size (PSS: shared pages counted once);
the peak is printed. Time per round and the server's aggregation time per round come from
the run's report (rounds after the first, which also starts Ray's workers).

Two comparisons are printed with what they measured:

- time per round against the nodes sampled per round, across ``--sizes`` at ``--fraction``
  (the growth exponent: at most 1 means no faster than the sampled nodes);
- peak memory at the same sampled count (``--same-sampled`` nodes per round) for 1,000 and
  10,000 nodes: flat means within 20%.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from deploy.flower_processes import descendants

#: Settings that make each cell measure the runtime rather than the encoder.
FAST = ("model=ngram", "pretrain.enabled=false", "data.test_conversations=200")


@dataclass(frozen=True)
class Cell:
    """One measured run."""

    nodes: int
    fraction: float
    sampled: float
    round_s: float
    aggregation_s: float
    peak_gb: float
    wall_s: float
    rounds: int


def _memory_kb(pid: int) -> int:
    """PSS of one process in kB (RSS where the kernel has no smaps_rollup); 0 once it is gone."""
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            with open(f"/proc/{pid}/{name}", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


class TreeMemory:
    """Samples the memory of a process and all its descendants until stopped; keeps the peak."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid, self.every_s, self.peak_kb = pid, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            total = sum(_memory_kb(pid) for pid in (self.pid, *descendants(self.pid)))
            self.peak_kb = max(self.peak_kb, total)
            self._stop.wait(self.every_s)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_cell(nodes: int, fraction: float, *, rounds: int, out: Path, overrides: list[str]) -> Cell:
    """One cross-device run of ``nodes`` nodes sampled at ``fraction``; its measured figures."""
    run_dir = out / f"nodes-{nodes}-q{fraction:g}"
    argv = [
        sys.executable, "-m", "cesagram", "simulate", "experiment=cross_device", *FAST,
        f"federation.nodes={nodes}", f"strategy.fraction_train={fraction:g}",
        f"strategy.fraction_evaluate={fraction / 2:g}", f"rounds={rounds}", f"hydra.run.dir={run_dir}", *overrides,
    ]  # fmt: skip
    started = time.perf_counter()
    log = run_dir.parent / f"{run_dir.name}.log"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=os.environ.copy())
        with TreeMemory(process.pid) as memory:
            code = process.wait()
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"the run of {nodes} nodes failed (exit {code}); see {log}")
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    measured = report["rounds"][1:] or report["rounds"]  # round 1 also starts Ray's workers
    return Cell(
        nodes=nodes,
        fraction=fraction,
        sampled=sum(len(r["participants"]) for r in measured) / len(measured),
        round_s=sum(r["seconds"] for r in measured) / len(measured),
        aggregation_s=sum(r.get("aggregation_seconds") or 0.0 for r in measured) / len(measured),
        peak_gb=memory.peak_kb / 1024**2,
        wall_s=wall,
        rounds=len(report["rounds"]),
    )


def growth_exponent(small: Cell, large: Cell) -> float:
    """How time per round grows with the sampled nodes: ``log(t2/t1) / log(s2/s1)``."""
    return math.log(large.round_s / small.round_s) / math.log(large.sampled / small.sampled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="numbers of nodes, comma-separated")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the nodes sampled per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--same-sampled", type=int, default=100, help="nodes per round of the memory comparison")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    args, overrides = parser.parse_known_args(argv)
    out = args.keep or Path(tempfile.mkdtemp(prefix="cesagram-cross-device-"))
    sizes = [int(size) for size in args.sizes.split(",")]
    cells = [run_cell(n, args.fraction, rounds=args.rounds, out=out, overrides=overrides) for n in sizes]
    done = {(cell.nodes, cell.fraction): cell for cell in cells}
    same = [
        done.get((n, args.same_sampled / n))
        or run_cell(n, args.same_sampled / n, rounds=args.rounds, out=out, overrides=overrides)
        for n in (1000, 10000)
    ]
    print("| nodes | sampled share | nodes trained per round | s per round | aggregation s per round | peak memory GB (PSS, all processes) | wall s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for cell in [*cells, *(cell for cell in same if cell not in cells)]:
        print(
            f"| {cell.nodes} | {cell.fraction:g} | {cell.sampled:.0f} | {cell.round_s:.1f} | {cell.aggregation_s:.3f} "
            f"| {cell.peak_gb:.2f} | {cell.wall_s:.0f} |"
        )
    status = 0
    for small, large in zip(cells, cells[1:]):
        exponent = growth_exponent(small, large)
        verdict = "OK" if exponent <= 1.0 else "FAIL"
        status |= verdict == "FAIL"
        print(
            f"{verdict}: time per round x{large.round_s / small.round_s:.2f} for x{large.sampled / small.sampled:.1f} "
            f"sampled nodes ({small.nodes} -> {large.nodes} nodes): growth exponent {exponent:.2f} (at most 1: linear)"
        )
    if len(same) == 2:
        change = same[1].peak_gb / same[0].peak_gb - 1.0
        verdict = "OK" if abs(change) <= 0.2 else "FAIL"
        status |= verdict == "FAIL"
        print(
            f"{verdict}: peak memory {same[0].peak_gb:.2f} GB at 1000 nodes and {same[1].peak_gb:.2f} GB at 10000, "
            f"{args.same_sampled} sampled per round: {change:+.0%} (flat: within 20%)"
        )
    print(f"run folders: {out}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
