"""Analysts' scoring: risk score, early warning, likely groomer and evidence lines per conversation.

``cesagram score`` and ``cesagram evaluate`` (:mod:`.cli`) load a trained model bundle
(:mod:`.model`), score conversation files in batch (:mod:`.scorer`) or message streams as
they come (:mod:`.follow`), explain flagged windows (:mod:`.evidence`) and tag evidence
lines with risk indicators (:mod:`.indicators`).
"""

from federation.scoring.evaluation import author_identification, evaluation_report, true_predators
from federation.scoring.evidence import EvidenceLine, Explanation, explain_window
from federation.scoring.follow import StreamMessage, StreamScorer, StreamWarning, follow, parse_stream_line
from federation.scoring.indicators import IndicatorDetector, calibrate_thresholds, indicator_metrics
from federation.scoring.model import ScoringModel, load_scoring_model
from federation.scoring.scorer import BatchResult, ConversationScore, Scorer
from federation.scoring.texts import MAX_TEXT_CHARS, prepare_conversation, scored_text

__all__ = [
    "MAX_TEXT_CHARS",
    "BatchResult",
    "ConversationScore",
    "EvidenceLine",
    "Explanation",
    "IndicatorDetector",
    "Scorer",
    "ScoringModel",
    "StreamMessage",
    "StreamScorer",
    "StreamWarning",
    "author_identification",
    "calibrate_thresholds",
    "evaluation_report",
    "explain_window",
    "follow",
    "indicator_metrics",
    "load_scoring_model",
    "parse_stream_line",
    "prepare_conversation",
    "scored_text",
    "true_predators",
]
