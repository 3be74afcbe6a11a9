"""Per-message risk indicators, matched against prototype phrases with the model's own encoder.

Evidence lines tell an analyst *why* a conversation was flagged: "asks for a photo",
"asks to keep it secret". The detector here compares each message embedding (the one
the scorer already computed, so indicators cost no extra encoding) with a few short,
non-explicit prototype phrases per indicator code, written below, plus the code's
description from :mod:`federation.data.indicators`. A message carries a code when its
best cosine similarity to that code's prototypes reaches the code's threshold.

Where the thresholds come from: :func:`calibrate_thresholds` picks, per code, the
similarity that maximises F-beta against the annotations of a *synthetic* calibration
set; ``simulations/benchmarks/indicators.py --calibrate`` prints them and they are
pasted into :data:`CALIBRATED_THRESHOLDS`. Nothing is learned from a node's data.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from federation.data.indicators import INDICATOR_CODES, INDICATORS
from federation.errors import ConfigError, DataError
from federation.metrics import fbeta
from federation.models.encoder import MessageEncoder

__all__ = [
    "CALIBRATED_THRESHOLDS",
    "PROTOTYPES",
    "IndicatorDetector",
    "calibrate_thresholds",
    "encoder_family",
    "indicator_metrics",
]

logger = logging.getLogger(__name__)

#: Short paraphrases of each risk indicator, written for this detector (not copied from the
#: synthetic generator's phrase banks). Indicator-level only: never explicit content.
PROTOTYPES: dict[str, tuple[str, ...]] = {
    "personal_question": (
        "what's your age?",
        "how old r you",
        "which school do you attend?",
        "what grade are you in?",
        "where do you live exactly?",
        "which town are you from?",
        "do you have your own bedroom?",
        "what time do you get back from school?",
        "what is your real name?",
    ),
    "flattery": (
        "you are very mature for your age",
        "you seem much older than you are",
        "you're not like the other kids",
        "you're really pretty",
        "you're so cute",
        "you have a lovely smile",
        "you're so special to me",
        "you're really talented and smart",
    ),
    "gift": (
        "i can buy you something nice",
        "i'll send you some money",
        "want me to get you game credit?",
        "i got you a present",
        "i'll top up your phone for you",
        "i bought you a new skin",
    ),
    "risk_check": (
        "are your parents at home?",
        "is anyone else in the house?",
        "are you by yourself right now?",
        "do your parents look at your phone?",
        "who else uses your computer?",
        "when do your parents come home?",
    ),
    "secrecy": (
        "don't tell anybody about this",
        "keep this between you and me",
        "it's our secret",
        "don't tell your parents we talk",
        "delete our messages afterwards",
        "if someone asks, say i'm your friend from school",
    ),
    "isolation": (
        "nobody understands you like i do",
        "your friends don't really care about you",
        "your parents are too strict with you",
        "you don't need them, you have me",
        "i'm the only one who gets you",
        "they are just jealous of you",
    ),
    "app_move": (
        "let's chat on another app",
        "add me on snapchat",
        "message me on whatsapp",
        "what's your instagram?",
        "let's go somewhere more private to talk",
        "download telegram so we can talk",
    ),
    "photo_request": (
        "send me a picture of yourself",
        "can i get a selfie?",
        "show me what you look like",
        "send me a photo just for me",
        "turn on your camera",
        "let's do a video call",
    ),
    "meeting_request": (
        "let's meet in person",
        "we should hang out, just the two of us",
        "i could come and pick you up",
        "want to meet up this weekend?",
        "i can come to your town",
        "meet me after school",
    ),
    "pressure": (
        "why aren't you answering me",
        "reply to me now",
        "you owe me after everything",
        "if you cared about me you would do it",
        "you are making me really mad",
        "i'll tell everyone about our chats",
        "you'll get in trouble if you don't",
    ),
    "runaway_offer": (
        "you can come and stay with me",
        "i'll pay for your ticket to get here",
        "leave home and come to my place",
        "you don't need to tell your parents you're leaving",
        "i'll send you money for the journey",
        "run away and live with me",
    ),
}

#: Per encoder family, the similarity at which a code is reported. Printed by
#: ``python simulations/benchmarks/indicators.py --calibrate`` (F0.5 on the messages of
#: the grooming conversations of synthetic calibration data, seed 101); that script also
#: prints precision and recall on held-out synthetic data (seed 202).
CALIBRATED_THRESHOLDS: dict[str, dict[str, float]] = {
    "minilm": {
        "personal_question": 0.753,
        "flattery": 0.548,
        "gift": 0.649,
        "risk_check": 0.75,
        "secrecy": 0.65,
        "isolation": 0.621,
        "app_move": 0.631,
        "photo_request": 0.581,
        "meeting_request": 0.683,
        "pressure": 0.578,
        "runaway_offer": 0.632,
    },
    "ngram": {
        "personal_question": 0.576,
        "flattery": 0.54,
        "gift": 0.444,
        "risk_check": 0.606,
        "secrecy": 0.422,
        "isolation": 0.591,
        "app_move": 0.622,
        "photo_request": 0.502,
        "meeting_request": 0.536,
        "pressure": 0.604,
        "runaway_offer": 0.719,
    },
}

#: Used for an encoder of unknown family (no calibration): a conservative cut.
FALLBACK_THRESHOLD = 0.7

_FAMILIES = (("all-MiniLM-L6-v2", "minilm"), ("hashed-ngrams", "ngram"))


def encoder_family(encoder_id: str) -> str | None:
    """``"minilm"`` or ``"ngram"`` for the project's encoders (by id prefix), else ``None``."""
    for prefix, family in _FAMILIES:
        if encoder_id.startswith(prefix):
            return family
    return None


