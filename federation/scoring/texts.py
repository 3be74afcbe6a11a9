"""Message texts as the scorer sees them: one rule for batch and streaming scoring.

Two kinds of text are scored but reported, so that an analyst knows a line was odd:

* an empty text (PAN-2012 writes one for a message without ``<text>``, often a sticker or
  a file) is scored as an empty line, which keeps the message numbering of the source and
  the conversation's turns as the model was trained on them;
* a huge text is cut to :data:`MAX_TEXT_CHARS` characters before encoding. MiniLM reads
  only its first 128 tokens anyway; the cut bounds the time and memory one message can
  take (the hashed n-gram encoder reads every character).

Batch (:mod:`.scorer`) and streaming (:mod:`.follow`) scoring both go through
:func:`scored_text`, so they see the same texts and raise the same warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from federation.data.types import Conversation

__all__ = ["MAX_TEXT_CHARS", "TextNote", "prepare_conversation", "scored_text", "summarise_notes"]

#: Longer texts are cut to this many characters before encoding.
MAX_TEXT_CHARS = 5000


@dataclass(frozen=True)
class TextNote:
    """Something odd about one message's text, worded without the text itself.

    ``str()`` gives ``message N: what``.
    """

    line: int
    what: str

    def __str__(self) -> str:
        return f"message {self.line}: {self.what}"


def scored_text(text: str, *, line: int) -> tuple[str, TextNote | None]:
    """The text to encode for a message, and a note when it is empty or cut.

    Parameters
    ----------
    text
        The message as written.
    line
        Its 1-based index in the conversation (named in the note).
    """
    if not text.strip():
        return text, TextNote(line, "empty text; scored as an empty line")
    if len(text) > MAX_TEXT_CHARS:
        return text[:MAX_TEXT_CHARS], TextNote(
            line, f"text of {len(text)} characters; only the first {MAX_TEXT_CHARS} are scored"
        )
    return text, None


def prepare_conversation(conversation: Conversation, *, max_messages: int) -> tuple[Conversation, list[TextNote]]:
    """The conversation as scored (first ``max_messages`` messages, huge texts cut) and its notes.

    Messages past ``max_messages`` are dropped, as in training; they are not noted.
    """
    kept = conversation.messages[:max_messages]
    notes: list[TextNote] = []
    messages = []
    changed = len(kept) != len(conversation.messages)
    for position, message in enumerate(kept, start=1):
        text, note = scored_text(message.text, line=position)
        if note is not None:
            notes.append(note)
        if text is not message.text:
            changed = True
            message = replace(message, text=text)
        messages.append(message)
    if not changed:
        return conversation, notes
    return replace(conversation, messages=tuple(messages)), notes


def summarise_notes(notes: Sequence[TextNote], *, shown: int = 3) -> str:
    """One line for a conversation's notes: the first few, then how many more."""
    text = "; ".join(str(note) for note in notes[:shown])
    if len(notes) > shown:
        text += f" (and {len(notes) - shown} more)"
    return text
