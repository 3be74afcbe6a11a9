"""Training calls bound to a node's privacy files: DP-SGD charged to its ledger, and the audit's control.

:func:`train_with_ledger` is :func:`~federation.training.loop.train` inside the ledger
transaction of :mod:`federation.privacy.budget` (budget checked before, spend recorded
before the weights are returned); both calls here score the run's white-box canaries
when an audit asks.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from torch import nn

from federation.checks import is_finite_number
from federation.errors import ConfigError
from federation.models.features import FeatureSet
from federation.privacy.audit import CanaryState, audit_path_for, load_canaries, save_canaries
from federation.privacy.budget import SpendRequest, spend_budget
from federation.privacy.ledger import ledger_lock
from federation.training.loop import train
from federation.training.settings import DPParams, TrainResult, TrainSettings, effective_batch, steps_per_call

__all__ = ["train_audit_control", "train_with_ledger"]

logger = logging.getLogger(__name__)


def train_with_ledger(
    *,
    ledger_path: Path,
    run_id: str,
    round: int,
    planned_rounds: int,
    run_epsilon: float,
    cap: float,
    delta: float,
    head: nn.Module,
    data: FeatureSet,
    settings: TrainSettings,
    dp_clip: float,
    global_arrays: list[np.ndarray] | None = None,
    lock_timeout_s: float = 3600.0,
    audit_canaries: int = 0,
) -> TrainResult:
    """DP-train under the node's privacy ledger: check the budget, train, record, return.

    Parameters
    ----------
    ledger_path, run_id, round, planned_rounds, run_epsilon, cap, delta
        The spend asked of the node's ledger, as for
        :class:`~federation.privacy.budget.SpendRequest` (the cap is the node's own, never
        the training config's; the effective cap is the smaller of it and the ledger's).
    head, data, settings, global_arrays
        As for :func:`train`; the step size follows the noise multiplier the ledger
        grants (:meth:`TrainSettings.for_noise`).
    dp_clip
        Per-conversation clipping norm.
    lock_timeout_s
        How long to wait for another process holding the ledger.
    audit_canaries
        0 (no audit), or the number of the run's white-box canaries: drawn at the run's
        first call, kept in ``<ledger>.audit.json`` (their coin flips are the node's
        secret) and scored at every call, the mechanism of each call beside them.

    Returns
    -------
    TrainResult
        With ``epsilon`` the node's total spend after this call (all runs), at ``delta``;
        with an audit, ``canaries`` the run's canaries after the call.

    Raises
    ------
    LedgerError
        Missing, corrupt or inconsistent ledger, or another delta: nothing is trained.
    PrivacyBudgetExceeded
        If this call would take the node past its cap; nothing is changed (ledger bytes
        and ``head`` as before).

    Notes
    -----
    The whole call is one transaction of :func:`federation.privacy.budget.spend_budget`:
    an exclusive lock on ``<ledger>.lock`` from loading the ledger to recording the spend
    (concurrent processes of one node cannot spend the same budget twice), the run's noise
    multiplier fixed once from ``min(cap, spent + run_epsilon)`` and the rounds still to
    come, and every call checked against the cap with the sample rate and steps it really
    takes. The spend is written (atomically) before the weights are returned; if writing
    fails, the weights are discarded.
    """
    request = SpendRequest(
        ledger_path=ledger_path,
        run_id=run_id,
        round=round,
        planned_rounds=planned_rounds,
        run_epsilon=run_epsilon,
        cap=cap,
        delta=delta,
        lock_timeout_s=lock_timeout_s,
    )
    _check_clip(dp_clip)
    n = len(data)
    steps = steps_per_call(settings, num_examples=n)
    sample_rate = effective_batch(settings, n) / n

    with spend_budget(request, sample_rate=sample_rate, steps=steps) as grant:
        dp = DPParams(
            noise_multiplier=grant.noise_multiplier,
            max_grad_norm=float(dp_clip),
            delta=grant.delta,
            accountant=grant.accountant,
        )
        audit_path = audit_path_for(request.ledger_path)
        state = load_canaries(audit_path, run_id=run_id, canaries=audit_canaries) if audit_canaries else None
        members = None if state is None else state.members
        stepped = settings.for_noise(  # the run's noise bounds the step size
            grant.noise_multiplier, max_grad_norm=float(dp_clip), expected_batch=sample_rate * n
        )
        result = train(head=head, data=data, settings=stepped, dp=dp, global_arrays=global_arrays, canaries=members)
        entry = grant.record(result.steps)
        if state is not None:  # after the spend is recorded: a call the audit saw is always accounted
            _score_call(state, result)
            save_canaries(audit_path, run_id=run_id, state=state)
    return replace(result, epsilon=entry.epsilon_after, delta=grant.delta, accountant=grant.accountant, canaries=state)


def _check_clip(dp_clip: float) -> None:
    if not is_finite_number(dp_clip) or dp_clip <= 0:
        raise ConfigError(f"privacy max_grad_norm must be a positive number, got {dp_clip!r}")


def _score_call(state: CanaryState, result: TrainResult) -> None:
    """Add one call's canary scores and its mechanism to the run's canaries."""
    state.scores = state.scores + np.asarray(result.canary_scores, dtype=np.float64)
    state.history.append((float(result.noise_multiplier or 0.0), float(result.sample_rate or 0.0), int(result.steps)))


def train_audit_control(
    *,
    audit_path: Path,
    run_id: str,
    audit_canaries: int,
    head: nn.Module,
    data: FeatureSet,
    settings: TrainSettings,
    dp_clip: float,
    delta: float,
    global_arrays: list[np.ndarray] | None = None,
) -> TrainResult:
    """The audit's control: DP-SGD's Poisson sampling and clipping with no noise, and the run's canaries.

    No privacy at all (``epsilon`` is infinite); it exists to show that the audit finds a
    large lower bound when the mechanism has no noise. Nothing is charged to a ledger.
    """
    _check_clip(dp_clip)
    audit_path = Path(audit_path)
    with ledger_lock(audit_path):
        state = load_canaries(audit_path, run_id=run_id, canaries=audit_canaries)
        dp = DPParams(noise_multiplier=0.0, max_grad_norm=float(dp_clip), delta=delta, audit_control=True)
        result = train(
            head=head, data=data, settings=settings, dp=dp, global_arrays=global_arrays, canaries=state.members
        )
        _score_call(state, result)
        save_canaries(audit_path, run_id=run_id, state=state)
    logger.warning("audit control: %d DP-SGD steps without noise (no privacy)", result.steps)
    return replace(result, canaries=state)
