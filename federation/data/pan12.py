"""The PAN-2012 Sexual Predator Identification corpus: XML conversations plus predator ids.

The corpus is one XML file::

    <conversations>
      <conversation id="...">
        <message line="1"><author>...</author><time>03:20</time><text>...</text></message>
        ...

and a ground-truth file listing predator author ids, one a line. A conversation is
positive (label 1) when a listed predator takes part, and that author is its groomer;
without the ground-truth file every label is 0.

Known traps of the corpus, handled here: messages without ``<text>`` (read as empty text,
which ``cesagram data check`` counts), HTML entities escaped twice (``&amp;lt;`` is read
as ``<``), carriage returns (turned into newlines), and conversations of hundreds of
messages (kept whole). Messages are ordered by their ``line`` attribute when every message
has one, else kept in document order.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from federation.data.issues import IssueCollector, ReadResult, open_data_file, read_failed
from federation.data.types import Conversation, Message
from federation.errors import DataError

logger = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_FIELDS = ("author", "time", "text")


def read_predators(path: Path) -> frozenset[str]:
    """The predator author ids of a PAN-2012 ground-truth file: one id a line, blanks skipped.

    Raises
    ------
    DataError
        When the file is missing, a directory, unreadable or not UTF-8.
    """
    with open_data_file(path, what="predators file") as handle:
        try:
            data = handle.read()
        except OSError as error:
            raise read_failed(path, error, what="predators file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{path}:{line}: predators file is not valid UTF-8; expected one author id a line"
        ) from None
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def read_pan12(xml_path: Path, *, predators: Path | None = None, max_issues: int = 100) -> ReadResult:
    """Read a PAN-2012 XML file, labelling conversations with the predators file when given.

    Parameters
    ----------
    xml_path
        The corpus XML; missing, a directory or unreadable raises :class:`DataError`.
    predators
        The ground-truth file of predator author ids. Without it every label is 0.
    max_issues
        Issues kept in the result; later ones are only counted (``more_issues``).

    Returns
    -------
    ReadResult
        Valid conversations in document order. A conversation with a problem (no id, a
        duplicate id, no messages, a message without author, a bad time or ``line``) is left
        out and reported once, at the line of its first problem. XML that is not well-formed
        stops the reading with an issue at the line where the parser gave up; the
        conversations completed before it are kept.

    Notes
    -----
    Parsed through defusedxml: entity declarations and external references are refused,
    so a hostile file cannot expand entities or reach the network or the file system.
    Issue texts give element names and line numbers, never chat text or author ids. With a
    predators file, a conversation with several predators gets the first one to write as
    its groomer.
    """
    predator_ids = read_predators(predators) if predators is not None else None
    collector = IssueCollector(str(xml_path), max_issues)
    builder = _Builder(collector, predator_ids)
    parser = DefusedXMLParser(target=builder)
    builder.expat = parser.parser
    with open_data_file(xml_path) as handle:
        try:
            while chunk := handle.read(_CHUNK):
                parser.feed(chunk)
            parser.close()
        except OSError as error:
            raise read_failed(xml_path, error) from None
        except ParseError as error:
            line = error.position[0] if getattr(error, "position", None) else builder.line()
            reason = expat.ErrorString(error.code) if isinstance(getattr(error, "code", None), int) else "parse error"
            collector.add(line or None, f"XML is not well-formed ({reason}); reading stopped here")
        except DefusedXmlException as error:
            collector.add(builder.line(), f"XML {_defused_reason(error)} refused (unsafe XML); remove it")
        except RecursionError:
            collector.add(builder.line(), "XML nested too deeply; reading stopped here")
    logger.debug("%s: %d conversations, %d issues", xml_path, len(builder.conversations), collector.total)
    return collector.result(builder.conversations)


def _defused_reason(error: DefusedXmlException) -> str:
    if isinstance(error, EntitiesForbidden):
        return "entity declaration"
    if isinstance(error, ExternalReferenceForbidden):
        return "external reference"
    if isinstance(error, DTDForbidden):
        return "document type declaration"
    return "construct"


def clean_text(raw: str) -> str:
    """A PAN-2012 message text as written: entities unescaped once more, CR as newline, trimmed.

    The corpus escaped HTML entities twice, so after XML parsing ``&lt;`` is still in the
    text; one :func:`html.unescape` restores ``<``.
    """
    text = html.unescape(raw)
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


@dataclass
class _PendingMessage:
    """A ``<message>`` being read: raw field texts, its ``line`` attribute and its line in the file."""

    line_attr: str | None
    line: int | None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _PendingConversation:
    """A ``<conversation>`` being read, with the problems found so far as ``(line, text)``."""

    id: str | None
    line: int | None
    messages: list[tuple[int | None, Message]] = field(default_factory=list)
    problems: list[tuple[int | None, str]] = field(default_factory=list)


class _Builder:
    """An expat target that turns the element stream into conversations, one at a time.

    Only ``conversations/conversation/message/{author,time,text}`` is read; other elements
    are ignored. Text is buffered for the current field only, so memory holds one
    conversation in progress plus the finished ones.
    """

    def __init__(self, collector: IssueCollector, predators: frozenset[str] | None) -> None:
        self.collector = collector
        self.predators = predators
        self.expat: Any = None
        self.conversations: list[Conversation] = []
        self.seen_ids: dict[str, int | None] = {}
        self.depth = 0
        self.root_ok = False
        self.conversation: _PendingConversation | None = None
        self.message: _PendingMessage | None = None
        self.field: str | None = None
        self.buffer: list[str] = []

    def line(self) -> int | None:
        """The line expat is at: where the current element started, inside a callback."""
        return self.expat.CurrentLineNumber if self.expat is not None else None

    # expat target interface ---------------------------------------------------------------
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 1:
            self.root_ok = tag == "conversations"
            if not self.root_ok:
                self.collector.add(self.line(), "expected the root element <conversations> of a PAN-2012 file")
        elif self.depth == 2 and self.root_ok and tag == "conversation":
            self.conversation = _PendingConversation(id=attrib.get("id"), line=self.line())
        elif self.depth == 3 and self.conversation is not None and tag == "message":
            self.message = _PendingMessage(line_attr=attrib.get("line"), line=self.line())
        elif self.depth == 4 and self.message is not None and tag in _FIELDS:
            if tag in self.message.fields:
                self._problem(f"message has a second <{tag}>; expected one", self.line())
            self.field, self.buffer = tag, []

    def data(self, text: str) -> None:
        if self.field is not None:
            self.buffer.append(text)

    def end(self, tag: str) -> None:
        if self.field is not None and self.depth == 4 and self.message is not None:
            self.message.fields[self.field] = "".join(self.buffer)
            self.field, self.buffer = None, []
        elif self.depth == 3 and self.message is not None:
            self._end_message(self.message)
            self.message = None
        elif self.depth == 2 and self.conversation is not None:
            self._end_conversation(self.conversation)
            self.conversation = None
        self.depth -= 1

    def close(self) -> None:
        return None

    # ----------------------------------------------------------------------------------------
    def _problem(self, text: str, line: int | None) -> None:
        if self.conversation is not None:
            self.conversation.problems.append((line, text))

    def _end_message(self, message: _PendingMessage) -> None:
        line = message.line
        author = message.fields.get("author", "").strip()
        if not author:
            self._problem("message without <author> (or an empty one)", line)
        time = message.fields.get("time", "").strip() or None
        if time is not None and not _TIME.fullmatch(time):
            self._problem('<time>: expected "HH:MM" (00:00 to 23:59)', line)
        order: int | None = None
        if message.line_attr is not None:
            try:
                order = int(message.line_attr)
            except ValueError:
                self._problem("message attribute line: expected an integer", line)
        text = clean_text(message.fields.get("text", ""))
        if self.conversation is not None:
            self.conversation.messages.append((order, Message(author=author, text=text, time=time)))

    def _end_conversation(self, pending: _PendingConversation) -> None:
        problems: list[tuple[int | None, str]] = []
        conversation_id = (pending.id or "").strip()
        if not conversation_id:
            problems.append((pending.line, "conversation without an id attribute (or an empty one)"))
        elif conversation_id in self.seen_ids:
            problems.append((pending.line, "conversation id: duplicate of the conversation on line "
                                           f"{self.seen_ids[conversation_id]}; ids must be unique"))
        if not pending.messages:
            problems.append((pending.line, "conversation without messages"))
        problems += pending.problems
        if problems:
            # stable sort: the conversation's own problems (at its first line) come first
            problems.sort(key=lambda item: item[0] or 0)
            self.collector.add_problems(problems)
            return
        self.seen_ids[conversation_id] = pending.line
        ordered = pending.messages
        if all(order is not None for order, _ in ordered):
            ordered = sorted(ordered, key=lambda item: item[0] or 0)
        messages = tuple(message for _, message in ordered)
        groomer = None
        if self.predators:
            groomer = next((m.author for m in messages if m.author in self.predators), None)
        self.conversations.append(
            Conversation(id=conversation_id, label=int(groomer is not None), messages=messages, groomer=groomer)
        )
