"""One-run privacy audit (Steinke, Nasr and Jagielski, NeurIPS 2023): canaries, guesses, a lower bound.

Pure maths and the canaries' state; the training loop (``federation.training``) injects
the canaries and accumulates their scores, the node keeps the state between rounds.

The audit: ``m`` canaries, each "in" or "out" by a secret fair coin. An "in" canary is a
record of the mechanism (Poisson-sampled at each DP-SGD step like a conversation, its
gradient clipped and summed with theirs, before the noise). After training, each canary
gets a score (the summed noisy gradient along its direction); the auditor guesses "in"
for the ``k`` highest scores, "out" for the ``k`` lowest and abstains on the rest. If the
mechanism is (epsilon, delta)-DP, the number of correct guesses is (nearly) dominated by
a Binomial(guesses, e^epsilon / (1 + e^epsilon)) (the paper's Theorem 5.2 and its
Algorithm 2 for delta > 0): many more correct guesses than that refute the claim, and
the largest epsilon they refute at 95% confidence is the audit's *lower bound*.

A lower bound above the accounted epsilon is a bug in the mechanism or its accounting
(noise, sampling or clipping not what the accountant was told). A lower bound below it
proves nothing about the claim: one run with ``m`` canaries cannot show more than about
``log(m / 3)``, and the bound is loose for DP-SGD at small epsilon.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from federation.checks import is_integer
from federation.errors import ConfigError, LedgerError
from federation.io import atomic_write_json

__all__ = [
    "AUDIT_KINDS",
    "CONFIDENCE",
    "GUESS_FRACTIONS",
    "AuditBound",
    "AuditResult",
    "CanaryState",
    "GuessCounts",
    "audit_bound",
    "audit_path_for",
    "epsilon_lower_bound",
    "guess_counts",
    "load_canaries",
    "p_value",
    "read_run_entries",
    "result_of",
    "save_canaries",
    "summarize",
    "write_run_entry",
]

AUDIT_KINDS: tuple[str, ...] = ("off", "white", "black", "both")
"""``off``; ``white``: gradient canaries inside the node's DP-SGD loop; ``black``: canary
conversations in its training data (:mod:`federation.privacy.input_canaries`); ``both``."""

CONFIDENCE = 0.95
"""Confidence of every reported lower bound."""

GUESS_FRACTIONS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
"""Guesses per side, as shares of the canaries: ``k = round(f * m)`` "in" (top) and "out" (bottom).

