"""Figures of a run beyond the per-round curves: who trained in each round, and the baselines.

Written into the run folder beside ``metrics.png`` and ``epsilon.png`` (see
:func:`federation.report.plot_rounds`), so that ``report.html`` shows them inline and a
researcher can reuse the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_comparison", "plot_participation"]

_STATES = ("trained", "declined", "failed", "missed")
_COLOURS = {"trained": "#2e7d32", "declined": "#ef8f00", "failed": "#c62828", "missed": "#b0b7c3", "none": "#ffffff"}


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def participation_grid(report: dict[str, Any]) -> tuple[list[str], list[int], list[list[str]]]:
    """Per node and round: ``trained``, ``declined``, ``failed``, ``missed`` or ``none``."""
    rounds = sorted({int(entry["round"]) for entry in report.get("rounds") or []})
    names = sorted(report.get("nodes") or {})
    grid = []
    for name in names:
        node = report["nodes"][name]
        trained = {int(r) for r in node.get("rounds", [])}
        declined = {int(r) for r in node.get("declined", {})}
        failed = {int(r) for r in node.get("failed", {})}
        missed = {int(r) for r in node.get("missed_rounds", [])}
        row = []
        for r in rounds:
            state = "none"
            for candidate, members in zip(_STATES, (trained, declined, failed, missed), strict=True):
                if r in members:
                    state = candidate
                    break
            row.append(state)
        grid.append(row)
    return names, rounds, grid


def plot_participation(report: dict[str, Any], run_dir: Path) -> Path | None:
    """participation.png: a node-by-round grid of who trained, declined, failed or was missed."""
    names, rounds, grid = participation_grid(report)
    if not names or not rounds:
        return None
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    plt = _pyplot()
    order = [*_STATES, "none"]
    values = [[order.index(state) for state in row] for row in grid]
    fig, ax = plt.subplots(figsize=(6, max(1.8, 0.4 * len(names) + 1.2)))
    ax.imshow(values, cmap=ListedColormap([_COLOURS[s] for s in order]), vmin=0, vmax=len(order) - 1, aspect="auto")
    ax.set_xticks(range(len(rounds)), [str(r) for r in rounds])
    ax.set_yticks(range(len(names)), names)
    ax.set_xticks([x - 0.5 for x in range(1, len(rounds))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(names))], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel("round")
    used = sorted({s for row in grid for s in row if s != "none"}, key=order.index)
    ax.legend(
        handles=[Patch(color=_COLOURS[s], label=s) for s in used], loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False
    )
    fig.tight_layout()
    path = run_dir / "participation.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_comparison(report: dict[str, Any], run_dir: Path) -> Path | None:
    """comparison.png: test F0.5 of the federated model, the centralized baseline and each local one."""
    comparison = report.get("comparison")
    if not comparison:
        return None
    plt = _pyplot()
    labels = ["federated", "centralized\n(non-private)", "local mean"]
    values = [comparison["federated_f05"], comparison["centralized_nonprivate_f05"], comparison["local_mean_f05"]]
    colours = ["#1f5fa8", "#5b6474", "#b0b7c3"]
    for name, value in sorted((comparison.get("local_f05") or {}).items()):
        labels.append(f"local\n{name}")
        values.append(value)
        colours.append("#dde1e8")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bars = ax.bar(range(len(values)), values, color=colours, edgecolor="#5b6474")
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=8)
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test F0.5")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = run_dir / "comparison.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