def _prototype_texts() -> tuple[list[str], np.ndarray]:
    texts: list[str] = []
    owners: list[int] = []
    for index, code in enumerate(INDICATOR_CODES):
        for text in (INDICATORS[code], *PROTOTYPES[code]):
            texts.append(text)
            owners.append(index)
    return texts, np.asarray(owners, dtype=np.int64)


@dataclass(frozen=True)
class IndicatorDetector:
    """Prototype embeddings per indicator code and a similarity threshold per code.

    Attributes
    ----------
    encoder_id
        The encoder the prototypes were embedded with; message embeddings must come
        from the same one.
    prototypes
        float32 ``[P, d]`` unit vectors.
    owners
        int64 ``[P]``: the index in :data:`~federation.data.indicators.INDICATOR_CODES`
        of each prototype's code.
    thresholds
        float64 ``[C]``, one per code, in ``INDICATOR_CODES`` order.

    Notes
    -----
    Built only from phrases written in this module and thresholds calibrated on
    synthetic data, so it carries nothing of any node's conversations and can ship with
    the code.
    """

    encoder_id: str
    prototypes: np.ndarray
    owners: np.ndarray
    thresholds: np.ndarray

    @classmethod
    def for_encoder(
        cls, encoder: MessageEncoder, *, thresholds: Mapping[str, float] | None = None
    ) -> IndicatorDetector:
        """Embed the prototypes with ``encoder``.

        Parameters
        ----------
        encoder
            The scoring model's encoder (MiniLM goes through its embedding cache).
        thresholds
            Code to similarity; default: :data:`CALIBRATED_THRESHOLDS` of the encoder's
            family (:data:`FALLBACK_THRESHOLD` for an unknown one).
        """
        texts, owners = _prototype_texts()
        vectors = _unit(np.asarray(encoder.encode(texts), dtype=np.float32))
        if thresholds is None:
            family = encoder_family(encoder.id)
            thresholds = CALIBRATED_THRESHOLDS.get(family or "", {})
            if family is None:
                logger.warning("no calibrated indicator thresholds for encoder %s; using %.2f", encoder.id, FALLBACK_THRESHOLD)
        return cls(
            encoder_id=encoder.id,
            prototypes=vectors,
            owners=owners,
            thresholds=_threshold_vector(thresholds),
        )

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """Best cosine similarity of each message to each code's prototypes, ``[N, C]``."""
        x = _unit(np.asarray(embeddings, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.prototypes.shape[1]:
            raise DataError(
                f"indicator detector expects embeddings of width {self.prototypes.shape[1]} "
                f"(encoder {self.encoder_id}), got shape {x.shape}"
            )
        sims = x @ self.prototypes.T
        out = np.full((x.shape[0], len(INDICATOR_CODES)), -1.0, dtype=np.float32)
        for index in range(len(INDICATOR_CODES)):
            columns = self.owners == index
            if columns.any() and x.shape[0]:
                out[:, index] = sims[:, columns].max(axis=1)
        return out

    def with_thresholds(self, thresholds: Mapping[str, float]) -> IndicatorDetector:
        """The same prototypes with other thresholds (codes left out get the fallback)."""
        return dataclasses.replace(self, thresholds=_threshold_vector(thresholds))

    def detect(self, embeddings: np.ndarray) -> list[tuple[str, ...]]:
        """Indicator codes per message, most similar first."""
        return self.detect_from_similarities(self.similarities(embeddings))

    def detect_from_similarities(self, similarities: np.ndarray) -> list[tuple[str, ...]]:
        """Indicator codes per row of :meth:`similarities`, most similar first."""
        sims = np.asarray(similarities)
        found: list[tuple[str, ...]] = []
        for row in sims:
            hits = np.flatnonzero(row >= self.thresholds)
            hits = hits[np.argsort(-row[hits], kind="stable")]
            found.append(tuple(INDICATOR_CODES[i] for i in hits))
        return found


def _unit(x: np.ndarray) -> np.ndarray:
    if x.ndim != 2:
        return x
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _threshold_vector(thresholds: Mapping[str, float]) -> np.ndarray:
    unknown = sorted(set(thresholds) - set(INDICATOR_CODES))
    if unknown:
        raise ConfigError(f"indicator thresholds name unknown codes {unknown}; known codes: {', '.join(INDICATOR_CODES)}")
    values = np.array([float(thresholds.get(code, FALLBACK_THRESHOLD)) for code in INDICATOR_CODES])
    if not np.isfinite(values).all():
        raise ConfigError("indicator thresholds must be finite numbers")
    return values


def _annotation_matrix(annotations: Sequence[Sequence[str]]) -> np.ndarray:
    truth = np.zeros((len(annotations), len(INDICATOR_CODES)), dtype=bool)
    position = {code: i for i, code in enumerate(INDICATOR_CODES)}
    for row, codes in enumerate(annotations):
        for code in codes:
            if code not in position:
                raise DataError(f"annotation #{row} holds an unknown indicator code; known: {', '.join(INDICATOR_CODES)}")
            truth[row, position[code]] = True
    return truth


def calibrate_thresholds(
    similarities: np.ndarray, annotations: Sequence[Sequence[str]], *, beta: float = 0.5
) -> dict[str, float]:
    """Per code, the similarity threshold with the best F-beta on annotated messages.

    Parameters
    ----------
    similarities
        ``[N, C]`` from :meth:`IndicatorDetector.similarities` on calibration messages.
    annotations
        The annotated codes of each message (synthetic data: groomer lines carry codes).
    beta
        0.5 favours precision: a wrong indicator on an evidence line misleads an analyst
        more than a missing one.

    Returns
    -------
    dict
        Code to threshold, rounded to 3 decimals (ties go to the higher threshold). A
        code absent from the annotations gets :data:`FALLBACK_THRESHOLD`.

    Notes
    -----
    Call it on synthetic data only: thresholds fitted to a node's private annotations
    would carry information about them and could not ship without DP.
    """
    sims = np.asarray(similarities, dtype=np.float64)
    truth = _annotation_matrix(annotations)
    if sims.shape != truth.shape:
        raise DataError(f"{sims.shape[0]} similarity rows for {truth.shape[0]} annotations")
    out: dict[str, float] = {}
    for index, code in enumerate(INDICATOR_CODES):
        positives = int(truth[:, index].sum())
        if positives == 0:
            out[code] = FALLBACK_THRESHOLD
            continue
        column = sims[:, index]
        order = np.argsort(-column, kind="stable")
        ranked, hits = column[order], truth[order, index]
        tps, flagged = np.cumsum(hits), np.arange(1, len(ranked) + 1)
        last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]  # a cut includes every tie
        best, best_value = -1.0, math.inf
        for cut in np.flatnonzero(last_of_tie):
            tp = int(tps[cut])
            score = fbeta(tp=tp, fp=int(flagged[cut]) - tp, fn=positives - tp, beta=beta)
            if score > best + 1e-12:
                best, best_value = score, float(ranked[cut])
        out[code] = math.floor(best_value * 1000) / 1000 if math.isfinite(best_value) else FALLBACK_THRESHOLD
    return out


def indicator_metrics(
    predicted: Sequence[Sequence[str]], annotations: Sequence[Sequence[str]]
) -> dict[str, dict[str, float | int]]:
    """Per code precision, recall, F1 and counts of predicted against annotated codes.

    Returns
    -------
    dict
        Code to ``{"precision", "recall", "f1", "tp", "fp", "fn", "support"}``, plus
        ``"micro"`` over all codes. Precision and recall are 0.0 with nothing to count.
    """
    if len(predicted) != len(annotations):
        raise DataError(f"{len(predicted)} predictions for {len(annotations)} annotations")
    p, t = _annotation_matrix(predicted), _annotation_matrix(annotations)
    out: dict[str, dict[str, float | int]] = {}

    def row(tp: int, fp: int, fn: int) -> dict[str, float | int]:
        return {
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "f1": fbeta(tp=tp, fp=fp, fn=fn, beta=1.0),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "support": tp + fn,
        }

    for index, code in enumerate(INDICATOR_CODES):
        tp = int(np.sum(p[:, index] & t[:, index]))
        out[code] = row(tp, int(np.sum(p[:, index] & ~t[:, index])), int(np.sum(~p[:, index] & t[:, index])))
    tp = int(np.sum(p & t))
    out["micro"] = row(tp, int(np.sum(p & ~t)), int(np.sum(~p & t)))
    return out