Fixed before any score is seen; the bound takes the best of them at confidence
``1 - (1 - CONFIDENCE) / len(GUESS_FRACTIONS)`` each (Bonferroni), so the scan costs
confidence honestly instead of being a free pick of the luckiest threshold.
"""

#: Norm of a canary's gradient before clipping, in clipping norms: above 1, so that the
#: mechanism's clipping must act on it (a canary not clipped would show up in the audit).
CANARY_NORM = 2.0

_SEARCH_STEPS = 40


def p_value(*, canaries: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    """Probability of at least ``correct`` right guesses out of ``guesses`` under an (epsilon, delta)-DP mechanism.

    The paper's Algorithm 2 (Theorem 5.2): with ``q = e^eps / (1 + e^eps)``,
    ``beta = P[Bin(r, q) >= v]`` and ``alpha = max_i P[v - i <= Bin(r, q) < v] / i``
    over ``i = 1..v``, the p-value is ``min(1, beta + 2 m delta alpha)``.
    """
    m, r, v = int(canaries), int(guesses), int(correct)
    if not 0 <= v <= r <= m:
        raise ConfigError(f"audit counts must satisfy 0 <= correct <= guesses <= canaries, got {v}, {r}, {m}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ConfigError(f"audit null hypothesis needs epsilon >= 0 and delta in [0, 1], got {epsilon}, {delta}")
    if r == 0 or v == 0:
        return 1.0
    from scipy.stats import binom

    q = 1.0 / (1.0 + math.exp(-epsilon))
    beta = float(binom.sf(v - 1, r, q))
    if delta == 0:
        return min(1.0, beta)
    below = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[Bin = v - i] for i = 1..v
    alpha = float(np.max(np.cumsum(below) / np.arange(1, v + 1)))
    return min(1.0, beta + 2.0 * m * delta * alpha)


def epsilon_lower_bound(*, canaries: int, guesses: int, correct: int, delta: float, significance: float) -> float:
    """Largest epsilon that ``correct`` of ``guesses`` refutes at ``significance`` (0.0 when none).

    Bisection on epsilon (the p-value grows with it), as the paper's Algorithm 2.
    """
    def refuted(eps: float) -> bool:
        return p_value(canaries=canaries, guesses=guesses, correct=correct, epsilon=eps, delta=delta) < significance

    if not refuted(0.0):
        return 0.0
    low, high = 0.0, 1.0
    while refuted(high):
        low, high = high, 2.0 * high
        if high > 1e3:  # not reached for m below e^1000 canaries
            return low
    for _ in range(_SEARCH_STEPS):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if refuted(middle) else (low, middle)
    return low


@dataclass(frozen=True, slots=True)
class GuessCounts:
    """Guesses and correct guesses at one point of the scan (``k`` "in" guesses and ``k`` "out")."""

    per_side: int
    guesses: int
    correct: int


def guess_counts(scores: np.ndarray, members: np.ndarray, *, rng: np.random.Generator) -> list[GuessCounts]:
    """Correct guesses at each point of :data:`GUESS_FRACTIONS` ("in" for the top ``k``, "out" for the bottom ``k``).

    Ties (canaries never sampled without noise all score 0) are broken by a random order
    drawn from ``rng``, never by index.
    """
    scores = np.asarray(scores, dtype=np.float64)
    members = np.asarray(members, dtype=bool)
    m = scores.size
    order = rng.permutation(m)
    ranked = order[np.argsort(-scores[order], kind="stable")]  # highest score first
    counts: list[GuessCounts] = []
    for fraction in GUESS_FRACTIONS:  # every point, also repeated ones: nodes' scans add up point by point
        k = min(m // 2, max(1, round(fraction * m)))
        top, bottom = ranked[:k], ranked[m - k :]
        correct = int(members[top].sum() + (~members[bottom]).sum())
        counts.append(GuessCounts(per_side=k, guesses=2 * k, correct=correct))
    return counts


@dataclass(frozen=True, slots=True)
class AuditBound:
    """The audit's answer: the best lower bound over the scan, and the counts that gave it."""

    canaries: int
    guesses: int
    correct: int
    lower_bound: float
    confidence: float
    tests: int


