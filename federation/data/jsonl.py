"""The canonical JSON Lines reader: one conversation per line, every bad line reported.

A record looks like::

    {"id": "c1", "label": 1, "groomer": "u2",
     "messages": [{"author": "u2", "text": "...", "time": "21:04", "indicators": ["flattery"]}]}

``id`` (non-empty string, unique in the file), ``label`` (exactly 0 or 1) and ``messages``
(a non-empty list of objects with string ``author`` and ``text``) are required. ``groomer``
(null or one of the conversation's authors), per-message ``time`` ("HH:MM") and
``indicators`` (known risk-indicator codes) are optional. Unknown top-level keys are kept in
:attr:`Conversation.extra`, so that reading and rewriting a file loses nothing; unknown
per-message keys are dropped (:class:`Message` has nowhere to keep them) and counted in a
log line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from federation.checks import is_integer
from federation.data.indicators import INDICATORS
from federation.data.issues import IssueCollector, ReadResult, open_data_file, read_failed
from federation.data.types import Conversation, Message
from federation.errors import ConfigError

logger = logging.getLogger(__name__)

#: Lines longer than this many bytes are reported without being parsed.
MAX_LINE_BYTES = 10 * 1024 * 1024

REQUIRED_KEYS = ("id", "label", "messages")
KNOWN_KEYS = frozenset({*REQUIRED_KEYS, "groomer"})
MESSAGE_KEYS = frozenset({"author", "text", "time", "indicators"})

_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_BOM = b"\xef\xbb\xbf"


def read_jsonl(path: Path, *, max_issues: int = 100, max_line_bytes: int = MAX_LINE_BYTES) -> ReadResult:
    """Read a JSON Lines file of conversations, reporting every bad record instead of stopping.

    Parameters
    ----------
    path
        The file; missing, a directory or unreadable raises :class:`DataError`.
    max_issues
        Issues kept in the result; later ones are only counted (``more_issues``).
    max_line_bytes
        Lines longer than this are reported as too long and never parsed, so that one
        runaway line cannot exhaust memory.

    Returns
    -------
    ReadResult
        The valid conversations in file order; bad records are left out and reported as
        ``path:line: what is wrong``. Blank lines are skipped; a UTF-8 byte order mark on
        the first line is accepted.

    Raises
    ------
    DataError
        When the file is missing, a directory or unreadable.
    ConfigError
        When ``max_issues`` or ``max_line_bytes`` is out of range.

    Notes
    -----
    Issue texts name the key path (``messages[3].text``) and the JSON type that was found,
    never the chat text, ids or author ids of the record, so the output of
    ``cesagram data check`` can leave the node without revealing anything of the data.
    """
    if not is_integer(max_line_bytes, numpy=False) or max_line_bytes < 1:
        raise ConfigError(f"max_line_bytes: expected a positive integer, got {max_line_bytes!r}")
    collector = IssueCollector(str(path), max_issues)
    with open_data_file(path) as handle:
        try:
            conversations = read_records(handle, collector, max_line_bytes=max_line_bytes)
        except OSError as error:
            raise read_failed(path, error) from None
    return collector.result(conversations)


def read_records(handle: BinaryIO, collector: IssueCollector, *, max_line_bytes: int = MAX_LINE_BYTES) -> list[Conversation]:
    """The valid conversations of an open JSON Lines stream; every bad record goes to ``collector``.

    One parser for a whole file (:func:`read_jsonl`) and for one node's slice of a sharded
    store (:mod:`federation.data.store`), so both refuse the same records the same way.
    """
    conversations: list[Conversation] = []
    seen_ids: dict[str, int] = {}
    dropped_message_keys = 0
    for number, raw in _lines(handle, max_line_bytes):
        if raw is None:
            collector.add(number, f"line longer than {max_line_bytes} bytes; not parsed (split the record)")
            continue
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue
        record, problem = _decode(raw)
        if problem is not None:
            collector.add(number, problem)
            continue
        problems: list[str] = []
        conversation, dropped = _parse_record(record, problems)
        if conversation is not None and conversation.id in seen_ids:
            problems.append(f"id: duplicate of the id on line {seen_ids[conversation.id]}; ids must be unique")
            conversation = None
        if problems or conversation is None:
            collector.add_problems([(number, text) for text in problems])
            continue
        seen_ids[conversation.id] = number
        dropped_message_keys += dropped
        conversations.append(conversation)
    if dropped_message_keys:
        logger.info("%s: dropped unknown keys of %d messages (only author, text, time, indicators are kept)",
                    collector.path, dropped_message_keys)
    logger.debug("%s: %d conversations, %d issues", collector.path, len(conversations), collector.total)
    return conversations


def _lines(handle: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(line number, bytes)`` with ``None`` for lines over the limit, in bounded memory."""
    number = 0
    while True:
        chunk = handle.readline(max_line_bytes + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) <= max_line_bytes or chunk.endswith(b"\n") and len(chunk) == max_line_bytes + 1:
            yield number, chunk
            continue
        # Too long: skip the rest of the line without keeping it.
        while not chunk.endswith(b"\n"):
            chunk = handle.readline(1024 * 1024)
            if not chunk:
                break
        yield number, None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(raw: bytes) -> tuple[Any, str | None]:
    """Parse one line; returns ``(value, None)`` or ``(None, problem)`` without echoing the line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"not valid UTF-8 (bad byte at column {error.start + 1}); re-save the file as UTF-8"
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error.msg} at column {error.colno})"
    except RecursionError:
        return None, "not valid JSON for this reader (nested too deeply)"
    except ValueError as error:
        reason = "NaN and Infinity are not JSON" if "not JSON" in str(error) else "a number is too large"
        return None, f"not valid JSON ({reason})"
    if not isinstance(value, dict):
        return None, f"expected a JSON object (one conversation per line), got {json_kind(value)}"
    return value, None


def json_kind(value: Any) -> str:
    """The JSON type of ``value`` with an article, for messages that must not echo the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _clean_string(value: Any) -> bool:
    """A string that can be written back as UTF-8 (no unpaired surrogate escapes such as ``\\ud83d``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _string(value: Any, key: str, problems: list[str], *, empty_ok: bool) -> str | None:
    if not isinstance(value, str) or (not value and not empty_ok):
        expected = "a string" if empty_ok else "a non-empty string"
        problems.append(f"{key}: expected {expected}, got {json_kind(value)}")
        return None
    if not _clean_string(value):
        problems.append(f"{key}: contains an unpaired surrogate escape (a broken emoji?); fix the encoding")
        return None
    return value


def _parse_record(record: dict[str, Any], problems: list[str]) -> tuple[Conversation | None, int]:
    """Validate one decoded record; appends problems and returns ``(conversation or None, dropped keys)``."""
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        problems.append(f"missing required key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")

    conversation_id = _string(record["id"], "id", problems, empty_ok=False) if "id" in record else None

    label = record.get("label")
    if "label" in record and not (type(label) is int and label in (0, 1)):
        if isinstance(label, bool):
            problems.append("label: expected 0 or 1, got a boolean; write 0 or 1")
        elif isinstance(label, str):
            problems.append("label: expected the number 0 or 1, got a string")
        elif type(label) is int:
            problems.append(f"label: expected 0 or 1, got {label if abs(label) < 10**6 else 'a large number'}")
        else:
            problems.append(f"label: expected 0 or 1, got {json_kind(label)}")

    messages: list[Message] = []
    authors: set[str] = set()
    dropped = 0
    if "messages" in record:
        raw_messages = record["messages"]
        if not isinstance(raw_messages, list) or not raw_messages:
            problems.append(f"messages: expected a non-empty list of messages, got {json_kind(raw_messages)}")
        else:
            for index, raw in enumerate(raw_messages):
                if isinstance(raw, dict) and isinstance(raw.get("author"), str):
                    authors.add(raw["author"])
                message, extra_keys = _parse_message(raw, f"messages[{index}]", problems)
                if message is not None:
                    messages.append(message)
                    dropped += extra_keys

    groomer = record.get("groomer")
    if groomer is not None:
        groomer = _string(groomer, "groomer", problems, empty_ok=False)
        if groomer is not None and authors and groomer not in authors:
            problems.append("groomer: not one of the conversation's authors; use an author id or null")

    extra = {key: value for key, value in record.items() if key not in KNOWN_KEYS}
    if extra and not _extra_writable(extra):
        problems.append("unknown keys hold an unpaired surrogate escape (a broken emoji?); fix the encoding")

    if problems or conversation_id is None:
        return None, 0
    return (
        Conversation(id=conversation_id, label=label, messages=tuple(messages), groomer=groomer, extra=extra),
        dropped,
    )


def _extra_writable(extra: dict[str, Any]) -> bool:
    try:
        json.dumps(extra, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        return False
    return True


def _parse_message(raw: Any, key: str, problems: list[str]) -> tuple[Message | None, int]:
    if not isinstance(raw, dict):
        problems.append(f"{key}: expected an object with author and text, got {json_kind(raw)}")
        return None, 0
    before = len(problems)
    author = text = time = None
    if "author" not in raw:
        problems.append(f"{key}: missing required key: author")
    else:
        author = _string(raw["author"], f"{key}.author", problems, empty_ok=False)
    if "text" not in raw:
        problems.append(f"{key}: missing required key: text")
    else:
        text = _string(raw["text"], f"{key}.text", problems, empty_ok=True)
    raw_time = raw.get("time")
    if raw_time is not None:
        if not isinstance(raw_time, str):
            problems.append(f"{key}.time: expected a string \"HH:MM\" or null, got {json_kind(raw_time)}")
        elif not _TIME.fullmatch(raw_time):
            problems.append(f"{key}.time: expected \"HH:MM\" (00:00 to 23:59), got a string of another shape")
        else:
            time = raw_time
    indicators: tuple[str, ...] = ()
    raw_indicators = raw.get("indicators")
    if raw_indicators is not None:
        if not isinstance(raw_indicators, list):
            problems.append(f"{key}.indicators: expected a list of risk-indicator codes, got {json_kind(raw_indicators)}")
        else:
            for position, code in enumerate(raw_indicators):
                if not isinstance(code, str):
                    problems.append(f"{key}.indicators[{position}]: expected a code string, got {json_kind(code)}")
                elif code not in INDICATORS:
                    problems.append(
                        f"{key}.indicators[{position}]: unknown risk-indicator code; "
                        f"known codes: {', '.join(INDICATORS)}"
                    )
            if len(problems) == before:
                indicators = tuple(raw_indicators)
    if len(problems) > before or author is None or text is None:
        return None, 0
    return Message(author=author, text=text, time=time, indicators=indicators), int(bool(raw.keys() - MESSAGE_KEYS))
