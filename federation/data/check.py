"""What a node operator wants to know about a data file before training: its summary.

The valid conversations' counts (messages, positives, distinct authors), the distribution
of conversation lengths, empty texts and very long conversations. ``cesagram data check``
(:mod:`cesagram.data_check`) prints it after the file's bad records.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from federation.data.types import Conversation

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
