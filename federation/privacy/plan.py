"""Noise calibration: from a node's remaining budget to one noise multiplier per run.

A node fixes its noise multiplier once per run, at its first training call, from the
budget it may spend on the run and the number of steps it plans to take; every later
call of the run (after a restart too) reuses it. Calibrating per call instead would
let a node spend its whole budget in the first round.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError, PrivacyBudgetExceeded
from federation.privacy.accounting import ACCOUNTANT, epsilon_of, validate_accountant, validate_delta

__all__ = ["MAX_NOISE_MULTIPLIER", "RunPlan", "calibrate_noise", "plan_run"]

logger = logging.getLogger(__name__)

MAX_NOISE_MULTIPLIER = 1024.0
"""Largest noise multiplier tried: beyond it the model would learn nothing anyway."""

_MIN_NOISE_MULTIPLIER = 1e-3
_LOG_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The noise a node committed to for one run, stored in its ledger under the run id.

    Attributes
    ----------
    noise_multiplier
        Gaussian noise standard deviation over the clipping norm, for every step of the run.
    sample_rate
        Poisson sample rate the plan was computed for (``batch_size / N`` at planning time).
    planned_steps
        Steps the plan covers: remaining rounds times steps per round.
    target_epsilon
        Total epsilon of the node the plan reaches after ``planned_steps`` steps.
    created
        ISO-8601 UTC time the plan was made.
    """

    noise_multiplier: float
    sample_rate: float
    planned_steps: int
    target_epsilon: float
    created: str


