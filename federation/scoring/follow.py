"""Streaming scoring (``cesagram score --follow``): warn the moment a conversation's warning is raised.

Input is one JSON object per line, conversations interleaved::

    {"conversation": "c17", "author": "u2", "text": "...", "time": "21:04"}

Each conversation keeps its own state: how many messages were read, who spoke first and
second (speaker indices 0, 1, 2 as in training), the embeddings of its last ``window``
messages and a :class:`~federation.early.WarningTracker`. A new message costs one
encoding of its text and one pass of the head over the cached window: nothing already
read is encoded again. Lines that arrive together (a pipe that is ahead of the scorer)
are encoded in one batch and their windows scored in one forward pass, which is what
keeps up with the raw encoder's throughput; a line on its own is scored as soon as it
arrives.

Warnings are the batch scorer's: the same texts (:mod:`.texts`), the same truncation to
``max_messages``, the same windows and rule, so the same messages raise them. (Windows are
batched differently, so a score may differ from the batch one in its last float bit: only a
window scoring within about 1e-7 of the threshold could be decided differently.)
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import torch

from federation.data.jsonl import json_kind
from federation.early import WarningTracker
from federation.models.features import SPEAKER_OTHER
from federation.scoring.evidence import MAX_EVIDENCE_LINES, EvidenceLine, explain_window
from federation.scoring.indicators import IndicatorDetector
from federation.scoring.model import ScoringModel
from federation.scoring.texts import scored_text

__all__ = ["FollowSummary", "StreamMessage", "StreamScorer", "StreamWarning", "follow", "parse_stream_line"]

logger = logging.getLogger(__name__)

#: Stream lines longer than this are skipped unread.
MAX_LINE_BYTES = 1024 * 1024
#: Bytes asked of the input per read; whatever has arrived (up to this) is scored together.
READ_BYTES = 256 * 1024
#: Messages encoded together, at most (the encoder sorts them by length to cut padding).
FEED_BATCH = 1024
#: Windows per forward pass of the head, at most (bounds memory: rows x window x dim floats).
HEAD_BATCH = 256

_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")


@dataclass(frozen=True)
class StreamMessage:
    """One parsed input line: the message and where it came from (1-based input line)."""

    conversation: str
    author: str
    text: str
    source_line: int


@dataclass(frozen=True)
class StreamWarning:
    """A warning raised on a stream: which conversation, after which message, and why."""

    conversation: str
    alert_at: int
    score: float
    suspect: str | None
    evidence: tuple[EvidenceLine, ...]

    def to_record(self) -> dict[str, Any]:
        """``{"conversation", "warning": true, "alert_at", "score", "suspect", "evidence"}``."""
        return {
            "conversation": self.conversation,
            "warning": True,
            "alert_at": self.alert_at,
            "score": round(self.score, 6),
            "suspect": self.suspect,
            "evidence": [line.to_record() for line in self.evidence],
        }


class _Conversation:
    """One conversation's streaming state (author ids stay in memory, never logged).

    The last ``window`` embeddings live in a ring buffer, so a new message costs one row
    written and one gather, whatever the window.
    """

    def __init__(self, *, tracker: WarningTracker, window: int, dim: int) -> None:
        self.tracker = tracker
        self.window = window
        self.read = 0
        self.top = 0.0
        self.past_limit = False
        self.speakers_seen: dict[str, int] = {}
        self._vectors: np.ndarray | None = np.zeros((window, dim), dtype=np.float32)
        self._speakers = np.zeros(window, dtype=np.int64)
        self._authors: list[str] = [""] * window

    def speaker_of(self, author: str) -> int:
        index = self.speakers_seen.setdefault(author, len(self.speakers_seen))
        return min(index, SPEAKER_OTHER)

    def append(self, vector: np.ndarray, author: str) -> None:
        """Add message ``read + 1`` to the window."""
        if self._vectors is None:
            raise RuntimeError("conversation state was closed")
        slot = self.read % self.window
        self._vectors[slot] = vector
        self._speakers[slot] = self.speaker_of(author)
        self._authors[slot] = author
        self.read += 1

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, list[str], int]:
        """The window in message order: embeddings, speakers, authors, 1-based first line."""
        if self._vectors is None:
            raise RuntimeError("conversation state was closed")
        length = min(self.read, self.window)
        order = np.arange(self.read - length, self.read) % self.window
        return (
            self._vectors[order],
            self._speakers[order],
            [self._authors[i] for i in order],
            self.read - length + 1,
        )

    def close(self) -> None:
        """Free the window: nothing more will be scored (past ``max_messages``)."""
        self._vectors = None
        self._authors = []


@dataclass
class FollowSummary:
    """Counts of one ``follow`` run (also logged at the end)."""

    lines: int = 0
    messages: int = 0
    skipped_records: int = 0
    past_max_messages: int = 0
    warnings: int = 0
    conversations: int = 0


def parse_stream_line(raw: bytes, *, source_line: int) -> tuple[StreamMessage | None, list[str]]:
    """Parse one input line into a message, or say what is wrong without echoing it.

    Returns
    -------
    tuple
        ``(message or None, problems)``. A message with a problem that does not stop it
        from being scored (a bad ``time``, which scoring does not use) comes back with
        that problem; a record that cannot be scored comes back as ``None``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [f"not valid UTF-8 (bad byte at column {error.start + 1}); send UTF-8"]
    try:
        record = json.loads(text, parse_constant=lambda name: math.nan)
    except (json.JSONDecodeError, RecursionError) as error:
        where = f" at column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        return None, [f"not valid JSON{where}; expected one message object a line"]
    if not isinstance(record, dict):
        return None, [f'expected a JSON object {{"conversation", "author", "text"}}, got {json_kind(record)}']
    problems: list[str] = []
    fields: dict[str, str] = {}
    for key in ("conversation", "author"):
        value = record.get(key)
        if not isinstance(value, str) or not value.strip():
            shown = "missing" if key not in record else json_kind(value)
            fix = "the conversation's id" if key == "conversation" else "the author's id"
            problems.append(f"{key}: expected a non-empty string ({fix}), got {shown}")
        else:
            fields[key] = value
    body = record.get("text")
    if not isinstance(body, str):
        problems.append(f"text: expected a string, got {'missing' if 'text' not in record else json_kind(body)}")
    else:
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            problems.append("text: contains an unpaired surrogate escape (a broken emoji?); fix the encoding")
    if problems:
        return None, [f"{'; '.join(problems)}; record skipped"]
    notes = []
    stamp = record.get("time")
    if stamp is not None and not (isinstance(stamp, str) and _TIME.fullmatch(stamp)):
        notes.append('time: expected "HH:MM" or null; ignored (scoring does not use it)')
    return StreamMessage(fields["conversation"], fields["author"], body, source_line), notes


