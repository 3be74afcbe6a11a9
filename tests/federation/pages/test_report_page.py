"""The run folder's report.html: report.md's story with its figures inline, every report.json section, in a browser."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from federation.pages.report_page import STORY_KEYS
from federation.report import write_report
from federation.report_figures import participation_grid
from tests.browser import browser  # noqa: F401 - the session's headless Chromium


def _report() -> dict:
    """A federated run's report as build_report shapes it, with sections other code adds."""
    return {
        "run_id": "run-<x>",
        "mode": "federated",
        "final": {"f05": 0.5, "auprc": 0.6, "threshold": 0.4},
        "rounds": [
            {"round": r, "train_loss": 0.7, "participants": ["node-0"] + (["node-1"] if r == 1 else []),
             "declined": {} if r == 1 else {"node-1": "cap"}, "failed": {},
             "metrics": {"f05": 0.5, "f1": 0.5, "precision": 0.5, "recall": 0.5, "auprc": 0.6, "epsilon": {"node-0": r, "node-1": 1.0}},
             "seconds": 1.0}
            for r in (1, 2)
        ],
        "privacy": {"guarantee": "record-level DP-SGD at each node", "nodes": {
            "node-0": {"epsilon": 2.0, "delta": 1e-5, "cap": 8.0, "accountant": "rdp", "unit": "conversation", "steps": 4, "stopped_for_budget": False, "declined": {}},
        }},
        "protections": {"tls": False},
        "nodes": {
            "node-0": {"kind": "hotline", "conversations": 10, "positives": 2, "rounds": [1, 2], "missed_rounds": [], "failed": {}, "declined": {}},
            "node-1": {"kind": "police", "conversations": 5, "positives": 1, "rounds": [1], "missed_rounds": [], "failed": {}, "declined": {"2": "cap"}},
        },
        "timing": {"total": 1.0},
        "notes": ["a note with <script>alert(1)</script> in it"],
        "comparison": {"federated_f05": 0.5, "centralized_nonprivate_f05": 0.6, "local_mean_f05": 0.4,
                       "local_f05": {"node-0": 0.45, "node-1": 0.35}, "statements": ["federated 0.5 vs centralized 0.6"]},
        # Sections no page code knows about: they must show up anyway.
        "future_section": {"canaries": 20, "nodes": {"node-0": {"auc": 0.51, "epsilon_lower_bound": 0.1}}},
        "real_negatives": {"conversations": 300, "false_positive_rate": 0.02, "by_source": [{"source": "chitchat", "fpr": 0.02}]},
    }


def test_report_html_has_the_story_figures_and_unknown_sections(tmp_path: Path) -> None:
    report = _report()
    write_report(report, tmp_path)
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["comparison.png", "epsilon.png", "metrics.png", "participation.png"]
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted((tmp_path / name).read_bytes() for name in pngs)
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "run-&lt;x&gt;" in text
    for key in set(report) - STORY_KEYS:
        assert f'id="section-{key}"' in text
    assert "epsilon_lower_bound" in text and "chitchat" in text


def test_participation_grid_reads_declined_and_missed_rounds() -> None:
    names, rounds, grid = participation_grid(_report())
    assert (names, rounds) == (["node-0", "node-1"], [1, 2])
    assert grid == [["trained", "trained"], ["trained", "declined"]]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run folder: the local-only baseline of the quick experiment (no Flower runtime, seconds)."""
    root = tmp_path_factory.mktemp("run")
    completed = subprocess.run(
        [sys.executable, "-m", "cesagram", "simulate", "experiment=quick", "mode=local",
         "data.conversations_per_node=40", "data.test_conversations=40", f"hydra.run.dir={root / 'run'}"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "CESAGRAM_CACHE_DIR": str(root / "cache")},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    # The console stays quiet: header, a closing line per progress bar (no terminal here), summary.
    out, err = completed.stdout.splitlines(), completed.stderr.splitlines()
    assert out[0].startswith("CESAGRAM-FL local run: 3 nodes") and out[-1] == f"run folder: {root / 'run'}"
    assert not any("[INFO]" in line for line in out + err) and len(out) + len(err) <= 30
    assert any(line.startswith("training: 6 of 6 rounds in ") for line in err)
    assert "[INFO]" in (root / "run" / "main.log").read_text()
    return root / "run"


def test_report_page_in_a_browser(run_folder: Path, browser, tmp_path: Path) -> None:  # noqa: ANN001, F811
    report = json.loads((run_folder / "report.json").read_text(encoding="utf-8"))
    opened = browser.open(run_folder / "report.html")
    page = opened.page
    assert report["run_id"] in page.text_content("h1")
    # Every figure of the folder is drawn (loaded, with a size), none is broken.
    sizes = page.eval_on_selector_all("figure img", "els => els.map(e => [e.complete, e.naturalWidth])")
    assert len(sizes) == len(list(run_folder.glob("*.png"))) >= 3
    assert all(done and width > 100 for done, width in sizes)
    # The rounds table has a row per round entry of report.json (local mode: one per node and round).
    rows = page.eval_on_selector_all(
        "section.story", "els => els.filter(s => s.querySelector('h2') && s.querySelector('h2').textContent === 'Rounds')"
        ".map(s => s.querySelectorAll('tbody tr').length)",
    )
    assert rows == [len(report["rounds"])]
    for key in set(report) - STORY_KEYS:
        assert page.is_visible(f"#section-{key} > summary")
    page.click("#section-config > summary")  # folded sections open on a click
    assert page.eval_on_selector("#section-config", "e => e.open") is True
    page.screenshot(path=str(tmp_path / "report-1280x800.png"))
    assert opened.errors == []
    page.context.close()
    narrow = browser.open(run_folder / "report.html", width=390, height=800)
    assert narrow.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert narrow.errors == []
    narrow.page.context.close()
