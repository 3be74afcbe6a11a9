"""Budget enforcement: one DP call as a transaction on the node's ledger.

:func:`spend_budget` holds the ledger's lock for the whole call. On entry it loads the
ledger strictly, checks the node's delta, fixes (or reuses) the run's noise plan and
refuses a call that would take the node past its cap; the call then runs with the
mechanism it was granted and records its spend through :meth:`BudgetGrant.record`
before its result may leave. Every DP call of a node goes through it: a DP-SGD training
call (whose noise is calibrated from the run's epsilon) and a DP release at the node's
own noise (:mod:`federation.privacy.release`, ``SpendRequest.noise_multiplier``). A call that raises records nothing, a call that ends
without recording is refused, and a grant records at most once: a crash between
training and recording loses the weights, never the accounting, and nothing is counted
twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError, LedgerError, PrivacyBudgetExceeded
from federation.privacy.accounting import epsilon_of, validate_delta
from federation.privacy.ledger import LedgerEntry, PrivacyLedger, ledger_lock, utc_now
from federation.privacy.plan import RunPlan, plan_run

__all__ = ["CAP_SLACK", "BudgetGrant", "SpendRequest", "spend_budget"]

logger = logging.getLogger(__name__)

CAP_SLACK = 1e-9
"""Epsilon a spend may exceed the cap by: the accountants' rounding, never a real margin."""


@dataclass(frozen=True, slots=True)
class SpendRequest:
    """Who asks to spend, on which ledger and within what: one DP call of a run's round.

    Attributes
    ----------
    ledger_path
        The node's ledger; it must exist (see ``PrivacyLedger.create``).
    run_id
        The federation run; its noise plan is made at its first call and reused after.
    round
        Round number (1-based) of this call.
    planned_rounds
        Rounds the run plans; with the steps per call it sizes the run's noise plan.
    run_epsilon
        Epsilon the run may add to what the node has already spent.
    cap
        The node's own cap (node config, never the training config). The effective cap
        is the smaller of this and the ledger's cap.
    delta
        The node's delta; must equal the ledger's.
    lock_timeout_s
        How long to wait for another process holding the ledger.
    noise_multiplier
        A mechanism of fixed noise (a release at the node's own noise): the run's plan
        takes it as it is instead of calibrating one from ``run_epsilon`` (then unused).
        None (a training call): calibrated at the run's first call.
    what
        The call in the refusal's message (default ``this call (N steps)``).
    """

    ledger_path: Path
    run_id: str
    round: int
    planned_rounds: int
    run_epsilon: float
    cap: float
    delta: float
    lock_timeout_s: float = 3600.0
    noise_multiplier: float | None = None
    what: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str) or not self.run_id.strip():
            raise ConfigError(f"run id must be a non-empty string, got {self.run_id!r}")
        if not is_integer(self.round) or self.round < 1:
            raise ConfigError(f"round must be a positive integer, got {self.round!r}")
        if not is_integer(self.planned_rounds) or self.planned_rounds < 1:
            raise ConfigError(f"planned_rounds must be a positive integer, got {self.planned_rounds!r}")
        if not is_finite_number(self.cap) or self.cap <= 0:
            raise ConfigError(f"node privacy cap (epsilon) must be a positive number, got {self.cap!r}")
        if self.noise_multiplier is not None and (
            not is_finite_number(self.noise_multiplier) or self.noise_multiplier <= 0
        ):
            raise ConfigError(f"noise multiplier must be a positive number, got {self.noise_multiplier!r}")
        object.__setattr__(self, "ledger_path", Path(self.ledger_path))
        object.__setattr__(self, "delta", validate_delta(self.delta, name="privacy delta"))


class BudgetGrant:
    """The mechanism one call may run with, checked against the cap; records the call's spend once.

    Attributes
    ----------
    noise_multiplier
        The run's planned noise multiplier.
    sample_rate, steps
        The Poisson sample rate and the steps the cap was checked for.
    delta, accountant
        The ledger's (the node's own, never the run's).
    cap
        The effective cap: the smaller of the node's and the ledger's.
    entry
        The recorded spend, once :meth:`record` has written it (None before).
    """

    __slots__ = ("_ledger", "_new_plan", "_request", "accountant", "cap", "delta", "entry", "noise_multiplier",
                 "sample_rate", "steps")  # fmt: skip

    def __init__(
        self,
        *,
        ledger: PrivacyLedger,
        request: SpendRequest,
        plan: RunPlan,
        new_plan: RunPlan | None,
        sample_rate: float,
        steps: int,
        cap: float,
    ) -> None:
        self._ledger = ledger
        self._request = request
        self._new_plan = new_plan
        self.noise_multiplier = plan.noise_multiplier
        self.sample_rate = sample_rate
        self.steps = steps
        self.delta = request.delta
        self.accountant = ledger.accountant
        self.cap = cap
        self.entry: LedgerEntry | None = None

    def record(self, steps: int) -> LedgerEntry:
        """Write the call's spend (and the run's plan when new) atomically, before its result leaves.

        Raises
        ------
        LedgerError
            If the spend is already recorded, if ``steps`` exceeds the steps the cap was
            checked for, or if the ledger cannot be written (then nothing changed): the
            call's result must then be discarded.
        """
        path = self._ledger.path
        if self.entry is not None:
            raise LedgerError(f"privacy ledger {path}: this call's spend is already recorded; it is never counted twice")
        if steps > self.steps:
            raise LedgerError(
                f"privacy ledger {path}: the call took {steps} steps, more than the {self.steps} its budget was "
                "checked for; its result is discarded"
            )
        self.entry = self._ledger.record(
            run_id=self._request.run_id,
            round=self._request.round,
            steps=steps,
            noise_multiplier=self.noise_multiplier,
            sample_rate=self.sample_rate,
            plan=self._new_plan,
        )
        return self.entry


