"""Why a window scored high: the lines that raised it and the author most likely to be the groomer.

Both come from one question put to the head itself: *how much lower would the risk be
without this?* The window that decided (the one ending at the warning, or the highest
scoring one) is scored again once without each of its lines and once without all the
lines of each author, in a single batch. A line's weight is its share of the drops in the
head's logit; the suspect is the author whose lines, taken away, drop the logit most.

This works the same for every head (the n-gram head's own message weights are uniform,
the attention head's weights say where it looked, not which way it pushed), and costs
one forward pass of ``1 + lines + authors`` windows per explained conversation.

The suspect is first the author of the most lines tagged with a risk indicator, and the
head's drop only breaks ties. The head scores *conversations*: a child's replies to
grooming ("why do you want to know?") are as typical of grooming conversations as the
groomer's lines, so the drop alone often points at the child. The indicators describe
what the asker does (asks the age, asks for a photo, asks for secrecy). On held-out
synthetic data, with small heads trained on synthetic nodes, it raised the flagged
grooming conversations whose suspect is the groomer from 6 to 9 of 12 (the earlier MiniLM
head that pooled embeddings; not re-measured with ``MessageScoreHead``) and from 6 to 8 of
13 (n-gram head); over all grooming conversations, from 15 to 21 and from 12 to 21 of 29.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from federation.scoring.indicators import IndicatorDetector

__all__ = ["MAX_EVIDENCE_LINES", "EvidenceLine", "Explanation", "explain_window"]

logger = logging.getLogger(__name__)

#: Evidence lines reported per conversation, at most.
MAX_EVIDENCE_LINES = 5
#: Lines with a smaller share of the evidence are left out.
MIN_SHARE = 0.01


@dataclass(frozen=True)
class EvidenceLine:
    """One line that raised the risk.

    Attributes
    ----------
    line
        1-based index of the message in the conversation.
    author
        Who wrote it (the analyst's own data; never logged).
    indicators
        Risk-indicator codes the line matches, most similar first.
    weight
        Its share, in (0, 1], of what the window's lines added to the risk logit.
    """

    line: int
    author: str
    indicators: tuple[str, ...]
    weight: float

    def to_record(self) -> dict[str, Any]:
        """``{"line", "author", "indicators", "weight"}`` for the JSON output."""
        return {"line": self.line, "author": self.author, "indicators": list(self.indicators), "weight": self.weight}


@dataclass(frozen=True)
class Explanation:
    """Evidence lines (heaviest first) and the suspect of one window."""

    evidence: tuple[EvidenceLine, ...]
    suspect: str | None


def _device_of(head: nn.Module) -> torch.device:
    for parameter in head.parameters():
        return parameter.device
    return torch.device("cpu")


def _variant_logits(
    head: nn.Module, embeddings: np.ndarray, speakers: np.ndarray, keeps: list[np.ndarray]
) -> np.ndarray:
    """Logits of the window restricted to each boolean ``keep`` mask (lines removed, not blanked)."""
    n, dim = embeddings.shape
    x = np.zeros((len(keeps), max(n, 1), dim), dtype=np.float32)
    speaker = np.zeros((len(keeps), max(n, 1)), dtype=np.int64)
    mask = np.zeros((len(keeps), max(n, 1)), dtype=bool)
    for row, keep in enumerate(keeps):
        index = np.flatnonzero(keep)
        x[row, : index.size] = embeddings[index]
        speaker[row, : index.size] = speakers[index]
        mask[row, : index.size] = True
    device = _device_of(head)
    was_training = head.training
    head.eval()
    try:
        with torch.inference_mode():
            logits = head(
                torch.from_numpy(x).to(device), torch.from_numpy(mask).to(device), torch.from_numpy(speaker).to(device)
            )
    finally:
        head.train(was_training)
    return logits.float().cpu().numpy().astype(np.float64)


def explain_window(
    head: nn.Module,
    *,
    embeddings: np.ndarray,
    speakers: np.ndarray,
    authors: Sequence[str],
    first_line: int,
    detector: IndicatorDetector | None,
    max_lines: int = MAX_EVIDENCE_LINES,
) -> Explanation:
    """Evidence lines and the suspect of one scored window.

    Parameters
    ----------
    head
        The trained head.
    embeddings, speakers
        The window's message embeddings ``[n, d]`` and speaker indices ``[n]`` (as in
        the conversation's features: 0 first author, 1 second, 2 others).
    authors
        The author of each of the ``n`` lines.
    first_line
        1-based index in the conversation of the window's first line.
    detector
        Tags evidence lines with risk indicators (``None``: no tags).
    max_lines
        Evidence lines kept.

    Returns
    -------
    Explanation
        Lines whose removal lowers the logit, heaviest first (ties: earlier line), each
        with a share of at least :data:`MIN_SHARE`; the suspect is the author of the most
        indicator-tagged lines, ties going to the author whose removal lowers the logit
        most (the only author of a one-author window; ``None`` for an empty window).

    Notes
    -----
    Runs where the conversation is (the analyst's machine); author ids stay in the
    returned object and are never logged.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    speakers = np.asarray(speakers, dtype=np.int64)
    n = embeddings.shape[0]
    if n == 0:
        return Explanation(evidence=(), suspect=None)
    if speakers.shape != (n,) or len(authors) != n:
        raise ValueError(f"window of {n} embeddings has {speakers.size} speakers and {len(authors)} authors")
    people = list(dict.fromkeys(authors))
    owner = np.array([people.index(a) for a in authors], dtype=np.int64)
    keeps = [np.ones(n, dtype=bool)]
    keeps += [np.arange(n) != i for i in range(n)]
    keeps += [owner != p for p in range(len(people))]
    logits = _variant_logits(head, embeddings, speakers, keeps)
    full = logits[0]
    line_drops = np.maximum(full - logits[1 : n + 1], 0.0)
    author_drops = full - logits[n + 1 :]
    tags = detector.detect(embeddings) if detector is not None else [()] * n
    tagged = np.bincount(owner[[bool(codes) for codes in tags]], minlength=len(people))
    # Most indicator lines first, then the larger drop; the earlier author on a full tie.
    suspect = people[max(range(len(people)), key=lambda p: (tagged[p], author_drops[p], -p))]

    total = float(line_drops.sum())
    if total <= 0.0:
        return Explanation(evidence=(), suspect=suspect)
    shares = line_drops / total
    order = [int(i) for i in np.argsort(-shares, kind="stable") if shares[i] >= MIN_SHARE][:max_lines]
    evidence = tuple(
        EvidenceLine(line=first_line + i, author=authors[i], indicators=tuple(tags[i]), weight=round(float(shares[i]), 4))
        for i in order
    )
    return Explanation(evidence=evidence, suspect=suspect)
