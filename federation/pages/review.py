"""The analyst's review page: scored conversations, why each was raised, in one offline HTML file.

The page shows the records ``cesagram score`` writes as JSON lines, embedded unchanged,
beside the messages they were computed from; its script sorts, filters and draws them but
computes no number of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation.bundle import CARD_FILE
from federation.data.indicators import INDICATORS
from federation.data.types import Conversation
from federation.pages.html import asset, document
from federation.scoring.model import ScoringModel
from federation.scoring.texts import MAX_TEXT_CHARS

__all__ = ["INTENDED_USE", "ReviewHeader", "review_header", "review_page"]

#: The one sentence every page carries, whatever the bundle's card says.
INTENDED_USE = "Leads for trained people, never findings: every warning needs a person's review."


@dataclass(frozen=True)
class ReviewHeader:
    """What the page says about the model before any conversation.

    Attributes
    ----------
    model
        The bundle folder, as the analyst named it.
    encoder
        The encoder id the bundle was trained with.
    threshold
        The bundle's decision threshold on window scores.
    rule
        The early-warning rule: ``k`` positive windows among the ``last``, of ``window`` messages.
    max_messages
        Messages scored per conversation (later ones are shown, not scored).
    intended_use
        Paragraphs of the model card's "Intended use" section.
    privacy
        Lines of the model card's "Privacy" section (guarantee and epsilons).
    """

    model: str
    encoder: str
    threshold: float
    rule: Mapping[str, int]
    max_messages: int
    intended_use: tuple[str, ...] = ()
    privacy: tuple[str, ...] = ()
    provenance: Mapping[str, Any] = field(default_factory=dict)


def _plain(text: str) -> str:
    """Markdown emphasis and code marks dropped: the page shows the card's words as text."""
    return re.sub(r"(\*\*|__|`)", "", text).strip()


def card_sections(card: str) -> dict[str, list[str]]:
    """The model card's ``## `` sections as paragraphs (list items one each), by lower-case title."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    paragraph: list[str] = []

    def flush() -> None:
        if current is not None and paragraph:
            current.append(_plain(" ".join(paragraph)))
        paragraph.clear()

    for raw in card.splitlines():
        line = raw.strip()
        if line.startswith("## "):
            flush()
            current = sections.setdefault(line[3:].strip().lower(), [])
        elif line.startswith("#"):
            flush()
            current = None
        elif not line:
            flush()
        elif line.startswith(("- ", "* ")):
            flush()
            paragraph.append(line[2:])
            flush()
        else:
            paragraph.append(line)
    flush()
    return sections


def review_header(model: ScoringModel, *, name: str | None = None) -> ReviewHeader:
    """The header of a review page for ``model``, its card's intended use and privacy included."""
    try:
        card = (model.directory / CARD_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        card = ""
    sections = card_sections(card)
    rule = model.rule
    return ReviewHeader(
        model=name or str(model.directory),
        encoder=model.encoder.id,
        threshold=model.threshold,
        rule={"k": rule.k, "last": rule.last, "window": rule.window},
        max_messages=model.max_messages,
        intended_use=tuple(sections.get("intended use", ())),
        privacy=tuple(sections.get("privacy", ())),
        provenance=dict(model.meta.provenance),
    )


def _messages(conversation: Conversation) -> list[dict[str, Any]]:
    """Author, time and text of each message (texts cut as the scorer cuts them)."""
    return [
        {
            "author": message.author,
            "time": message.time,
            "text": message.text[:MAX_TEXT_CHARS],
            "cut": len(message.text) > MAX_TEXT_CHARS,
        }
        for message in conversation.messages
    ]


def review_page(
    *,
    records: Sequence[Mapping[str, Any]],
    conversations: Sequence[Conversation],
    header: ReviewHeader,
    source: str,
) -> str:
    """The review page: ``records`` are the scorer's JSON records, one per conversation, in order.

    Parameters
    ----------
    records
        ``ConversationScore.to_record()`` of each conversation, embedded as they are.
    conversations
        The conversations they score, in the same order (their messages are shown).
    header
        What the page says about the model.
    source
        The input file's name, for the title.

    Notes
    -----
    The page holds chat text and author ids: it is the analyst's own data and stays with
    them, like the JSON output. Nothing in it loads from the network.
    """
    if len(records) != len(conversations):
        raise ValueError(f"{len(records)} records for {len(conversations)} conversations")
    items = []
    for record, conversation in zip(records, conversations, strict=True):
        if record["id"] != conversation.id:
            raise ValueError(f"record {record['id']!r} does not score conversation {conversation.id!r}")
        items.append({"record": dict(record), "messages": _messages(conversation)})
    data = {
        "source": Path(source).name,
        "model": {
            "directory": header.model,
            "encoder": header.encoder,
            "threshold": header.threshold,
            "rule": dict(header.rule),
            "max_messages": header.max_messages,
            "intended_use": list(header.intended_use),
            "privacy": list(header.privacy),
            "provenance": dict(header.provenance),
        },
        "intended_use": INTENDED_USE,
        "indicators": INDICATORS,
        "conversations": items,
    }
    return document(
        title=f"CESAGRAM review: {Path(source).name}",
        css=asset("base.css") + "\n" + asset("review.css"),
        body=asset("review.html"),
        script=asset("review.js"),
        data=data,
    )
