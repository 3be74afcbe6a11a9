"""``cesagram data check``: summary figures, every bad record with its line, exit status."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from cesagram.cli import main
from federation.data.check import summarize
from federation.data.types import Conversation, Message

SECRET = "SENTINELAUTHOR"


def conv(conversation_id: str, n: int, *, label: int = 0, groomer: str | None = None, empty: int = 0) -> dict:
    messages = [{"author": f"{conversation_id}-u{i % 2}", "text": "" if i < empty else f"m{i}"} for i in range(n)]
    if groomer is not None:
        messages[-1]["author"] = groomer
    record = {"id": conversation_id, "label": label, "messages": messages}
    if groomer is not None:
        record["groomer"] = groomer
    return record


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def figures(stdout: str) -> dict[str, str]:
    """The summary rows as name -> value, split on the two-space column gap."""
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("  ") and "  " in line.strip():
            name, value = line.strip().split("  ", 1)
            rows[name] = value.strip()
    return rows


def test_clean_file_prints_the_summary_and_exits_zero(tmp_path, capsys):
    lengths = [1, 2, 3, 4, 10, 200]
    records = [conv(f"c{i}", n) for i, n in enumerate(lengths)]
    records[1] = conv("c1", 2, label=1, groomer=SECRET, empty=1)
    records[3] = conv("c3", 4, label=1)
    path = write_jsonl(tmp_path / "node.jsonl", records)
    assert main(["data", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = figures(out)
    assert rows["conversations"] == "6"
    assert rows["messages"] == str(sum(lengths))
    assert rows["positives"] == "2 (33.3%), groomer known in 1"
    # two authors per conversation except the one of length 1, plus the groomer in c1 replacing one
    assert rows["authors"] == str(sum(min(n, 2) for n in lengths))
    assert rows["messages per conversation"] == (
        f"min 1, median {statistics.median(lengths):g}, mean {sum(lengths) / 6:.1f}, p90 200, max 200"
    )
    assert rows["empty texts"] == "1"
    assert rows["over 150 messages"] == "1 (kept whole)"
    assert out.rstrip().endswith(f"{path}: ok")
    assert SECRET not in out


def test_summarize_statistics_match_an_independent_computation():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 151]
    conversations = [
        Conversation(id=str(i), label=i % 2, messages=tuple(Message(f"a{j % 3}", "x") for j in range(n)))
        for i, n in enumerate(lengths)
    ]
    summary = summarize(conversations)
    ordered = sorted(lengths)
    assert summary.conversations == len(lengths) and summary.messages == sum(lengths)
    assert summary.min_messages == min(lengths) and summary.max_messages == max(lengths)
    assert summary.median_messages == statistics.median(lengths)
    assert summary.mean_messages == pytest.approx(statistics.fmean(lengths))
    assert summary.p90_messages == ordered[math.ceil(0.9 * len(ordered)) - 1]
    assert summary.positives == sum(1 for i in range(len(lengths)) if i % 2)
    assert summary.authors == 3 and summary.long_conversations == 1
    assert summarize([]).format()  # an empty summary still prints


def test_every_bad_record_is_reported_with_its_line_and_exit_one(tmp_path, capsys):
    records = [
        conv("a", 2),
        {"id": "b", "label": 1, "messages": [{"author": "x", "text": "t"}, {"author": "x", "text": 5}]},
        "",
        "{oops",
        conv("a", 3),
        {"id": "c", "label": "1", "messages": [{"author": SECRET, "text": "t"}]},
        conv("d", 2),
    ]
    path = write_jsonl(tmp_path / "data.jsonl", records)
    assert main(["data", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    issues = [line for line in out.splitlines() if line.startswith(f"{path}:") and line[len(str(path)) + 1].isdigit()]
    assert issues == [
        f"{path}:2: messages[1].text: expected a string, got a number",
        f"{path}:4: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        f"{path}:5: id: duplicate of the id on line 1; ids must be unique",
        f"{path}:6: label: expected the number 0 or 1, got a string",
    ]
    assert figures(out)["conversations"] == "2"
    assert "(valid records only)" in out
    assert out.rstrip().endswith(f"{path}: 4 problems; fix them and run the check again")
    assert SECRET not in out


def test_max_issues_limits_the_list(tmp_path, capsys):
    path = write_jsonl(tmp_path / "many.jsonl", ["[]"] * 12 + [conv("ok", 1)])
    assert main(["data", "check", str(path), "--max-issues", "5"]) == 1
    out = capsys.readouterr().out
    assert [line.split(":")[1] for line in out.splitlines() if ": expected a JSON object" in line] == [
        "1", "2", "3", "4", "5"
    ]
    assert "... and 7 more" in out.splitlines()
    assert "12 problems" in out


@pytest.mark.parametrize("target", ["missing.jsonl", "."])
def test_missing_file_or_directory_is_one_line_on_stderr(tmp_path, capsys, target):
    assert main(["data", "check", str(tmp_path / target)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "Traceback" not in err


def test_negative_max_issues_is_a_config_error(tmp_path, capsys):
    path = write_jsonl(tmp_path / "d.jsonl", [conv("a", 1)])
    assert main(["data", "check", str(path), "--max-issues", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: --max-issues: expected an integer of 0 or more")


def pan_xml(tmp_path: Path) -> Path:
    path = tmp_path / "pan.xml"
    path.write_text(
        "<conversations>\n"
        "<conversation id='1'><message line='1'><author>p</author><text>hi</text></message>"
        "<message line='2'><author>k</author></message></conversation>\n"
        "<conversation id='2'><message line='1'><author>k</author><text>yo</text></message></conversation>\n"
        "</conversations>\n"
    )
    return path


def test_pan12_without_predators_says_labels_are_zero(tmp_path, capsys):
    assert main(["data", "check", str(pan_xml(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "PAN-2012 XML" in out
    assert "no --predators file given, so every label is 0" in out
    rows = figures(out)
    assert rows["positives"].startswith("0 ") and rows["empty texts"] == "1"


def test_pan12_with_predators(tmp_path, capsys):
    predators = tmp_path / "pred.txt"
    predators.write_text("p\nunseen\n")
    assert main(["data", "check", str(pan_xml(tmp_path)), "--predators", str(predators)]) == 0
    out = capsys.readouterr().out
    assert figures(out)["positives"] == "1 (50.0%), groomer known in 1"
    assert "predators: 2 listed, 1 of them take part in this file" in out


def test_predators_with_jsonl_is_an_error(tmp_path, capsys):
    path = write_jsonl(tmp_path / "d.jsonl", [conv("a", 1)])
    predators = tmp_path / "pred.txt"
    predators.write_text("p\n")
    assert main(["data", "check", str(path), "--predators", str(predators)]) == 1
    assert "--predators applies to PAN-2012 XML files only" in capsys.readouterr().err


def test_malformed_xml_exits_one_with_the_line(tmp_path, capsys):
    path = tmp_path / "bad.xml"
    path.write_text("<conversations>\n<conversation id='1'>\n<message line='1'><author>a</author>\n</conversations>\n")
    assert main(["data", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:4: XML is not well-formed (mismatched tag); reading stopped here" in out.splitlines()
