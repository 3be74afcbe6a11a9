"""The run's report page: ``report.md``'s story with its figures inline, and every report.json section.

The story is ``report.md`` itself, rendered (raw HTML in it is escaped), with each PNG of
the run folder shown under the section it belongs to; figures the page does not know go
at the end. Then every top-level section of ``report.json`` that the story does not tell
is drawn as tables, so sections added by later code appear without a change here. Above
:data:`federation.report.NODE_ROWS` nodes report.md already summarises its nodes per kind,
and :func:`condensed` summarises the per-node parts of those tables the same way, so that
the page of a federation of thousands stays small.
"""

from __future__ import annotations

import base64
import html
import math
import statistics
from collections.abc import Collection
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from federation.pages.html import asset, document
from federation.report import NODE_ROWS, communication_per_round, name_list

__all__ = ["FIGURES", "STORY_KEYS", "condensed", "report_page"]

#: Figures of the run folder, by the report.md section they go under, with their captions.
FIGURES: dict[str, tuple[tuple[str, str], ...]] = {
    "against the baselines": (("comparison.png", "Test F0.5: federated model, centralized non-private and local-only baselines"),),
    "rounds": (
        ("metrics.png", "Validation metrics per round (aggregated over the nodes)"),
        ("participation.png", "Who trained in each round"),
    ),
    "privacy": (("epsilon.png", "Epsilon spent per node, round by round (RDP accountant)"),),
}
#: report.json sections that report.md tells; the others are drawn as tables.
STORY_KEYS = frozenset(
    {"run_id", "mode", "final", "comparison", "rounds", "privacy", "protections", "nodes", "nodes_summary"}
    | {"timing", "notes"}
)
#: Sections drawn folded (long and for the curious).
_FOLDED = frozenset({"config", "settings", "communication"})
_MAX_ROWS = 200
_MAX_DEPTH = 4


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _sections(markdown: str) -> list[tuple[str, str]]:
    """``(lower-case title, markdown)`` per ``## `` section; the part before the first has title ''."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in markdown.splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip().lower(), []))
        sections[-1][1].append(line)
    return [(title, "\n".join(lines)) for title, lines in sections]


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_flat(value: Any) -> bool:
    """A mapping of scalars (and lists of scalars)."""
    return isinstance(value, dict) and all(
        _is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v)) for v in value.values()
    )


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return html.escape(", ".join(_scalar(v) for v in value) or "-")
    return html.escape(_scalar(value))


def _table(rows: list[tuple[str, dict[str, Any]]], first: str) -> str:
    columns = list(dict.fromkeys(key for _, row in rows for key in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [first, *columns])
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>"
        for name, row in rows[:_MAX_ROWS]
    )
    more = f'<p class="muted">... and {len(rows) - _MAX_ROWS} more rows in report.json</p>' if len(rows) > _MAX_ROWS else ""
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'


def render_value(value: Any, depth: int = 0) -> str:
    """Any JSON value as HTML: mappings of scalars as two-column tables, records as tables."""
    if _is_scalar(value):
        return f"<p>{html.escape(_scalar(value))}</p>"
    if isinstance(value, list):
        if all(_is_scalar(v) for v in value):
            return f"<p>{_cell(value)}</p>"
        if all(_is_flat(v) for v in value):
            return _table([(str(i + 1), v) for i, v in enumerate(value)], "#")
        items = "".join(f"<li>{render_value(v, depth + 1)}</li>" for v in value[:_MAX_ROWS])
        return f"<ol>{items}</ol>"
    if not isinstance(value, dict):
        return f"<p>{html.escape(str(value))}</p>"
    if not value:
        return '<p class="muted">(empty)</p>'
    if _is_flat(value):
        return _table([(str(k), {"value": v}) for k, v in value.items()], "key")
    if all(_is_flat(v) for v in value.values()):
        return _table([(str(k), v) for k, v in value.items()], "")
    if depth >= _MAX_DEPTH:
        return f"<p><code>{html.escape(str(value)[:2000])}</code></p>"
    scalars = {k: v for k, v in value.items() if _is_scalar(v) or (isinstance(v, list) and all(_is_scalar(x) for x in v))}
    out = [_table([(str(k), {"value": v}) for k, v in scalars.items()], "key")] if scalars else []
    for key, item in value.items():
        if key in scalars:
            continue
        out.append(f'<div class="nested"><h4>{html.escape(str(key))}</h4>{render_value(item, depth + 1)}</div>')
    return "".join(out)


def condensed(key: str, value: Any, report: dict[str, Any]) -> Any:
    """A report.json section as the page draws it: per-node parts summarised above ``NODE_ROWS`` nodes.

    ``communication`` becomes its per-round totals; any other mapping keyed by node names
    becomes one row of its columns' spread, and a list of node names its count and first
    names, so that a page of a federation of thousands stays small (report.json has it all).
    """
    names = frozenset(report.get("nodes") or {})
    if key == "communication" and isinstance(value, dict) and len(value) > NODE_ROWS:
        return communication_per_round(value)
    return _condense(value, names)


def _condense(value: Any, names: Collection[str]) -> Any:
    """``value`` with each mapping or list of more than ``NODE_ROWS`` node names summarised, at any depth."""
    if isinstance(value, dict):
        if len(value) > NODE_ROWS and all(key in names for key in value):
            return _spread(value)
        return {key: _condense(item, names) for key, item in value.items()}
    if isinstance(value, list) and len(value) > NODE_ROWS and all(isinstance(v, str) and v in names for v in value):
        return f"{len(value)} nodes: {name_list(value)}"
    if isinstance(value, list):
        return [_condense(item, names) for item in value]
    return value


def _spread(rows: dict[str, Any]) -> dict[str, Any]:
    """Many nodes' rows as one: their number and, per column, min / median / max, a count of yes, or the values."""
    spread: dict[str, Any] = {"nodes": len(rows), "each node": "in report.json"}
    flat = [row for row in rows.values() if _is_flat(row)]
    for column in dict.fromkeys(key for row in flat for key in row):
        values = [row[column] for row in flat if row.get(column) is not None]
        if values and all(isinstance(v, bool) for v in values):
            spread[column] = f"yes at {sum(values)} of {len(values)}"
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            spread[column] = " / ".join(_scalar(v) for v in (min(values), statistics.median(values), max(values)))
            spread[column] += " (min / median / max)"
        elif values and all(_is_scalar(v) for v in values):
            spread[column] = name_list(sorted({_scalar(v) for v in values}), limit=5)
    return spread


