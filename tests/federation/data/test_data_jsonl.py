"""The canonical JSON Lines reader: valid files, every kind of bad record, round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federation.data.jsonl import read_jsonl
from federation.data.load import load_conversations, read_conversations
from federation.data.records import write_jsonl
from federation.data.types import Conversation, Message
from federation.errors import DataError

SECRET_TEXT = "TEXTSENTINEL"
SECRET_AUTHOR = "AUTHORSENTINEL"


def record(conversation_id: str = "c1", label: int = 0, **extra) -> dict:
    """A valid record with two messages; keyword arguments override or add keys."""
    base = {
        "id": conversation_id,
        "label": label,
        "messages": [
            {"author": "kid", "text": "hi", "time": "18:01"},
            {"author": SECRET_AUTHOR, "text": SECRET_TEXT, "indicators": ["personal_question"]},
        ],
    }
    base.update(extra)
    return base


def write_lines(path: Path, lines: list[str | dict]) -> Path:
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines), encoding="utf-8")
    return path


def test_valid_file_is_read_with_labels_groomers_and_unknown_keys(tmp_path):
    path = write_lines(
        tmp_path / "data.jsonl",
        [
            record("a", 1, groomer=SECRET_AUTHOR, source="helpline-7", meta={"k": [1, 2]}),
            "",
            "   ",
            record("b", 0),
            record("c", 1, groomer=None),
        ],
    )
    result = read_jsonl(path)
    assert result.issues == [] and result.more_issues == 0 and result.ok
    assert [c.id for c in result.conversations] == ["a", "b", "c"]
    assert [c.label for c in result.conversations] == [1, 0, 1]
    assert [c.groomer for c in result.conversations] == [SECRET_AUTHOR, None, None]
    first = result.conversations[0]
    assert first.extra == {"source": "helpline-7", "meta": {"k": [1, 2]}}
    assert first.messages[0] == Message(author="kid", text="hi", time="18:01")
    assert first.messages[1].indicators == ("personal_question",)


def test_bom_crlf_and_unknown_message_keys(tmp_path):
    line = json.dumps(record("a", messages=[{"author": "x", "text": "t", "emoji": 3}]))
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\r\n" + json.dumps(record("b")).encode() + b"\r\n")
    result = read_jsonl(path)
    assert result.ok
    # unknown per-message keys are dropped: Message has no place for them
    assert result.conversations[0].messages == (Message(author="x", text="t"),)


def test_round_trip_write_then_read_gives_equal_conversations(tmp_path):
    conversations = [
        Conversation(
            id="r1",
            label=1,
            groomer="g",
            messages=(
                Message("k", "hello", "09:00"),
                Message("g", "is anyone else using your phone?", None, ("risk_check", "secrecy")),
                Message("k", ""),
            ),
            extra={"source": "synthetic", "split": {"fold": 3}},
        ),
        Conversation(id="r2", label=0, messages=(Message("a", "ünïcödé ✓ 😀"),)),
    ]
    path = tmp_path / "rt.jsonl"
    write_jsonl(path, conversations)
    assert read_jsonl(path).conversations == conversations
    assert load_conversations(path) == conversations


def one_message(**fields) -> dict:
    """A record whose single message is ``{"author": "a", "text": "t"}`` updated with ``fields``."""
    return record(messages=[{"author": "a", "text": "t", **fields}])


NO_ID = {"label": 0, "messages": [{"author": "a", "text": "t"}]}

BAD_RECORDS = [
    (NO_ID, "missing required key: id"),
    ({**NO_ID, "id": 7}, "id: expected a non-empty string, got a number"),
    ({**NO_ID, "id": ""}, "id: expected a non-empty string, got an empty string"),
    (record(label=True), "label: expected 0 or 1, got a boolean"),
    (record(label="1"), "label: expected the number 0 or 1, got a string"),
    (record(label=2), "label: expected 0 or 1, got 2"),
    (record(label=1.0), "label: expected 0 or 1, got a number"),
    (record(label=None), "label: expected 0 or 1, got null"),
    (record(messages=[]), "messages: expected a non-empty list of messages, got an empty list"),
    (record(messages={"author": "a"}), "messages: expected a non-empty list of messages, got an object"),
    (record(messages=["hi"]), "messages[0]: expected an object with author and text, got a string"),
    (
        record(messages=[{"author": "a", "text": "t"}, {"author": "a", "text": 3}]),
        "messages[1].text: expected a string, got a number",
    ),
    (one_message(author=None), "messages[0].author: expected a non-empty string, got null"),
    (one_message(author=""), "messages[0].author: expected a non-empty string, got an empty string"),
    (record(messages=[{"text": "t"}]), "messages[0]: missing required key: author"),
    (record(messages=[{"author": "a"}]), "messages[0]: missing required key: text"),
    (one_message(time="7:5"), 'messages[0].time: expected "HH:MM"'),
    (one_message(time="24:00"), 'messages[0].time: expected "HH:MM"'),
    (one_message(time="１２:００"), 'messages[0].time: expected "HH:MM"'),
    (one_message(time=1200), "messages[0].time: expected a string"),
    (one_message(indicators="gift"), "messages[0].indicators: expected a list"),
    (one_message(indicators=["gift", "hugs"]), "messages[0].indicators[1]: unknown risk-indicator code"),
    (one_message(indicators=[None]), "messages[0].indicators[0]: expected a code string, got null"),
    (record(groomer=5), "groomer: expected a non-empty string, got a number"),
    (record(label=1, groomer="nobody-here"), "groomer: not one of the conversation's authors"),
    (record(label=0, groomer="nobody-here"), "groomer: not one of the conversation's authors"),
]


@pytest.mark.parametrize(("bad", "expected"), BAD_RECORDS, ids=[e for _, e in BAD_RECORDS])
def test_each_bad_field_is_reported_at_its_line(tmp_path, bad, expected):
    path = write_lines(tmp_path / "bad.jsonl", [record("ok1"), "", bad, record("ok2")])
    result = read_jsonl(path)
    assert [c.id for c in result.conversations] == ["ok1", "ok2"]
    assert len(result.issues) == 1
    issue = result.issues[0]
    assert issue.line == 3 and issue.path == str(path)
    assert expected in issue.what
    assert str(issue).startswith(f"{path}:3: ")
    assert SECRET_TEXT not in str(issue) and SECRET_AUTHOR not in str(issue)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"id": "x", "label": NaN, "messages": []}', "NaN and Infinity are not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"just a string"', "expected a JSON object"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"id": "x", "label": 1' + b"1" * 5000 + b"}", "number is too large"),
    ],
)
def test_undecodable_lines_are_reported_without_echo(tmp_path, raw, expected):
    path = tmp_path / "raw.jsonl"
    path.write_bytes(json.dumps(record("ok")).encode() + b"\n" + raw + b"\n")
    result = read_jsonl(path)
    assert [c.id for c in result.conversations] == ["ok"]
    assert [i.line for i in result.issues] == [2]
    assert expected in result.issues[0].what
    assert len(str(result.issues[0])) < 300


def test_unpaired_surrogate_escape_is_reported(tmp_path):
    line = '{"id": "s", "label": 0, "messages": [{"author": "a", "text": "x\\ud83d"}]}'
    path = write_lines(tmp_path / "s.jsonl", [line])
    result = read_jsonl(path)
    assert result.conversations == []
    assert "messages[0].text: contains an unpaired surrogate" in result.issues[0].what


def test_duplicate_ids_keep_the_first_and_report_the_second(tmp_path):
    path = write_lines(tmp_path / "dup.jsonl", [record("same"), record("other"), record("same", 1)])
    result = read_jsonl(path)
    assert [c.id for c in result.conversations] == ["same", "other"]
    assert [(i.line, i.what) for i in result.issues] == [(3, "id: duplicate of the id on line 1; ids must be unique")]


def test_several_problems_in_one_record_give_one_issue(tmp_path):
    bad = {"id": 1, "label": "x", "messages": [{"author": 1, "text": 2}, {"author": 3, "text": 4}]}
    result = read_jsonl(write_lines(tmp_path / "m.jsonl", [bad]))
    assert len(result.issues) == 1
    what = result.issues[0].what
    assert what.startswith("id: expected a non-empty string, got a number; label:")
    assert what.endswith("(and 3 more in this record)")


def test_long_line_is_reported_without_parsing(tmp_path):
    path = tmp_path / "long.jsonl"
    big = json.dumps(record("big", source="x" * 5000))
    path.write_text("\n".join([json.dumps(record("a")), big, json.dumps(record("b"))]) + "\n")
    result = read_jsonl(path, max_line_bytes=1000)
    assert [c.id for c in result.conversations] == ["a", "b"]
    assert [(i.line, i.what.split(";")[0]) for i in result.issues] == [(2, "line longer than 1000 bytes")]


def test_default_limit_rejects_a_line_over_ten_megabytes(tmp_path):
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as handle:
        handle.write(json.dumps(record("a")).encode() + b"\n")
        handle.write(b'{"id": "h", "pad": "' + b"y" * (10 * 1024 * 1024) + b'"}\n')
        handle.write(json.dumps(record("b")).encode())  # last line without newline
    result = read_jsonl(path)
    assert [c.id for c in result.conversations] == ["a", "b"]
    assert [i.line for i in result.issues] == [2]
    assert "longer than 10485760 bytes" in result.issues[0].what


def test_max_issues_keeps_the_first_and_counts_the_rest(tmp_path):
    path = write_lines(tmp_path / "many.jsonl", ["{bad"] * 7 + [record("fine")])
    result = read_jsonl(path, max_issues=3)
    assert [i.line for i in result.issues] == [1, 2, 3]
    assert result.more_issues == 4 and result.total_issues == 7
    assert [c.id for c in result.conversations] == ["fine"]


def test_empty_file_is_an_issue(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    result = read_jsonl(path)
    assert result.conversations == [] and not result.ok
    assert str(result.issues[0]) == f"{path}: no conversations found; expected at least one record"


def test_missing_file_and_directory_raise_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="no such data file") as missing:
        read_jsonl(tmp_path / "absent.jsonl")
    with pytest.raises(DataError, match="is a directory") as directory:
        read_conversations(tmp_path)
    for error in (missing, directory):
        assert "\n" not in str(error.value)


def test_load_conversations_is_strict_and_points_to_the_check(tmp_path):
    path = write_lines(tmp_path / "strict.jsonl", [record("a"), "{bad", record("b", label=7), "[]"])
    with pytest.raises(DataError) as error:
        load_conversations(path)
    message = str(error.value)
    assert message.startswith(f"{path}:2: not valid JSON")
    assert f"(and 2 more problems; run `cesagram data check {path}`)" in message

    single = write_lines(tmp_path / "single.jsonl", [record("a", label=7)])
    with pytest.raises(DataError, match=r"single.jsonl:1: label: .*\(run `cesagram data check"):
        load_conversations(single)


def test_predators_file_is_refused_for_jsonl(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [record("a")])
    (tmp_path / "p.txt").write_text("x\n")
    with pytest.raises(DataError, match="--predators applies to PAN-2012 XML files only"):
        read_conversations(path, predators=tmp_path / "p.txt")
