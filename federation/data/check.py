"""What a node operator wants to know about a data file before training: its bad records and summary.

The valid conversations' counts (messages, positives, distinct authors), the distribution
of conversation lengths, empty texts and very long conversations (:func:`summarize`), and
the whole check of a file as lines for a terminal (:func:`check_file`): its bad records,
then that summary, then the verdict. ``cesagram data check`` (:mod:`cesagram.data_check`)
and ``cesagram node check`` (:mod:`clients.node_cli`) print those lines.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from federation.checks import is_integer
from federation.data.load import detect_format, read_conversations
from federation.data.pan12 import read_predators
from federation.data.types import Conversation
from federation.errors import ConfigError

logger = logging.getLogger(__name__)

#: Conversations longer than this are reported (and kept whole).
LONG_CONVERSATION = 150

FORMAT_NAMES = {"jsonl": "JSON Lines", "pan12": "PAN-2012 XML"}


@dataclass(frozen=True)
class DataSummary:
    """Counts a node operator checks before training; no text, ids or author ids.

    Message-count statistics are per conversation; ``p90_messages`` is the nearest-rank
    90th percentile. All statistics are 0 for an empty list of conversations.
    """

    conversations: int
    messages: int
    positives: int
    positives_with_groomer: int
    authors: int
    min_messages: int
    median_messages: float
    mean_messages: float
    p90_messages: int
    max_messages: int
    empty_texts: int
    messages_with_indicators: int
    long_conversations: int
    long_threshold: int = LONG_CONVERSATION

    def format(self) -> str:
        """A few aligned lines for a terminal."""
        share = f" ({100 * self.positives / self.conversations:.1f}%)" if self.conversations else ""
        rows = [
            ("conversations", f"{self.conversations}"),
            ("messages", f"{self.messages}"),
            ("positives", f"{self.positives}{share}, groomer known in {self.positives_with_groomer}"),
            ("authors", f"{self.authors}"),
            (
                "messages per conversation",
                f"min {self.min_messages}, median {self.median_messages:g}, mean {self.mean_messages:.1f}, "
                f"p90 {self.p90_messages}, max {self.max_messages}",
            ),
            ("empty texts", f"{self.empty_texts}"),
            ("messages with indicators", f"{self.messages_with_indicators}"),
            (f"over {self.long_threshold} messages", f"{self.long_conversations} (kept whole)"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def summarize(conversations: Sequence[Conversation], *, long_threshold: int = LONG_CONVERSATION) -> DataSummary:
    """Count what matters before training, without keeping any text or id.

    Notes
    -----
    Only counts leave this function; the summary is safe to print or send to a
    coordinator. Author counts are of distinct ids within this file only.
    """
    lengths = sorted(len(c.messages) for c in conversations)
    authors: set[str] = set()
    empty = with_indicators = 0
    for conversation in conversations:
        for message in conversation.messages:
            authors.add(message.author)
            if not message.text.strip():
                empty += 1
            if message.indicators:
                with_indicators += 1
    count = len(lengths)
    return DataSummary(
        conversations=count,
        messages=sum(lengths),
        positives=sum(1 for c in conversations if c.label == 1),
        positives_with_groomer=sum(1 for c in conversations if c.label == 1 and c.groomer is not None),
        authors=len(authors),
        min_messages=lengths[0] if lengths else 0,
        median_messages=float(statistics.median(lengths)) if lengths else 0.0,
        mean_messages=sum(lengths) / count if count else 0.0,
        p90_messages=lengths[max(math.ceil(0.9 * count) - 1, 0)] if lengths else 0,
        max_messages=lengths[-1] if lengths else 0,
        empty_texts=empty,
        messages_with_indicators=with_indicators,
        long_conversations=sum(1 for n in lengths if n > long_threshold),
        long_threshold=long_threshold,
    )


@dataclass(frozen=True)
class FileCheck:
    """The check of one data file: the lines to show, its valid conversations, and whether it is clean."""

    lines: tuple[str, ...]
    conversations: tuple[Conversation, ...]
    ok: bool


def check_file(path: Path, *, predators: Path | None = None, max_issues: int = 100) -> FileCheck:
    """Check a JSONL or PAN-2012 XML file: every bad record (up to ``max_issues``), the summary, the verdict.

    The lines are ``file:line: what is wrong`` for each bad record kept (and a count of the
    others), the format, :meth:`DataSummary.format` of the valid conversations, a note on
    PAN-2012 labels, and last ``PATH: ok`` or ``PATH: N problems; ...``.

    Raises
    ------
    ConfigError
        When ``max_issues`` is not an integer of 0 or more.
    DataError
        When the file (or the predators file) is missing, a directory or unreadable.

    Notes
    -----
    The lines hold line numbers, key paths, types and counts only, never chat text or
    author ids, so an operator can share them when asking for help.
    """
    if not is_integer(max_issues, numpy=False) or max_issues < 0:
        raise ConfigError(f"--max-issues: expected an integer of 0 or more, got {max_issues!r}")
    data_format = detect_format(path)
    result = read_conversations(path, predators=predators, max_issues=max_issues)
    lines = [str(issue) for issue in result.issues]
    if result.more_issues:
        lines.append(f"... and {result.more_issues} more")

    scope = " (valid records only)" if not result.ok else ""
    lines.append(f"{path}: {FORMAT_NAMES[data_format]}{scope}")
    lines.extend(summarize(result.conversations).format().splitlines())
    if data_format == "pan12":
        if predators is None:
            lines.append("  note: no --predators file given, so every label is 0; pass the PAN-2012 ground-truth file")
        else:
            listed = read_predators(predators)
            present = {a for c in result.conversations if c.label == 1 for a in c.authors if a in listed}
            lines.append(f"  predators: {len(listed)} listed, {len(present)} of them take part in this file")

    if result.ok:
        lines.append(f"{path}: ok")
    else:
        count = result.total_issues
        lines.append(
            f"{path}: {count} problem{'s' if count != 1 else ''}; fix {'them' if count != 1 else 'it'} "
            "and run the check again"
        )
    return FileCheck(lines=tuple(lines), conversations=tuple(result.conversations), ok=result.ok)
