"""The analyst's review page (`cesagram score --html`): offline, escaped, and the JSON's numbers in a real browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cesagram.cli import main
from federation.data.records import conversation_to_record
from federation.data.types import Conversation, Message
from federation.pages.html import embed_json
from federation.pages.review import card_sections
from tests.browser import browser  # noqa: F401 - the session's headless Chromium

pytestmark = pytest.mark.usefixtures("private_cache")  # tests/federation/conftest.py: its own embedding cache

HOSTILE = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.fixture(scope="module")
def review(ngram_bundle, tmp_path_factory):  # noqa: ANN001, ANN201
    """The held-out file scored once, with its JSON lines and its page."""
    root = tmp_path_factory.mktemp("review")
    out, page = root / "scores.jsonl", root / "review.html"
    assert main(["score", "--model", str(ngram_bundle.model), str(ngram_bundle.test_file), "--out", str(out), "--html", str(page)]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return records, page


def test_page_is_self_contained_and_embeds_the_json_records(review) -> None:  # noqa: ANN001
    records, page = review
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)  # nothing loads from anywhere
    assert not re.search(r"<(link|iframe|object|embed)\b|\bsrc=\"(?!data:)", text)
    data = json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text, re.S).group(1))
    assert [item["record"] for item in data["conversations"]] == records  # the very records, not recomputed
    assert data["intended_use"].startswith("Leads for trained people, never findings")
    assert data["model"]["threshold"] > 0 and data["model"]["rule"]["window"] == 50
    assert len(text) < 2_000_000


def test_embedded_json_cannot_close_its_script_element() -> None:
    value = {"text": HOSTILE, "line": "\u2028"}
    embedded = embed_json(value)
    assert "</" not in embedded and "<" not in embedded
    assert json.loads(embedded) == value


def test_card_sections_read_intended_use_and_privacy() -> None:
    card = "# Card\n\n## Intended use\n\nTriage by\nstaff.\n\n**It produces leads, never findings.**\n\n## Privacy\n\nrecord-level DP.\n- node-0: epsilon 1\n"
    sections = card_sections(card)
    assert sections["intended use"] == ["Triage by staff.", "It produces leads, never findings."]
    assert sections["privacy"] == ["record-level DP.", "node-0: epsilon 1"]


def test_html_with_follow_is_a_one_line_error(ngram_bundle, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["score", "--model", str(ngram_bundle.model), "--follow", "--html", str(tmp_path / "x.html")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert not (tmp_path / "x.html").exists()


def _visible_ids(page) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all("#conversations > li.conv:not([hidden])", "els => els.map(e => e.dataset.id)")


def test_review_page_in_a_browser_matches_the_json(review, browser, tmp_path: Path) -> None:  # noqa: ANN001, F811
    records, path = review
    opened = browser.open(path)
    page = opened.page
    by_id = {r["id"]: r for r in records}
    warned = [r for r in records if r["alert"]]
    assert len(warned) >= 3  # the fixture model does warn: the checks below mean something

    # The list: every conversation, warned first, then by score.
    listed = _visible_ids(page)
    assert sorted(listed) == sorted(by_id)
    assert page.eval_on_selector_all("li.conv[data-alert=true]", "els => els.map(e => e.dataset.id)") == listed[: len(warned)]
    assert {i for i in listed[: len(warned)]} == {r["id"] for r in warned}
    scores = [by_id[i]["score"] for i in listed]
    assert scores[: len(warned)] == sorted(scores[: len(warned)], reverse=True)
    assert scores[len(warned) :] == sorted(scores[len(warned) :], reverse=True)
    assert page.text_content("#count").startswith(f"{len(records)} of {len(records)} conversations shown; {len(warned)} warned")

    # Filters: warned only, then a score floor, then the search by id.
    page.check("#filter-warned")
    assert sorted(_visible_ids(page)) == sorted(r["id"] for r in warned)
    page.uncheck("#filter-warned")
    floor = sorted(r["score"] for r in records)[len(records) // 2]
    page.fill("#filter-score", str(floor))
    assert sorted(_visible_ids(page)) == sorted(r["id"] for r in records if r["score"] >= floor)
    page.fill("#filter-score", "0")
    target = warned[-1]
    page.fill("#filter-search", target["id"])
    assert target["id"] in _visible_ids(page)
    page.fill("#filter-search", "")
    codes = page.eval_on_selector_all("#filter-indicator option", "els => els.map(e => e.value).filter(Boolean)")
    assert set(codes) == {code for r in records for line in r["evidence"] for code in line["indicators"]}
    if codes:
        page.select_option("#filter-indicator", codes[0])
        expected = [r["id"] for r in records if any(codes[0] in line["indicators"] for line in r["evidence"])]
        assert sorted(_visible_ids(page)) == sorted(expected)
        page.select_option("#filter-indicator", "")

    # One warned conversation: the strip is the record's window scores, the marker at alert_at,
    # the evidence lines highlighted with their weights, the suspect named.
    page.click(f'li.conv[data-id="{target["id"]}"]')
    assert page.get_attribute("#detail", "data-id") == target["id"]
    strip = page.eval_on_selector_all("#detail .strip .cell", "els => els.map(e => Number(e.dataset.score))")
    assert strip == target["window_scores"]
    assert page.eval_on_selector_all("#detail .alert-marker", "els => els.map(e => Number(e.dataset.line))") == [target["alert_at"]]
    assert page.eval_on_selector(
        "#detail .alert-marker", "e => Number(e.previousElementSibling.dataset.line)"
    ) == target["alert_at"]
    highlighted = page.eval_on_selector_all(
        "#detail .msg.evidence", "els => els.map(e => [Number(e.dataset.line), Number(e.dataset.weight)])"
    )
    assert sorted(highlighted) == sorted([line["line"], line["weight"]] for line in target["evidence"])
    assert page.text_content("#detail .verdict .suspect") == target["suspect"]
    messages = page.eval_on_selector_all("#detail .msg", "els => els.length")
    assert messages == len(next(c for c in _conversations(path) if c["record"]["id"] == target["id"])["messages"])

    # Keys: j and k move through the visible list.
    page.click("#detail h2")
    position = listed.index(target["id"])
    page.keyboard.press("j")
    assert page.get_attribute("#detail", "data-id") == listed[min(position + 1, len(listed) - 1)]
    page.keyboard.press("k")
    assert page.get_attribute("#detail", "data-id") == target["id"]

    page.screenshot(path=str(tmp_path / "review-1280x800.png"))
    assert (tmp_path / "review-1280x800.png").stat().st_size > 10_000
    assert opened.errors == []
    page.context.close()


def _conversations(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="page-data">(.*?)</script>', text, re.S).group(1))["conversations"]


def test_review_page_is_readable_on_a_narrow_screen(review, browser, tmp_path: Path) -> None:  # noqa: ANN001, F811
    _, path = review
    opened = browser.open(path, width=390, height=800)
    page = opened.page
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.is_visible("#detail .verdict") and page.is_visible("#conversations li.conv")
    page.screenshot(path=str(tmp_path / "review-390x800.png"))
    assert opened.errors == []
    page.context.close()


def test_hostile_text_shows_as_text(ngram_bundle, browser, tmp_path: Path) -> None:  # noqa: ANN001, F811
    conversation = Conversation(
        id="case-" + HOSTILE,
        label=0,
        messages=(
            Message(author="a</script>", text=HOSTILE, time="10:00"),
            Message(author="b", text="<b>not bold</b> & more", time="10:01"),
        ),
    )
    data = tmp_path / "hostile.jsonl"
    data.write_text(json.dumps(conversation_to_record(conversation)) + "\n", encoding="utf-8")
    page_path = tmp_path / "hostile.html"
    assert main(["score", "--model", str(ngram_bundle.model), str(data), "--out", str(tmp_path / "s.jsonl"), "--html", str(page_path)]) == 0
    assert HOSTILE not in page_path.read_text(encoding="utf-8")
    opened = browser.open(page_path)
    page = opened.page
    assert page.evaluate("window.__pwned") is None
    assert page.eval_on_selector_all("#detail .msg .text", "els => els.map(e => e.textContent)")[0].find(HOSTILE) >= 0
    assert page.text_content("#detail h2") == conversation.id
    assert page.eval_on_selector_all("#detail b, #detail img, #detail script", "els => els.length") == 0
    assert opened.errors == []
    page.context.close()