def audit_bound(
    *, canaries: int, counts: Sequence[GuessCounts], delta: float, confidence: float = CONFIDENCE
) -> AuditBound:
    """The largest lower bound over the scan, each point at the Bonferroni-corrected significance.

    ``tests`` is the number of scan points the correction divides the significance by
    (always ``len(GUESS_FRACTIONS)``, also when small ``m`` merges points: the scan is
    fixed in advance).
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"audit confidence must be in (0, 1), got {confidence!r}")
    tests = len(GUESS_FRACTIONS)
    significance = (1.0 - confidence) / tests
    best = AuditBound(canaries=int(canaries), guesses=0, correct=0, lower_bound=0.0, confidence=confidence, tests=tests)
    for point in counts:
        bound = epsilon_lower_bound(
            canaries=canaries, guesses=point.guesses, correct=point.correct, delta=delta, significance=significance
        )
        if bound > best.lower_bound or best.guesses == 0:
            best = AuditBound(
                canaries=int(canaries),
                guesses=point.guesses,
                correct=point.correct,
                lower_bound=bound,
                confidence=confidence,
                tests=tests,
            )
    return best


@dataclass
class CanaryState:
    """One run's canaries at one node: their secret membership, their scores so far, the steps they saw.

    Attributes
    ----------
    members
        ``[m]`` bool: the secret coin flips ("in" canaries are records of the mechanism).
    scores
        ``[m]`` float64: per canary, the sum over steps of the noisy summed gradient along
        its direction, in clipping norms (an "in" canary sampled ``c`` times has mean ``c``).
    history
        ``(noise_multiplier, sample_rate, steps)`` of every call the canaries went
        through: the mechanism the audit tests, whose accounted epsilon the bound is
        compared with.
    tie_seed
        Seeds the random tie-breaking of :func:`guess_counts`.
    """

    members: np.ndarray
    scores: np.ndarray
    history: list[tuple[float, float, int]] = field(default_factory=list)
    tie_seed: int = 0

    @classmethod
    def fresh(cls, canaries: int) -> CanaryState:
        """New canaries with coin flips from OS entropy (never from a seed anyone else knows)."""
        if not is_integer(canaries, numpy=False) or canaries < 2:
            raise ConfigError(f"privacy.audit_canaries must be an integer >= 2, got {canaries!r}")
        rng = np.random.default_rng(secrets.randbits(128))
        return cls(
            members=rng.random(canaries) < 0.5,
            scores=np.zeros(canaries, dtype=np.float64),
            tie_seed=secrets.randbits(63),
        )

    @property
    def canaries(self) -> int:
        return int(self.members.size)

    @property
    def canaries_in(self) -> int:
        return int(self.members.sum())

    def counts(self) -> list[GuessCounts]:
        return guess_counts(self.scores, self.members, rng=np.random.default_rng(self.tie_seed))

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": [int(x) for x in self.members],
            "scores": [float(x) for x in self.scores],
            "history": [[float(z), float(q), int(t)] for z, q, t in self.history],
            "tie_seed": int(self.tie_seed),
        }

    @classmethod
    def from_dict(cls, document: Any) -> CanaryState:
        try:
            members = np.asarray(document["members"], dtype=np.int64)
            scores = np.asarray(document["scores"], dtype=np.float64)
            history = [(float(z), float(q), int(t)) for z, q, t in document["history"]]
            tie_seed = int(document["tie_seed"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError("audit state is damaged (members, scores, history, tie_seed)") from None
        if members.ndim != 1 or members.shape != scores.shape or not np.isin(members, (0, 1)).all():
            raise ConfigError("audit state is damaged (members and scores differ)")
        if not np.isfinite(scores).all():
            raise ConfigError("audit state is damaged (a score is not finite)")
        return cls(members=members.astype(bool), scores=scores, history=history, tie_seed=tie_seed)


@dataclass(frozen=True, slots=True)
class AuditResult:
    """What a node reports of its audit (and the run of all nodes): counts, the bound and the claim beside it.

    ``epsilon`` is the accounted epsilon of exactly the steps the canaries went through
    (this run's DP-SGD at the node, by the node's accountant), ``inf`` for the control
    (no noise). ``scan_guesses`` and ``scan_correct`` hold every point of the fixed scan,
    so that the run's pooled test can add them up across nodes.
    """

    kind: str
    canaries_in: int
    canaries_out: int
    guesses: int
    correct: int
    lower_bound: float
    confidence: float
    epsilon: float
    delta: float
    steps: int
    scan_guesses: tuple[int, ...]
    scan_correct: tuple[int, ...]

    @property
    def failed(self) -> bool:
        """Whether the bound refutes the accounted epsilon: a bug in the mechanism or its accounting."""
        return self.lower_bound > self.epsilon

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "canaries_in": self.canaries_in,
            "canaries_out": self.canaries_out,
            "guesses": self.guesses,
            "correct": self.correct,
            "lower_bound": self.lower_bound,
            "confidence": self.confidence,
            "epsilon": None if math.isinf(self.epsilon) else self.epsilon,
            "delta": self.delta,
            "steps": self.steps,
            "guarantee_failed": self.failed,
        }


def summarize(
    *,
    kind: str,
    canaries: int,
    canaries_in: int,
    scan: Sequence[GuessCounts],
    epsilon: float,
    delta: float,
    steps: int,
    confidence: float = CONFIDENCE,
) -> AuditResult:
    """The audit's result from the scan's counts (one node's, or the nodes' added up)."""
    bound = audit_bound(canaries=canaries, counts=scan, delta=delta, confidence=confidence)
    return AuditResult(
        kind=kind,
        canaries_in=int(canaries_in),
        canaries_out=int(canaries - canaries_in),
        guesses=bound.guesses,
        correct=bound.correct,
        lower_bound=bound.lower_bound,
        confidence=confidence,
        epsilon=float(epsilon),
        delta=float(delta),
        steps=int(steps),
        scan_guesses=tuple(point.guesses for point in scan),
        scan_correct=tuple(point.correct for point in scan),
    )


def result_of(state: CanaryState, *, kind: str, delta: float, accountant: str) -> AuditResult:
    """A node's audit so far: the bound from its canaries, beside the epsilon of the steps they saw.

    The epsilon composes exactly the calls in ``state.history`` with the node's
    accountant; a call without noise (the control) makes it infinite.
    """
    if any(noise == 0 for noise, _, _ in state.history):
        epsilon = math.inf
    elif state.history:
        from federation.privacy.accounting import epsilon_of

        epsilon = epsilon_of(state.history, delta=delta, accountant=accountant)
    else:
        epsilon = 0.0
    return summarize(
        kind=kind,
        canaries=state.canaries,
        canaries_in=state.canaries_in,
        scan=state.counts(),
        epsilon=epsilon,
        delta=delta,
        steps=sum(steps for _, _, steps in state.history),
    )


def audit_path_for(ledger: Path) -> Path:
    """Where a node keeps its runs' canaries: ``<ledger>.audit.json`` (secret: the coin flips)."""
    ledger = Path(ledger)
    return ledger.with_name(ledger.name + ".audit.json")