class StreamScorer:
    """Per-conversation streaming state and the scoring of new messages.

    Parameters
    ----------
    model
        The loaded bundle and encoder.
    detector
        Tags evidence lines with risk indicators (``None``: untagged).
    max_evidence
        Evidence lines per warning.

    Notes
    -----
    State grows with the number of conversations seen: at most ``window`` embeddings
    each, freed once a conversation passes ``max_messages`` (later messages are not
    scored, as in training). Chat text is not kept; author ids are kept for the suspect
    and evidence lines of a future warning.
    """

    def __init__(
        self, model: ScoringModel, *, detector: IndicatorDetector | None, max_evidence: int = MAX_EVIDENCE_LINES
    ) -> None:
        self.model = model
        self.detector = detector
        self.max_evidence = max_evidence
        self._states: dict[str, _Conversation] = {}
        self._device = next((p.device for p in model.head.parameters()), torch.device("cpu"))

    @property
    def conversations(self) -> int:
        """Conversations seen so far."""
        return len(self._states)

    def state_of(self, conversation: str) -> tuple[int, float, int | None]:
        """``(messages scored, highest score, alert_at)`` of a conversation seen so far."""
        state = self._states[conversation]
        return state.read, state.top, state.tracker.raised_at

    def _state(self, conversation: str) -> _Conversation:
        state = self._states.get(conversation)
        if state is None:
            rule = self.model.rule
            tracker = WarningTracker(threshold=self.model.threshold, k=rule.k, last=rule.last)
            state = self._states[conversation] = _Conversation(
                tracker=tracker, window=self.model.window, dim=self.model.encoder.dim
            )
        return state

    def feed(self, messages: Sequence[StreamMessage]) -> tuple[list[StreamWarning], list[tuple[int, str]], int]:
        """Score messages in arrival order.

        Returns
        -------
        tuple
            ``(warnings raised, notes as (source line, what), messages past max_messages)``.
        """
        warnings: list[StreamWarning] = []
        notes: list[tuple[int, str]] = []
        past = 0
        for first in range(0, len(messages), FEED_BATCH):
            chunk_warnings, chunk_notes, chunk_past = self._feed_chunk(messages[first : first + FEED_BATCH])
            warnings += chunk_warnings
            notes += chunk_notes
            past += chunk_past
        return warnings, notes, past

    def _feed_chunk(self, messages: Sequence[StreamMessage]) -> tuple[list[StreamWarning], list[tuple[int, str]], int]:
        notes: list[tuple[int, str]] = []
        accepted: list[tuple[StreamMessage, _Conversation, int, str]] = []
        past = 0
        pending: dict[str, int] = {}
        for message in messages:
            state = self._state(message.conversation)
            line = state.read + pending.get(message.conversation, 0) + 1
            if line > self.model.max_messages:
                if not state.past_limit:
                    state.past_limit = True
                    logger.info(
                        "conversation %r reached max_messages (%d); its later messages are not scored, as in training",
                        message.conversation,
                        self.model.max_messages,
                    )
                past += 1
                continue
            pending[message.conversation] = pending.get(message.conversation, 0) + 1
            text, note = scored_text(message.text, line=line)
            if note is not None:
                notes.append((message.source_line, f"conversation {message.conversation!r}, {note}"))
            accepted.append((message, state, line, text))
        if not accepted:
            return [], notes, past
        vectors = np.asarray(self.model.encoder.encode([text for *_, text in accepted]), dtype=np.float32)

        warnings: list[StreamWarning] = []
        for first in range(0, len(accepted), HEAD_BATCH):
            rows = slice(first, first + HEAD_BATCH)
            warnings += self._advance(accepted[rows], vectors[rows])
        return warnings, notes, past

    def _advance(
        self, accepted: Sequence[tuple[StreamMessage, _Conversation, int, str]], vectors: np.ndarray
    ) -> list[StreamWarning]:
        """Append encoded messages to their windows in arrival order, score the windows, track warnings."""
        # Advance every conversation's window in arrival order; row i of the batch is the
        # window after message i, padded on the right as in batch scoring.
        lengths = [min(line, state.window) for _, state, line, _ in accepted]
        width, dim = max(lengths), vectors.shape[1]
        x = np.zeros((len(accepted), width, dim), dtype=np.float32)
        speaker = np.zeros((len(accepted), width), dtype=np.int64)
        mask = np.zeros((len(accepted), width), dtype=bool)
        authors: list[list[str]] = []
        for row, ((message, state, _, _), vector) in enumerate(zip(accepted, vectors, strict=True)):
            state.append(vector, message.author)
            window_x, window_speakers, window_authors, _ = state.snapshot()
            x[row, : len(window_x)] = window_x
            speaker[row, : len(window_x)] = window_speakers
            mask[row, : len(window_x)] = True
            authors.append(window_authors)
        scores = self._scores(x, mask, speaker)

        warnings: list[StreamWarning] = []
        for row, (message, state, line, _) in enumerate(accepted):
            score = float(scores[row])
            state.top = max(state.top, score)
            if state.tracker.update(score):
                length = lengths[row]
                explanation = explain_window(
                    self.model.head,
                    embeddings=x[row, :length],
                    speakers=speaker[row, :length],
                    authors=authors[row],
                    first_line=line - length + 1,
                    detector=self.detector,
                    max_lines=self.max_evidence,
                )
                warnings.append(
                    StreamWarning(
                        conversation=message.conversation,
                        alert_at=line,
                        score=score,
                        suspect=explanation.suspect,
                        evidence=explanation.evidence,
                    )
                )
            if line == self.model.max_messages:
                state.close()
        return warnings

    def _scores(self, x: np.ndarray, mask: np.ndarray, speaker: np.ndarray) -> np.ndarray:
        """Sigmoid scores of a padded batch of windows, in one forward pass."""
        head = self.model.head
        was_training = head.training
        head.eval()
        try:
            with torch.inference_mode():
                logits = head(
                    torch.from_numpy(x).to(self._device),
                    torch.from_numpy(mask).to(self._device),
                    torch.from_numpy(speaker).to(self._device),
                )
                scores = torch.sigmoid(logits).float().cpu().numpy()
        finally:
            head.train(was_training)
        return scores


