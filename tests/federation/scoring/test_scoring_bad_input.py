"""Bad records are reported on stderr (file:line: what, no chat text) and the rest are scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cesagram.cli import main
from federation.data.records import conversation_to_record
from federation.scoring.texts import MAX_TEXT_CHARS, prepare_conversation
from federation.data.types import Conversation, Message

SECRET = "zebra-umbrella-secret"


def jsonl_with_bad_records(ngram_bundle, path: Path) -> tuple[Path, list[str]]:  # noqa: ANN001
    good = [conversation_to_record(c) for c in ngram_bundle.test[:6]]
    empty_text = dict(good[1], messages=[*good[1]["messages"][:2], {"author": "a", "text": ""}, *good[1]["messages"][2:]])
    huge = dict(good[2], messages=[*good[2]["messages"], {"author": "a", "text": SECRET * 1000}])
    lines = [
        json.dumps(good[0]),
        "{broken json " + SECRET,  # line 2
        json.dumps({"label": 1, "messages": [{"author": "a", "text": SECRET}]}),  # line 3: no id
        json.dumps(empty_text),  # line 4
        json.dumps(huge),  # line 5
        json.dumps(dict(good[3], messages=[{"author": 7, "text": SECRET}])),  # line 6: author not a string
        json.dumps(good[4]),
        json.dumps(good[4]),  # line 8: duplicate id
        json.dumps(good[5]),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, [good[0]["id"], good[1]["id"], good[2]["id"], good[4]["id"], good[5]["id"]]


def test_batch_reports_bad_records_and_scores_the_others(ngram_bundle, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path, scored_ids = jsonl_with_bad_records(ngram_bundle, tmp_path / "mixed.jsonl")
    assert main(["score", "--model", str(ngram_bundle.model), str(path)]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["id"] for line in captured.out.splitlines()] == scored_ids
    err = captured.err
    assert SECRET not in err
    for line in (2, 3, 6, 8):
        assert f"{path}:{line}: " in err
    assert "record skipped" in err
    assert "message 3: empty text" in err
    assert f"only the first {MAX_TEXT_CHARS} are scored" in err


def test_nothing_readable_is_one_line_exit_1(ngram_bundle, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = tmp_path / "junk.jsonl"
    path.write_text("{nope " + SECRET + "\n", encoding="utf-8")
    assert main(["score", "--model", str(ngram_bundle.model), str(path)]) == 1
    err = capsys.readouterr().err
    assert SECRET not in err
    assert err.strip().splitlines()[-1].startswith("error: ") and "no conversation could be read" in err


def test_huge_texts_are_cut_and_empty_ones_kept() -> None:
    conversation = Conversation(
        id="c",
        label=0,
        messages=(Message("a", "hi"), Message("b", ""), Message("a", "x" * (MAX_TEXT_CHARS + 10)), Message("b", "late")),
    )
    prepared, notes = prepare_conversation(conversation, max_messages=3)
    assert [len(m.text) for m in prepared.messages] == [2, 0, MAX_TEXT_CHARS]
    assert [n.line for n in notes] == [2, 3]
    assert all("x" * 20 not in str(n) for n in notes)
    untouched, none = prepare_conversation(conversation, max_messages=1)
    assert none == [] and len(untouched.messages) == 1


PAN = """<?xml version="1.0" encoding="UTF-8"?>
<conversations>
<conversation id="p1">
{grooming}
</conversation>
<conversation id="p2">
<message line="1"><author>kid2</author><time>10:00</time><text>hey</text></message>
<message line="2"><author>kid3</author><time>10:01</time></message>
</conversation>
</conversations>
"""


def test_pan12_input_scores_and_needs_predators_to_evaluate(ngram_bundle, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    grooming = next(c for c in ngram_bundle.test if c.label == 1)
    messages = "\n".join(
        f'<message line="{i}"><author>{"pred1" if m.author == grooming.groomer else "kid1"}</author>'
        f"<time>21:00</time><text>{m.text.replace('&', '&amp;').replace('<', '&lt;')}</text></message>"
        for i, m in enumerate(grooming.messages, start=1)
    )
    xml = tmp_path / "corpus.xml"
    xml.write_text(PAN.format(grooming=messages), encoding="utf-8")
    assert main(["score", "--model", str(ngram_bundle.model), str(xml)]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["id"] for line in captured.out.splitlines()] == ["p1", "p2"]
    assert "conversation 'p2': message 2: empty text" in captured.err

    assert main(["evaluate", "--model", str(ngram_bundle.model), str(xml)]) == 1
    assert "--predators" in capsys.readouterr().err

    predators = tmp_path / "predators.txt"
    predators.write_text("pred1\nsomeone-else\n", encoding="utf-8")
    assert main(["evaluate", "--model", str(ngram_bundle.model), str(xml), "--predators", str(predators)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"]["positives"] == 1 and report["authors"]["true"] == 1
    assert report["metrics"]["conversations"] == 2


@pytest.mark.parametrize("flag", [[], ["--follow"]])
def test_no_author_or_text_in_logs(ngram_bundle, tmp_path: Path, capsys, caplog, flag: list[str]) -> None:  # noqa: ANN001
    records = [
        {"conversation": "c1", "author": "author-" + SECRET, "text": SECRET + " hello"},
        {"conversation": "c1", "author": "other", "text": ""},
    ]
    stream = tmp_path / "s.jsonl"
    stream.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps({"id": "c1", "label": 0, "messages": [{"author": "author-" + SECRET, "text": SECRET}, {"author": "o", "text": ""}]})
        + "\n",
        encoding="utf-8",
    )
    caplog.set_level("DEBUG")
    main(["score", "--model", str(ngram_bundle.model), *flag, str(stream if flag else data)])
    assert SECRET not in capsys.readouterr().err
    assert SECRET not in caplog.text