_KEPT_RUNS = 3


def load_canaries(path: Path, *, run_id: str, canaries: int) -> CanaryState:
    """The run's canaries at this node, new ones at the run's first call.

    A run that asks for another number of canaries than it started with gets a
    one-line error: its audit cannot change canaries half-way.
    """
    path = Path(path)
    runs = read_run_entries(path)
    if run_id not in runs:
        return CanaryState.fresh(canaries)
    try:
        state = CanaryState.from_dict(runs[run_id])
    except ConfigError as error:
        raise LedgerError(f"{path}: run {run_id}: {error}; delete the run's entry to restart its audit") from None
    if state.canaries != canaries:
        raise ConfigError(
            f"run {run_id} started its audit with {state.canaries} canaries, now asks {canaries}; "
            "keep privacy.audit_canaries for the whole run"
        )
    return state


def save_canaries(path: Path, *, run_id: str, state: CanaryState) -> None:
    """Store the run's canaries (atomically); only the last few runs are kept."""
    write_run_entry(path, run_id=run_id, entry=state.to_dict())


def write_run_entry(path: Path, *, run_id: str, entry: Any) -> None:
    """Store one run's entry of a node's per-run audit file (atomically); only the last few runs are kept."""
    runs = read_run_entries(path)
    runs.pop(run_id, None)
    runs[run_id] = entry
    kept = dict(list(runs.items())[-_KEPT_RUNS:])
    atomic_write_json(path, {"runs": kept, "order": list(kept)})


def read_run_entries(path: Path, *, what: str = "audit state") -> dict[str, Any]:
    """A node's per-run audit file as run id -> entry, oldest first (empty when there is none yet)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        order = [str(run) for run in document["order"]]
        return {run: document["runs"][run] for run in order}
    except (OSError, ValueError, KeyError, TypeError):
        raise LedgerError(f"{what} {path} is damaged; delete it to restart the node's audits") from None
