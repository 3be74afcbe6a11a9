"""Property-based fuzzing: whatever the bytes, readers raise only DataError and the check exits 0 or 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cesagram.cli import main
from federation.data.jsonl import read_jsonl
from federation.data.load import read_conversations
from federation.data.indicators import INDICATOR_CODES
from federation.data.pan12 import read_pan12
from federation.data.records import write_jsonl
from federation.data.types import Conversation, Message
from federation.errors import DataError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

VALID_RECORD = {
    "id": "c1",
    "label": 1,
    "groomer": "g",
    "messages": [
        {"author": "k", "text": "hi", "time": "20:15"},
        {"author": "g", "text": "you seem mature for your age", "indicators": ["flattery"]},
    ],
}
VALID_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<conversations>\n'
    '<conversation id="a">\n'
    '<message line="1"><author>g</author><time>01:02</time><text>do you have a webcam &amp;lt;3</text></message>\n'
    '<message line="2"><author>k</author><time>01:03</time></message>\n'
    "</conversation>\n"
    '<conversation id="b">\n<message line="1"><author>k</author><text>bye&#13;</text></message>\n</conversation>\n'
    "</conversations>\n"
)



def json_like(floats: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | floats | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=12,
    )


# Infinity is what json.dumps writes for float("inf"): not JSON, so the reader must report it.
json_values = json_like(st.floats(allow_nan=False))
strict_json_values = json_like(st.floats(allow_nan=False, allow_infinity=False))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def write(workdir: Path, name: str, data: bytes) -> Path:
    path = workdir / name
    path.write_bytes(data)
    return path


def run_check(path: Path, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["data", "check", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_exit(code: int, out: str, err: str) -> None:
    assert code in (0, 1)
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) <= 1
    if errors:  # an error that stopped the check: exit 1 and nothing but log lines besides
        assert code == 1


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_crash(data, capsys, workdir):
    path = write(workdir, "random.bin", data)
    try:
        result = read_conversations(path)
    except DataError:
        pass
    else:
        assert result.ok == (result.total_issues == 0)
        assert all(issue.line is None or issue.line >= 1 for issue in result.issues)
    assert_clean_exit(*run_check(path, capsys))


@FUZZ
@given(data=st.binary(max_size=500))
def test_random_bytes_after_an_xml_start_never_crash(data, capsys, workdir):
    path = write(workdir, "random.xml", b"<conversations>" + data)
    result = read_pan12(path)
    assert all(issue.line is None or issue.line >= 1 for issue in result.issues)
    assert_clean_exit(*run_check(path, capsys))


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(VALID_XML.encode())))
def test_truncated_xml_reports_an_issue_unless_whole(cut, capsys, workdir):
    data = VALID_XML.encode()[:cut]
    path = write(workdir, "cut.xml", data)
    result = read_pan12(path)
    complete = data.rstrip() == VALID_XML.encode().rstrip()
    assert result.ok == complete
    if not complete:
        assert result.issues[0].line is not None and 1 <= result.issues[0].line <= data.count(b"\n") + 1
    code, out, err = run_check(path, capsys)
    assert_clean_exit(code, out, err)
    assert code == (0 if complete else 1)


FIELDS = [
    ("id",),
    ("label",),
    ("groomer",),
    ("messages",),
    ("messages", 0),
    ("messages", 0, "author"),
    ("messages", 0, "text"),
    ("messages", 0, "time"),
    ("messages", 1, "indicators"),
    ("messages", 1, "indicators", 0),
]


def replaced(path: tuple, value) -> dict:
    record = json.loads(json.dumps(VALID_RECORD))
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return record


@FUZZ
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_any_json_value_in_any_field(field, value, capsys, workdir):
    record = replaced(field, value)
    path = write(workdir, "field.jsonl", (json.dumps(VALID_RECORD) + "\n" + json.dumps(record) + "\n").encode())
    result = read_jsonl(path)
    first = result.conversations[0]
    assert (first.id, first.label, first.groomer, len(first.messages)) == ("c1", 1, "g", 2)
    # the second line is kept only when the mutation left it valid with a new id; else it is reported at line 2
    assert len(result.conversations) + result.total_issues == 2
    assert all(issue.line == 2 for issue in result.issues)
    code, out, err = run_check(path, capsys)
    assert_clean_exit(code, out, err)
    assert code == (0 if len(result.conversations) == 2 else 1)


@FUZZ
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_valid_mutations_are_accepted_and_invalid_ones_reported(field, value, capsys, workdir):
    record = replaced(field, value)
    path = write(workdir, "single.jsonl", (json.dumps(record) + "\n").encode())
    result = read_jsonl(path)
    assert len(result.conversations) + result.total_issues == 1
    if result.conversations:
        conversation = result.conversations[0]
        assert isinstance(conversation.id, str) and conversation.id
        assert conversation.label in (0, 1) and type(conversation.label) is int
        assert conversation.groomer is None or conversation.groomer in conversation.authors
    assert_clean_exit(*run_check(path, capsys))


@FUZZ
@given(records=st.lists(json_values, max_size=5), limit=st.integers(min_value=1, max_value=200))
def test_huge_lines_and_arbitrary_json_lines(records, limit, workdir):
    lines = [json.dumps(r) for r in records] + ["x" * (limit + 1)]
    path = write(workdir, "lines.jsonl", "\n".join(lines).encode())
    result = read_jsonl(path, max_line_bytes=limit, max_issues=3)
    assert result.total_issues >= 1
    long_lines = [i for i, line in enumerate(lines, 1) if len(line.encode()) > limit]
    reported = [i.line for i in result.issues if "longer than" in i.what]
    assert reported == long_lines[: len(reported)]


authors = st.text(min_size=1, max_size=6)
messages = st.builds(
    Message,
    author=authors,
    text=st.text(max_size=30),
    time=st.none() | st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59)),
    indicators=st.lists(st.sampled_from(INDICATOR_CODES), max_size=3).map(tuple),
)


@st.composite
def conversations(draw) -> list[Conversation]:
    ids = draw(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4, unique=True))
    result = []
    for conversation_id in ids:
        msgs = tuple(draw(st.lists(messages, min_size=1, max_size=5)))
        groomer = draw(st.none() | st.sampled_from([m.author for m in msgs]))
        keys = st.text(max_size=6).filter(lambda k: k not in {"id", "label", "messages", "groomer"})
        extra = draw(st.dictionaries(keys, strict_json_values, max_size=2))
        result.append(Conversation(conversation_id, draw(st.sampled_from([0, 1])), msgs, groomer, extra))
    return result


@FUZZ
@given(batch=conversations())
def test_round_trip_of_random_conversations(batch, workdir):
    path = workdir / "roundtrip.jsonl"
    write_jsonl(path, batch)
    result = read_jsonl(path)
    assert result.ok and result.conversations == batch


@pytest.mark.parametrize("reader", [read_jsonl, read_pan12, read_conversations])
def test_missing_file_raises_data_error(reader, tmp_path):
    with pytest.raises(DataError):
        reader(tmp_path / "does-not-exist")
