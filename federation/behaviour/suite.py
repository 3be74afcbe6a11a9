"""Run the behavioural suite against a model, through the analysts' own scoring path.

Every conversation goes through :class:`federation.scoring.Scorer`, the code behind
``cesagram score`` and ``cesagram evaluate``: the bundle's encoder (with its embedding
cache, so no text is encoded twice), its head, window scores, threshold and early-warning
rule. What the suite measures is what analysts get.

The decision
    A conversation is **flagged** when its score (the highest window score) reaches the
    bundle's threshold, and **warned** when the eSPD rule raises its early warning.
    Minimum functionality asks for *flagged* (grooming) or *not flagged* (ordinary; a
    conversation that is not flagged cannot be warned either). Invariance asks that both
    *flagged* and *warned* stay the same. Directional asks that the score move strictly in
    the stated direction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from federation.assessment import EarlyRule
from federation.behaviour.build import CAPABILITIES, Case, build_cases
from federation.bundle import BundleMeta
from federation.data.types import Conversation
from federation.errors import DataError
from federation.models.encoder import MessageEncoder
from federation.models.spec import ModelSpec
from federation.scoring.model import ScoringModel
from federation.scoring.scorer import Scorer

__all__ = [
    "DECISION",
    "CaseResult",
    "Outcome",
    "SuiteResult",
    "installed_real_negatives",
    "run_behaviour_suite",
    "run_suite",
]

logger = logging.getLogger(__name__)

#: How the suite reads a model's decision (also written into the JSON).
DECISION = (
    "flagged: conversation score >= the bundle's threshold; warned: the early-warning rule fired. "
    "Minimum functionality checks flagged, invariance checks that flagged and warned are unchanged, "
    "directional checks that the conversation score moves strictly in the stated direction."
)


@dataclass(frozen=True)
class Outcome:
    """What the model made of one conversation."""

    score: float
    flagged: bool
    warned: bool


@dataclass(frozen=True)
class CaseResult:
    """A case, what the model made of its conversations, and whether it passed."""

    case: Case
    original: Outcome
    perturbed: Outcome | None
    passed: bool


def _passed(case: Case, original: Outcome, perturbed: Outcome | None) -> bool:
    if case.expect == "flagged":
        return original.flagged
    if case.expect == "not_flagged":
        return not original.flagged
    if perturbed is None:
        raise ValueError(f"behavioural case {case.id!r} expects {case.expect!r} but has no perturbed conversation")
    if case.expect == "same":
        return (original.flagged, original.warned) == (perturbed.flagged, perturbed.warned)
    if case.expect == "higher":
        return perturbed.score > original.score
    return perturbed.score < original.score


@dataclass(frozen=True)
class SuiteResult:
    """Every case's result, and the counts per capability and per test."""

    results: tuple[CaseResult, ...]
    threshold: float
    rule: EarlyRule
    skipped: tuple[str, ...] = ()

    def failures(self, capability: str) -> list[CaseResult]:
        """Failed cases of ``capability``, templated ones first (their text can be shown)."""
        failed = [r for r in self.results if r.case.capability == capability and not r.passed]
        return sorted(failed, key=lambda r: r.case.real)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"capabilities": {NAME: {"cases", "passed", "pass_rate", "tests", "failed", "failed_scores"}}, ...}``.

        ``failed`` lists the failing case ids; ``failed_scores`` gives each one's conversation
        score before and after the edit (``null`` after for minimum functionality).
        """
        capabilities: dict[str, Any] = {}
        for capability in CAPABILITIES:
            results = [r for r in self.results if r.case.capability == capability]
            tests: dict[str, dict[str, int]] = {}
            for r in results:
                counts = tests.setdefault(r.case.test, {"cases": 0, "passed": 0})
                counts["cases"] += 1
                counts["passed"] += int(r.passed)
            passed = sum(r.passed for r in results)
            capabilities[capability] = {
                "cases": len(results),
                "passed": passed,
                "pass_rate": round(passed / len(results), 4) if results else None,
                "tests": tests,
                "failed": [r.case.id for r in results if not r.passed],
                "failed_scores": {
                    r.case.id: [round(r.original.score, 6), None if r.perturbed is None else round(r.perturbed.score, 6)]
                    for r in results
                    if not r.passed
                },
            }
        return {
            "capabilities": capabilities,
            "decision": DECISION,
            "threshold": self.threshold,
            "rule": {"k": self.rule.k, "last": self.rule.last, "window": self.rule.window},
            "skipped": list(self.skipped),
        }


def installed_real_negatives() -> tuple[list[Conversation], tuple[str, ...]]:
    """The reserved real chit-chat set, or nothing and why when the corpus is not installed."""
    from federation.data.chitchat import real_negative_set

    try:
        return real_negative_set(), ()
    except DataError as error:
        logger.warning("behavioural suite without real chit-chat: %s", error)
        return [], (f"ordinary_real: {error}",)


def run_suite(model: ScoringModel, cases: Sequence[Case], *, skipped: Sequence[str] = ()) -> SuiteResult:
    """Score every distinct conversation of ``cases`` once with ``model`` and judge each case."""
    conversations: dict[str, Conversation] = {}
    for case in cases:
        for conversation in (case.original, case.perturbed):
            if conversation is None:
                continue
            known = conversations.setdefault(conversation.id, conversation)
            if known != conversation:
                raise ValueError(f"behavioural suite: two different conversations share the id {conversation.id!r}")
    batch = Scorer(model, detector=None).score(list(conversations.values()))
    outcomes = {
        s.id: Outcome(score=s.score, flagged=s.score >= model.threshold, warned=s.alert) for s in batch.scores
    }
    results = []
    for case in cases:
        original = outcomes[case.original.id]
        perturbed = outcomes[case.perturbed.id] if case.perturbed is not None else None
        results.append(CaseResult(case=case, original=original, perturbed=perturbed, passed=_passed(case, original, perturbed)))
    logger.debug("behavioural suite: %d cases, %d conversations scored", len(results), len(conversations))
    return SuiteResult(results=tuple(results), threshold=model.threshold, rule=model.rule, skipped=tuple(skipped))


def run_behaviour_suite(
    head: nn.Module,
    encoder: MessageEncoder,
    *,
    spec: ModelSpec,
    threshold: float,
    rule: EarlyRule,
    real_negatives: Sequence[Conversation] | None = None,
) -> dict[str, Any]:
    """The suite's pass rates for a trained head, as ``report.json`` keeps them.

    For the end of a run, before or instead of exporting a bundle: the head is scored
    exactly as the bundle made from it would be (:class:`Scorer`, same spec, threshold and
    rule).

    Parameters
    ----------
    head, encoder
        The trained head (put in eval mode, as a loaded bundle's is) and the encoder it
        reads (give it the embedding cache, so that later runs encode nothing again).
    spec
        The run's model spec (``max_messages``).
    threshold, rule
        The bundle's threshold and early-warning rule.
    real_negatives
        Real benign conversations for the minimum-functionality test; ``None`` reads the
        reserved chit-chat set when ``chitchat-dataset`` is installed (and notes in
        ``skipped`` when it is not).

    Returns
    -------
    dict
        :meth:`SuiteResult.to_dict`: ``{"capabilities": {NAME: {"cases", "passed", ...}}, ...}``.
    """
    skipped: tuple[str, ...] = ()
    if real_negatives is None:
        real_negatives, skipped = installed_real_negatives()
    meta = BundleMeta(
        spec=spec, encoder_id=encoder.id, dim_in=encoder.dim, threshold=float(threshold), rule=rule, provenance={}
    )
    # No bundle folder yet: the scorer reads only the head, the encoder and the meta.
    model = ScoringModel(directory=Path("."), meta=meta, head=head.eval(), encoder=encoder)
    return run_suite(model, build_cases(real_negatives), skipped=skipped).to_dict()
