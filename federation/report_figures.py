"""Figures of a run beyond the per-round curves: who trained in each round, and the baselines.

Written into the run folder beside ``metrics.png`` and ``epsilon.png`` (see
:func:`federation.report.plot_rounds`), so that ``report.html`` shows them inline and a
researcher can reuse the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from federation.report import NODE_ROWS

__all__ = ["plot_comparison", "plot_participation"]

_STATES = ("trained", "declined", "failed", "missed")
_COLOURS = {"trained": "#2e7d32", "declined": "#ef8f00", "failed": "#c62828", "missed": "#b0b7c3", "none": "#ffffff"}


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rounds(report: dict[str, Any]) -> list[int]:
    return sorted({int(entry["round"]) for entry in report.get("rounds") or []})


def _node_states(node: dict[str, Any], rounds: list[int]) -> list[str]:
    """One node's state in each round; a round in two of its lists takes the first of :data:`_STATES`."""
    members = [
        {int(r) for r in node.get("rounds", [])},
        {int(r) for r in node.get("declined", {})},
        {int(r) for r in node.get("failed", {})},
        {int(r) for r in node.get("missed_rounds", [])},
    ]
    return [next((state for state, rs in zip(_STATES, members, strict=True) if r in rs), "none") for r in rounds]


def participation_grid(report: dict[str, Any]) -> tuple[list[str], list[int], list[list[str]]]:
    """Per node and round: ``trained``, ``declined``, ``failed``, ``missed`` or ``none``."""
    rounds = _rounds(report)
    names = sorted(report.get("nodes") or {})
    return names, rounds, [_node_states(report["nodes"][name], rounds) for name in names]


def participation_counts(report: dict[str, Any]) -> tuple[list[int], dict[str, list[int]]]:
    """Per state of :data:`_STATES` and round, how many nodes were in it: the grid's columns counted."""
    rounds = _rounds(report)
    counts = {state: [0] * len(rounds) for state in _STATES}
    for node in (report.get("nodes") or {}).values():
        for i, state in enumerate(_node_states(node, rounds)):
            if state != "none":
                counts[state][i] += 1
    return rounds, counts


def plot_participation(report: dict[str, Any], run_dir: Path) -> Path | None:
    """participation.png: who trained, declined, failed or was missed in each round.

    A node-by-round grid up to :data:`federation.report.NODE_ROWS` nodes; above it, a row per
    node would make the figure as tall as the federation, so each round's nodes are counted
    per state instead, in stacked bars.
    """
    if not report.get("nodes") or not _rounds(report):
        return None
    if len(report["nodes"]) > NODE_ROWS:
        return _plot_participation_counts(report, run_dir)
    return _plot_participation_grid(report, run_dir)


def _plot_participation_grid(report: dict[str, Any], run_dir: Path) -> Path:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    names, rounds, grid = participation_grid(report)
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
    return _save(fig, run_dir / "participation.png")


def _plot_participation_counts(report: dict[str, Any], run_dir: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    rounds, counts = participation_counts(report)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.12 * len(rounds) + 3)), 3.6))
    bottom = [0] * len(rounds)
    for state in _STATES:
        if any(counts[state]):
            ax.bar(rounds, counts[state], bottom=bottom, color=_COLOURS[state], label=state, width=0.8)
            bottom = [b + c for b, c in zip(bottom, counts[state], strict=True)]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel(f"nodes (of {len(report['nodes'])})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _save(fig, run_dir / "participation.png")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
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
    local = sorted((comparison.get("local_f05") or {}).items())
    if len(local) > NODE_ROWS:  # a bar per node would not fit: the spread instead
        local = [("lowest", min(v for _, v in local)), ("highest", max(v for _, v in local))]
    for name, value in local:
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