@contextmanager
def spend_budget(request: SpendRequest, *, sample_rate: float, steps: int) -> Iterator[BudgetGrant]:
    """Grant one DP call of ``steps`` steps at ``sample_rate`` under the node's ledger, or refuse it.

    The block runs the call with the grant's mechanism and must call
    :meth:`BudgetGrant.record` with the steps it took before it ends.

    Raises
    ------
    LedgerError
        Missing, corrupt or inconsistent ledger, or another delta: nothing may be trained.
        Also when the block ends without recording its spend.
    PrivacyBudgetExceeded
        If the call would take the node past its cap; nothing is changed.
    ConfigError
        If a new run's plan is asked for a round past ``planned_rounds``.

    Notes
    -----
    Holds an exclusive lock on ``<ledger>.lock`` from loading the ledger to recording
    the spend, so concurrent processes of one node cannot spend the same budget twice.
    The noise multiplier is fixed once per run from ``min(cap, spent + run_epsilon)`` and
    the steps of the rounds still to come (``planned_rounds - round + 1`` calls); a run
    resumed after a restart reuses it. Every call is checked against the cap with the
    sample rate and steps it really takes.
    """
    with ledger_lock(request.ledger_path, timeout_s=request.lock_timeout_s):
        grant = _grant(PrivacyLedger.open(request.ledger_path), request, sample_rate=sample_rate, steps=steps)
        yield grant
        if grant.entry is None:
            raise LedgerError(
                f"privacy ledger {request.ledger_path}: a DP call ended without recording its spend; "
                "its result is discarded"
            )
    logger.info(
        "%s round %d: %d DP steps, node epsilon %.4f of cap %.4f (delta %g)",
        request.run_id,
        request.round,
        grant.entry.steps,
        grant.entry.epsilon_after,
        grant.cap,
        grant.delta,
    )


def _grant(ledger: PrivacyLedger, request: SpendRequest, *, sample_rate: float, steps: int) -> BudgetGrant:
    """Check the call against the opened ledger (under its lock) and plan the run's noise if new."""
    delta, cap = request.delta, request.cap
    if ledger.delta != delta:
        raise LedgerError(
            f"privacy ledger {ledger.path} was kept at delta {ledger.delta:g}, this node is configured "
            f"with delta {delta:g}; a ledger keeps one delta for life: set the node's delta back"
        )
    effective_cap = min(float(cap), ledger.cap)
    if cap > ledger.cap:
        logger.warning(
            "node cap %g is above the ledger's cap %g; using %g (raising a ledger's cap is an operator act)",
            cap,
            ledger.cap,
            ledger.cap,
        )
    history = ledger.history
    accountant = ledger.accountant  # the node's own, never the run's
    spent = epsilon_of(history, delta=delta, accountant=accountant)
    plan = ledger.runs.get(request.run_id)
    new_plan = None
    if plan is None:
        if request.round > request.planned_rounds:
            raise ConfigError(
                f"round {request.round} is past the run's planned_rounds {request.planned_rounds}; "
                "set planned_rounds to the run's number of rounds"
            )
        planned_steps = steps * (request.planned_rounds - request.round + 1)
        if request.noise_multiplier is None:
            new_plan = plan = plan_run(
                history=history,
                delta=delta,
                cap=effective_cap,
                run_epsilon=request.run_epsilon,
                sample_rate=sample_rate,
                planned_steps=planned_steps,
                created=utc_now(),
                accountant=accountant,
            )
        else:
            fixed = (float(request.noise_multiplier), sample_rate, planned_steps)
            new_plan = plan = RunPlan(
                noise_multiplier=float(request.noise_multiplier),
                sample_rate=sample_rate,
                planned_steps=planned_steps,
                target_epsilon=epsilon_of([*history, fixed], delta=delta, accountant=accountant),
                created=utc_now(),
            )
    elif request.noise_multiplier is not None and plan.noise_multiplier != request.noise_multiplier:
        raise LedgerError(
            f"privacy ledger {ledger.path}: run {request.run_id} was planned at noise {plan.noise_multiplier:g}, "
            f"not {request.noise_multiplier:g}"
        )
    elif plan.sample_rate != sample_rate:
        logger.warning(
            "sample rate %.4g differs from the run plan's %.4g (data size changed); accounting uses the real one",
            sample_rate,
            plan.sample_rate,
        )
    needed = epsilon_of([*history, (plan.noise_multiplier, sample_rate, steps)], delta=delta, accountant=accountant)
    if needed > effective_cap + CAP_SLACK:
        raise PrivacyBudgetExceeded(
            f"privacy budget exceeded: {request.what or f'this call ({steps} steps)'} would take the node from "
            f"epsilon {spent:.4f} to {needed:.4f}, past its cap {effective_cap:.4f} (delta {delta:g}); "
            "nothing was trained, sent or recorded: stop training this node or have its operator raise the cap"
        )
    if needed > plan.target_epsilon + CAP_SLACK:
        logger.warning(
            "run %s goes past its planned epsilon %.4f (now %.4f): more calls than planned",
            request.run_id,
            plan.target_epsilon,
            needed,
        )
    return BudgetGrant(
        ledger=ledger,
        request=request,
        plan=plan,
        new_plan=new_plan,
        sample_rate=sample_rate,
        steps=steps,
        cap=effective_cap,
    )
