"""Batch scoring: per conversation the risk score, the early warning, the suspect and the evidence.

The numbers are the ones the run's own assessment computes (:func:`federation.assessment.assess`):
the same features (first ``max_messages`` messages), the same sliding windows of
``rule.window`` messages, the conversation score as the highest window score, and the
eSPD warning rule with the bundle's threshold. ``cesagram evaluate`` on the run's
held-out file therefore reproduces the run's report.

Evidence and suspect are worked out only for *flagged* conversations (score at or above
the threshold, which includes every warned one): analysts triage those, and naming a
person in a conversation the model does not flag would be a lead with nothing behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from federation.data.types import Conversation
from federation.early import warning_at
from federation.models.features import FeatureSet, build_features
from federation.models.windows import window_scores
from federation.scoring.evidence import MAX_EVIDENCE_LINES, EvidenceLine, Explanation, explain_window
from federation.scoring.indicators import IndicatorDetector
from federation.scoring.model import ScoringModel
from federation.scoring.texts import TextNote, prepare_conversation

__all__ = ["BatchResult", "ConversationScore", "Scorer"]

logger = logging.getLogger(__name__)

_DIGITS = 6


@dataclass(frozen=True)
class ConversationScore:
    """What the analyst gets for one conversation.

    Attributes
    ----------
    id
        The conversation id.
    score
        The highest window score, in [0, 1].
    alert_at
        1-based index of the message at which the early warning was raised, or ``None``.
    suspect
        Author id most likely to be the groomer (flagged conversations only).
    evidence
        Up to a handful of lines, heaviest first.
    window_scores
        The window score after each scored message (entry ``t - 1``: the window ending at
        message ``t``); ``score`` is their maximum. Pages draw the risk strip from these.
    """

    id: str
    score: float
    alert_at: int | None
    suspect: str | None
    evidence: tuple[EvidenceLine, ...]
    window_scores: tuple[float, ...] = ()

    @property
    def alert(self) -> bool:
        """Whether the early warning was raised."""
        return self.alert_at is not None

    def to_record(self) -> dict[str, Any]:
        """The JSON line: ``{"id", "score", "alert", "alert_at", "suspect", "evidence", "window_scores"}``."""
        return {
            "id": self.id,
            "score": round(self.score, _DIGITS),
            "alert": self.alert,
            "alert_at": self.alert_at,
            "suspect": self.suspect,
            "evidence": [line.to_record() for line in self.evidence],
            "window_scores": [round(value, _DIGITS) for value in self.window_scores],
        }


@dataclass(frozen=True)
class BatchResult:
    """Scores in input order, plus what evaluation needs.

    Attributes
    ----------
    scores
        One per conversation.
    per_message
        Window scores after each (kept) message, per conversation.
    labels
        The conversations' labels.
    notes
        ``(conversation id, notes)`` for conversations with empty or cut texts.
    """

    scores: list[ConversationScore]
    per_message: list[np.ndarray]
    labels: np.ndarray
    notes: list[tuple[str, list[TextNote]]]


class Scorer:
    """Scores conversations with a loaded bundle.

    Parameters
    ----------
    model
        The loaded bundle and encoder.
    detector
        Tags evidence lines with risk indicators; ``None`` leaves them untagged.
    max_evidence
        Evidence lines per conversation.
    """

    def __init__(
        self, model: ScoringModel, *, detector: IndicatorDetector | None, max_evidence: int = MAX_EVIDENCE_LINES
    ) -> None:
        self.model = model
        self.detector = detector
        self.max_evidence = max_evidence

    def score(self, conversations: Sequence[Conversation]) -> BatchResult:
        """Score every conversation (empty and huge texts are scored and noted, see :mod:`.texts`)."""
        prepared: list[Conversation] = []
        notes: list[tuple[str, list[TextNote]]] = []
        for conversation in conversations:
            ready, found = prepare_conversation(conversation, max_messages=self.model.max_messages)
            prepared.append(ready)
            if found:
                notes.append((conversation.id, found))
        features = build_features(prepared, self.model.encoder, max_messages=self.model.max_messages)
        per_message = window_scores(self.model.head, features, window=self.model.window)
        rule, threshold = self.model.rule, self.model.threshold
        results = []
        for index, (conversation, scores) in enumerate(zip(prepared, per_message, strict=True)):
            top = float(scores.max()) if scores.size else 0.0
            alert_at = warning_at(scores, threshold=threshold, k=rule.k, last=rule.last)
            explanation = Explanation(evidence=(), suspect=None)
            if scores.size and top >= threshold:
                end = alert_at if alert_at is not None else int(np.argmax(scores)) + 1
                explanation = self._explain(features, index, conversation, end=end)
            results.append(
                ConversationScore(
                    id=conversation.id,
                    score=top,
                    alert_at=alert_at,
                    suspect=explanation.suspect,
                    evidence=explanation.evidence,
                    window_scores=tuple(float(value) for value in scores),
                )
            )
        logger.debug("scored %d conversations (%d flagged)", len(results), sum(r.suspect is not None for r in results))
        return BatchResult(scores=results, per_message=per_message, labels=features.labels, notes=notes)

    def _explain(self, features: FeatureSet, index: int, conversation: Conversation, *, end: int) -> Explanation:
        """Explain the window of ``conversation`` ending at message ``end`` (1-based)."""
        start = max(0, end - self.model.window)
        rows = features.rows[index][start:end]
        return explain_window(
            self.model.head,
            embeddings=features.embeddings[rows],
            speakers=features.speakers[index][start:end],
            authors=[m.author for m in conversation.messages[start:end]],
            first_line=start + 1,
            detector=self.detector,
            max_lines=self.max_evidence,
        )
