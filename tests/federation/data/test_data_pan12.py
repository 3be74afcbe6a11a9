"""The PAN-2012 reader: labels from the predators file and the corpus's known traps."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.data.load import detect_format, read_conversations
from federation.data.pan12 import clean_text, read_pan12, read_predators
from federation.errors import DataError

PREDATOR = "b13e4d0fpred"
SECRET_TEXT = "TEXTSENTINEL"


def message(line: int | None, author: str | None, text: str | None, time: str | None = "21:30") -> str:
    parts = [f'<message line="{line}">' if line is not None else "<message>"]
    if author is not None:
        parts.append(f"<author>{author}</author>")
    if time is not None:
        parts.append(f"<time>{time}</time>")
    if text is not None:
        parts.append(f"<text>{text}</text>")
    parts.append("</message>")
    return "".join(parts)


def conversation(conversation_id: str | None, messages: list[str]) -> str:
    head = f'<conversation id="{conversation_id}">' if conversation_id is not None else "<conversation>"
    return "\n".join([head, *messages, "</conversation>"])


def corpus(*conversations: str) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<conversations>", *conversations, "</conversations>"]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def trap_corpus() -> str:
    """Four conversations: one with a predator and every trap, two negative, one 160 messages long."""
    grooming = conversation(
        "g1",
        [
            # out of order: line attributes decide
            message(3, PREDATOR, "dont tell ur parents ok &amp;lt;3"),
            message(1, "kid01", "hi"),
            message(2, PREDATOR, "how old r u?&#13;&#10;what school"),
            message(4, "kid01", None),  # missing <text>
            message(5, PREDATOR, "AT&amp;amp;T phone?&#13;"),
        ],
    )
    other = conversation("n1", [message(1, "a1", "lol"), message(2, "a2", "brb", time=None)])
    empty_text = conversation("n2", [message(1, "a1", ""), message(2, "a3", "   ")])
    long = conversation("long", [message(i, f"u{i % 2}", f"msg {i}") for i in range(1, 161)])
    return corpus(grooming, other, empty_text, long)


def test_corpus_with_traps_and_predators(tmp_path):
    xml = write(tmp_path / "pan.xml", trap_corpus())
    predators = write(tmp_path / "predators.txt", f"\n{PREDATOR}\nsomeoneelse\n\n")
    result = read_pan12(xml, predators=predators)
    assert result.ok, [str(i) for i in result.issues]
    by_id = {c.id: c for c in result.conversations}
    assert list(by_id) == ["g1", "n1", "n2", "long"]
    assert {cid: c.label for cid, c in by_id.items()} == {"g1": 1, "n1": 0, "n2": 0, "long": 0}
    assert by_id["g1"].groomer == PREDATOR and by_id["n1"].groomer is None
    g1 = by_id["g1"]
    assert g1.texts == ("hi", "how old r u?\nwhat school", "dont tell ur parents ok <3", "", "AT&T phone?")
    assert g1.authors == ("kid01", PREDATOR)
    assert g1.messages[0].time == "21:30" and by_id["n1"].messages[1].time is None
    assert len(by_id["long"].messages) == 160
    assert [m.text for m in by_id["long"].messages[:3]] == ["msg 1", "msg 2", "msg 3"]


def test_without_predators_every_label_is_zero(tmp_path):
    xml = write(tmp_path / "pan.xml", trap_corpus())
    result = read_conversations(xml)
    assert len(result.conversations) == 4
    assert all(c.label == 0 and c.groomer is None for c in result.conversations)


def test_document_order_when_a_message_lacks_the_line_attribute(tmp_path):
    xml = write(tmp_path / "p.xml", corpus(conversation("c", [message(2, "a", "first"), message(None, "b", "second")])))
    assert read_pan12(xml).conversations[0].texts == ("first", "second")


def test_carriage_returns_in_the_file_itself(tmp_path):
    xml = tmp_path / "crlf.xml"
    skeleton = corpus(conversation("c", [message(1, "a", "@TEXT@")])).replace("\n", "\r\n")
    xml.write_bytes(skeleton.replace("@TEXT@", "one\r\ntwo\rthree").encode())
    result = read_pan12(xml)
    assert result.ok
    assert result.conversations[0].texts == ("one\ntwo\nthree",)


def test_clean_text_unescapes_once_more():
    assert clean_text("&lt;3 &amp; ok") == "<3 & ok"
    assert clean_text("a\r\nb\r") == "a\nb"


def test_bad_conversations_are_reported_at_their_lines(tmp_path):
    text = corpus(
        conversation("ok", [message(1, "a", "x")]),  # lines 3-5
        conversation(None, [message(1, "a", "x")]),  # 6-8: no id
        conversation("ok", [message(1, "a", SECRET_TEXT)]),  # 9-11: duplicate id
        conversation("noauthor", [message(1, "a", "x"), message(2, None, SECRET_TEXT)]),  # 12-15: author missing on 14
        conversation("badtime", [message(1, "a", "x", time="9pm")]),  # 16-18
        conversation("empty", []),  # 19-20
        conversation("badline", [message("x", "a", "x")]),  # 21-23  # type: ignore[arg-type]
        conversation("fine", [message(1, "a", "x")]),  # 24-26
    )
    result = read_pan12(write(tmp_path / "bad.xml", text))
    assert [c.id for c in result.conversations] == ["ok", "fine"]
    got = [(i.line, i.what) for i in result.issues]
    assert got == [
        (6, "conversation without an id attribute (or an empty one)"),
        (9, "conversation id: duplicate of the conversation on line 3; ids must be unique"),
        (14, "message without <author> (or an empty one)"),
        (17, '<time>: expected "HH:MM" (00:00 to 23:59)'),
        (19, "conversation without messages"),
        (22, "message attribute line: expected an integer"),
    ]
    assert all(SECRET_TEXT not in str(i) for i in result.issues)


def test_malformed_xml_reports_the_line_and_keeps_earlier_conversations(tmp_path):
    text = corpus(conversation("a", [message(1, "x", "hi")]), conversation("b", ["<message line='1'><author>y</text>"]))
    result = read_pan12(write(tmp_path / "broken.xml", text))
    assert [c.id for c in result.conversations] == ["a"]
    assert [(i.line, i.what) for i in result.issues] == [
        (7, "XML is not well-formed (mismatched tag); reading stopped here")
    ]


def test_truncated_xml_reports_the_last_line(tmp_path):
    text = corpus(conversation("a", [message(1, "x", "hi")]), conversation("b", [message(1, "y", "yo")]))
    cut = text[: text.index('<conversation id="b">') + 30]
    result = read_pan12(write(tmp_path / "cut.xml", cut))
    assert [c.id for c in result.conversations] == ["a"]
    assert result.issues[0].line == cut.count("\n") + 1
    assert "not well-formed" in result.issues[0].what


def test_entity_expansion_is_refused(tmp_path):
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
        "<conversations><conversation id='c'><message line='1'><author>a</author>"
        "<text>&lol2;</text></message></conversation></conversations>\n"
    )
    result = read_pan12(write(tmp_path / "lol.xml", laughs))
    assert result.conversations == []
    assert [(i.line, i.what) for i in result.issues] == [
        (3, "XML entity declaration refused (unsafe XML); remove it")
    ]


def test_external_entity_is_refused(tmp_path):
    secret = write(tmp_path / "secret.txt", "TOPSECRET")
    xxe = (
        f'<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        "<conversations><conversation id='c'><message line='1'><author>a</author>"
        "<text>&x;</text></message></conversation></conversations>\n"
    )
    result = read_pan12(write(tmp_path / "xxe.xml", xxe))
    assert result.conversations == [] and len(result.issues) == 1
    assert "refused" in result.issues[0].what and "TOPSECRET" not in result.issues[0].what


def test_wrong_root_element(tmp_path):
    result = read_pan12(write(tmp_path / "r.xml", "<html><conversation id='x'/></html>"))
    assert [(i.line, i.what) for i in result.issues] == [
        (1, "expected the root element <conversations> of a PAN-2012 file")
    ]


def test_utf16_file_is_detected_and_read(tmp_path):
    text = corpus(conversation("u", [message(1, "a", "héllo")])).replace("UTF-8", "UTF-16")
    path = tmp_path / "u16.xml"
    path.write_bytes(text.encode("utf-16"))
    assert detect_format(path) == "pan12"
    assert read_conversations(path).conversations[0].texts == ("héllo",)


def test_detection_by_content(tmp_path):
    assert detect_format(write(tmp_path / "a.jsonl", "\ufeff\n \t<conversations/>")) == "pan12"
    assert detect_format(write(tmp_path / "b.xml", '\ufeff{"id": 1}')) == "jsonl"
    assert detect_format(write(tmp_path / "c", "")) == "jsonl"


def test_predators_file_problems_are_data_errors(tmp_path):
    xml = write(tmp_path / "pan.xml", trap_corpus())
    with pytest.raises(DataError, match="no such predators file"):
        read_pan12(xml, predators=tmp_path / "none.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(DataError, match=r"bad.txt:2: predators file is not valid UTF-8"):
        read_predators(bad)