def _read_lines(source: IO[bytes], *, report: Callable[[int, str], None]) -> Iterator[list[tuple[int, bytes]]]:
    """Yield the complete lines that have arrived, as ``(line number, bytes)`` lists.

    ``read1`` returns what the input has ready (up to :data:`READ_BYTES`) without waiting
    for more, so a live producer's line is handed on at once and a fast one's lines come
    in batches. Lines over :data:`MAX_LINE_BYTES` are reported and skipped unread.
    """
    reader = getattr(source, "read1", source.read)
    pending = bytearray()
    number = 0
    skipping = False
    while True:
        chunk = reader(READ_BYTES)
        if not chunk:
            break
        pending += chunk
        lines: list[tuple[int, bytes]] = []
        while True:
            end = pending.find(b"\n")
            if end < 0:
                break
            line = bytes(pending[:end])
            del pending[: end + 1]
            number += 1
            if skipping:
                skipping = False
                continue
            if len(line) > MAX_LINE_BYTES:
                report(number, f"line longer than {MAX_LINE_BYTES} bytes; record skipped")
                continue
            lines.append((number, line))
        if len(pending) > MAX_LINE_BYTES and not skipping:
            report(number + 1, f"line longer than {MAX_LINE_BYTES} bytes; record skipped")
            skipping = True
        if skipping:
            pending.clear()
        if lines:
            yield lines
    if pending and not skipping:
        yield [(number + 1, bytes(pending))]