def _check_positive(value: float, name: str) -> float:
    if not is_finite_number(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def calibrate_noise(
    *,
    history: Sequence[Sequence[object]],
    delta: float,
    sample_rate: float,
    steps: int,
    target_epsilon: float,
    accountant: str = ACCOUNTANT,
) -> float:
    """Smallest noise multiplier whose ``steps`` more steps keep the total at ``target_epsilon``.

    Parameters
    ----------
    history
        ``(noise_multiplier, sample_rate, steps)`` already spent by the node.
    delta
        Delta of the node's guarantee.
    sample_rate
        Poisson sample rate of the new steps.
    steps
        Number of new steps (at least 1).
    target_epsilon
        Total epsilon (history included) not to exceed.
    accountant
        The accountant that composes ``history`` and the new steps (``rdp`` or ``prv``).

    Returns
    -------
    float
        ``z`` with ``epsilon_of(history + [(z, sample_rate, steps)]) <= target_epsilon``,
        within a relative ``1e-6`` of the target or of the smallest such noise (found
        by regula falsi on ``log epsilon`` against ``log z``; epsilon falls monotonically
        as the noise grows).

    Raises
    ------
    PrivacyBudgetExceeded
        If the history alone already reaches the target, or if even a noise multiplier of
        :data:`MAX_NOISE_MULTIPLIER` cannot meet it (targets below about 0.1 at
        ``delta=1e-5`` cannot be certified with the RDP orders Opacus uses).
    ConfigError
        If an argument is out of range.

    Notes
    -----
    The spend is that of DP-SGD with Poisson sampling at ``sample_rate`` where one
    conversation is the unit of privacy; calibration itself looks at no data.
    """
    delta = validate_delta(delta)
    accountant = validate_accountant(accountant, name="accountant")
    sample_rate = _check_positive(sample_rate, "sample_rate")
    if sample_rate > 1.0:
        raise ConfigError(f"sample_rate must be at most 1, got {sample_rate!r}")
    target_epsilon = _check_positive(target_epsilon, "target_epsilon")
    if not is_integer(steps, numpy=False) or steps < 1:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")
    history = list(history)
    spent = epsilon_of(history, delta=delta, accountant=accountant)
    if spent >= target_epsilon:
        raise PrivacyBudgetExceeded(
            f"privacy budget exhausted: epsilon {spent:.4f} already spent (delta {delta:g}) "
            f"reaches the target {target_epsilon:.4f}; no noise can make more steps fit"
        )

    log_target = math.log(target_epsilon)

    def excess(noise: float) -> float:
        """log(epsilon / target): positive when ``noise`` is too small."""
        epsilon = epsilon_of([*history, (noise, sample_rate, steps)], delta=delta, accountant=accountant)
        return math.log(epsilon) - log_target if epsilon > 0 else -math.inf

    # Bracket the answer by factors of 4: lo too small (excess > 0), hi enough (excess <= 0).
    hi, f_hi = 1.0, excess(1.0)
    if f_hi > 0:
        lo, f_lo = hi, f_hi
        while f_hi > 0:
            if hi >= MAX_NOISE_MULTIPLIER:
                raise PrivacyBudgetExceeded(
                    f"privacy budget too small: {steps} steps at sample rate {sample_rate:.4g} cannot be kept "
                    f"within epsilon {target_epsilon:.4f} (spent {spent:.4f}, delta {delta:g}) even with noise "
                    f"multiplier {MAX_NOISE_MULTIPLIER:g}; raise the run's epsilon or take fewer steps"
                )
            lo, f_lo = hi, f_hi
            hi = min(hi * 4.0, MAX_NOISE_MULTIPLIER)
            f_hi = excess(hi)
    else:
        lo, f_lo = hi / 4.0, excess(hi / 4.0)
        while f_lo <= 0:
            if lo <= _MIN_NOISE_MULTIPLIER:
                return lo
            hi, f_hi = lo, f_lo
            lo = lo / 4.0
            f_lo = excess(lo)

    # Illinois (regula falsi) on log(epsilon) against log(noise): few evaluations, each
    # of which costs a full RDP computation; the bracket keeps hi feasible throughout.
    a, b = math.log(lo), math.log(hi)
    w_a, w_b = f_lo, f_hi  # weights of the false-position step (halved by Illinois)
    kept = 0
    while b - a > _LOG_TOLERANCE and f_hi < -_LOG_TOLERANCE:
        if math.isfinite(w_a):
            c = b - w_b * (b - a) / (w_b - w_a)
            c = min(max(c, a + 0.01 * (b - a)), b - 0.01 * (b - a))
        else:
            c = 0.5 * (a + b)
        noise = math.exp(c)
        f_c = excess(noise)
        if f_c <= 0:
            b, hi, f_hi, w_b = c, noise, f_c, f_c
            w_a = w_a / 2.0 if kept == -1 else w_a
            kept = -1
        else:
            a, w_a = c, f_c
            w_b = w_b / 2.0 if kept == 1 else w_b
            kept = 1
    logger.debug("calibrated noise multiplier %.6g for %d steps at q=%.4g", hi, steps, sample_rate)
    return hi


def plan_run(
    *,
    history: Sequence[Sequence[object]],
    delta: float,
    cap: float,
    run_epsilon: float,
    sample_rate: float,
    planned_steps: int,
    created: str,
    accountant: str = ACCOUNTANT,
) -> RunPlan:
    """Fix a run's noise multiplier from the node's budget.

    The run may take the node to ``min(cap, spent + run_epsilon)``, where ``spent`` is
    what ``history`` already cost: a run never borrows from the cap beyond its own
    allowance, and never goes past the cap.

    Raises
    ------
    PrivacyBudgetExceeded
        If the node has nothing left under its cap, or the allowance is too small.

    Notes
    -----
    Delta and the accountant are the node's (fixed for the life of its ledger, the
    accountant changed only by its operator). The plan only sets the noise;
    each call is still checked against the cap with the steps and sample rate it really
    takes, so a plan made for fewer steps or another data size cannot overspend.
    """
    cap = _check_positive(cap, "cap (epsilon)")
    run_epsilon = _check_positive(run_epsilon, "run_epsilon")
    spent = epsilon_of(history, delta=delta, accountant=accountant)
    target = min(cap, spent + run_epsilon)
    noise = calibrate_noise(
        history=history,
        delta=delta,
        sample_rate=sample_rate,
        steps=planned_steps,
        target_epsilon=target,
        accountant=accountant,
    )
    logger.info(
        "run plan: noise multiplier %.4f for %d steps at sample rate %.4g, epsilon %.4f -> %.4f (cap %.4f)",
        noise,
        planned_steps,
        sample_rate,
        spent,
        target,
        cap,
    )
    return RunPlan(
        noise_multiplier=noise,
        sample_rate=float(sample_rate),
        planned_steps=int(planned_steps),
        target_epsilon=float(target),
        created=created,
    )