def _summary(report: dict[str, Any]) -> str:
    """The figures a coordinator looks for first, as a row of boxes."""
    final = report.get("final") or {}
    boxes: list[tuple[str, str]] = []
    for key, name in (("f05", "test F0.5"), ("auprc", "test AUPRC"), ("latency_f1", "latency F1")):
        if isinstance(final.get(key), (int, float)):
            boxes.append((name, f"{final[key]:.3f}"))
    nodes = (report.get("privacy") or {}).get("nodes") or {}
    epsilons = [p["epsilon"] for p in nodes.values() if isinstance(p.get("epsilon"), (int, float))]
    if epsilons:
        worst = max(nodes.values(), key=lambda p: p.get("epsilon", 0))
        boxes.append(("highest epsilon", f"{max(epsilons):.2f} at delta {worst.get('delta')}"))
    central = (report.get("privacy") or {}).get("central")
    if central:
        boxes.append(("central epsilon", f"{_scalar(central.get('epsilon'))} at delta {central.get('delta')}"))
    boxes.append(("rounds", str(len(report.get("rounds") or []))))
    boxes.append(("nodes", str(len(report.get("nodes") or {}))))
    return '<div class="boxes">' + "".join(
        f'<div class="box"><span>{html.escape(name)}</span><b>{html.escape(value)}</b></div>' for name, value in boxes
    ) + "</div>"


def report_page(report: dict[str, Any], *, markdown: str, run_dir: Path) -> str:
    """The report page of a run folder.

    Parameters
    ----------
    report
        The run's ``report.json`` content.
    markdown
        Its ``report.md`` text (from :func:`federation.report.report_markdown`).
    run_dir
        The run folder, whose PNG figures are embedded.
    """
    md = _markdown()
    shown: set[str] = set()
    story = []
    for title, text in _sections(markdown):
        figures = [(name, caption) for name, caption in FIGURES.get(title, ()) if (run_dir / name).is_file()]
        shown.update(name for name, _ in figures)
        images = "".join(_image(run_dir / name, caption) for name, caption in figures)
        if images:
            story.append(f'<section class="story with-figures">{md.render(text)}<div class="figures">{images}</div></section>')
        else:
            story.append(f'<section class="story">{md.render(text)}</section>')
        if not title:
            story.append(_summary(report))
    extra_figures = [p for p in sorted(run_dir.glob("*.png")) if p.name not in shown]
    if extra_figures:
        images = "".join(_image(path, path.stem.replace("_", " ")) for path in extra_figures)
        story.append(f'<section class="story"><h2>More figures</h2><div class="figures">{images}</div></section>')
    sections = []
    for key, value in report.items():
        if key in STORY_KEYS:
            continue
        folded = key in _FOLDED
        sections.append(
            f'<details class="section" id="section-{html.escape(str(key))}"{"" if folded else " open"}>'
            f"<summary>{html.escape(str(key))}</summary>{render_value(condensed(key, value, report))}</details>"
        )
    body = [
        '<main class="report">',
        f'<p class="muted">CESAGRAM-FL report page of run folder <code>{html.escape(run_dir.name)}</code>; '
        "the same content as report.md and report.json.</p>",
        *story,
    ]
    if sections:
        body += ['<section class="more"><h2>More from report.json</h2>', *sections, "</section>"]
    body.append("</main>")
    return document(
        title=f"CESAGRAM-FL run {report.get('run_id', '')}",
        css=asset("base.css") + "\n" + asset("report.css"),
        body="\n".join(body),
    )