def follow(
    source: IO[bytes],
    sink: IO[str],
    *,
    scorer: StreamScorer,
    name: str,
    report: Callable[[str], None],
) -> FollowSummary:
    """Read messages from ``source`` until it ends; write a JSON line to ``sink`` per warning.

    Parameters
    ----------
    source
        Binary input, one JSON message a line (stdin's buffer, or a file).
    sink
        Where warning lines go; flushed after each batch of lines, so a reader sees a
        warning as soon as it is raised.
    scorer
        The streaming state.
    name
        The input's name in problem reports (``<stdin>`` or the file path).
    report
        Called with one line per bad record, ``name:line: what`` (never chat text).
    """
    summary = FollowSummary()

    def bad(line: int, what: str) -> None:
        summary.skipped_records += 1
        report(f"{name}:{line}: {what}")

    for lines in _read_lines(source, report=bad):
        batch: list[StreamMessage] = []
        for number, raw in lines:
            summary.lines = number
            if not raw.strip():
                continue
            message, problems = parse_stream_line(raw, source_line=number)
            if message is None:
                bad(number, "; ".join(problems))
                continue
            for problem in problems:
                report(f"{name}:{number}: {problem}")
            batch.append(message)
        if not batch:
            continue
        warnings, notes, past = scorer.feed(batch)
        for number, what in notes:
            report(f"{name}:{number}: {what}")
        summary.messages += len(batch) - past
        summary.past_max_messages += past
        summary.warnings += len(warnings)
        for warning in warnings:
            sink.write(json.dumps(warning.to_record(), ensure_ascii=False) + "\n")
        sink.flush()
    summary.conversations = scorer.conversations
    logger.info(
        "scored %d messages of %d conversations: %d warnings, %d bad records, %d messages past max_messages",
        summary.messages,
        summary.conversations,
        summary.warnings,
        summary.skipped_records,
        summary.past_max_messages,
    )
    return summary
