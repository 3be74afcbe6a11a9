"""One party's round of local training: the same call for a node, a baseline and a benchmark.

Which training a round runs follows from the run's privacy settings alone: DP-SGD charged
to the party's ledger (``record``), the audit's no-noise control (``none`` with
``privacy.audit=white`` or ``both``), or plain training. So do the round's seed (the party's name and
the round mixed with the node secret, when there is one) and the FedProx term. Written once
here, a node, the baselines and the overhead benchmark cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from torch import nn

from federation.models.features import FeatureSet
from federation.privacy.audit import audit_path_for
from federation.privacy.node_policy import NodePolicy
from federation.runconfig import WHITE_KINDS, RunSettings
from federation.training import TrainResult, train, train_audit_control, train_with_ledger

__all__ = ["PartyPrivacy", "local_round"]


@dataclass(frozen=True)
class PartyPrivacy:
    """Who trains a round and under whose privacy settings: its name, its ledger, cap and delta."""

    name: str
    ledger_path: Path
    cap: float
    delta: float


def local_round(
    *,
    run: RunSettings,
    party: PartyPrivacy,
    head: nn.Module,
    data: FeatureSet,
    round: int,
    batch_size: int,
    global_arrays: list[np.ndarray] | None = None,
    policy: NodePolicy | None = None,
    audit: bool = True,
) -> TrainResult:
    """Train ``head`` on ``data`` for round ``round`` of ``run`` as ``party``.

    Parameters
    ----------
    batch_size
        The party's expected batch (``RunSettings.party_batch_size``).
    global_arrays
        The weights the round starts from, when they came from a server (FedProx's anchor).
    policy
        The node's policy: its secret goes into the round's seed. None for the researcher's
        own parties (baselines, benchmarks), which have no secret.
    audit
        Mix the run's gradient canaries in when ``privacy.audit`` asks for a white-box audit
        (a baseline says no: it reports no audit). Input canaries are the caller's: they are
        conversations, already in ``data``.
    """
    seed = (policy or NodePolicy()).seed(run.seed, run.run_id, party.name, round)
    fedprox = run.strategy.name == "fedprox" and global_arrays is not None
    settings = replace(
        run.train, proximal_mu=run.strategy.proximal_mu if fedprox else 0.0, seed=seed, batch_size=batch_size
    )
    audited = audit and run.privacy.audit in WHITE_KINDS
    if run.privacy.mode == "record":
        return train_with_ledger(
            ledger_path=party.ledger_path,
            run_id=run.run_id,
            round=round,
            planned_rounds=run.rounds,
            run_epsilon=run.privacy.epsilon,
            cap=party.cap,
            delta=party.delta,
            head=head,
            data=data,
            settings=settings,
            dp_clip=run.privacy.max_grad_norm,
            global_arrays=global_arrays,
            audit_canaries=run.privacy.audit_canaries if audited else 0,
        )
    if audited:  # privacy=none with an audit: the audit's control, DP-SGD without noise
        return train_audit_control(
            audit_path=audit_path_for(party.ledger_path),
            run_id=run.run_id,
            audit_canaries=run.privacy.audit_canaries,
            head=head,
            data=data,
            settings=settings,
            dp_clip=run.privacy.max_grad_norm,
            delta=party.delta,
            global_arrays=global_arrays,
        )
    return train(head=head, data=data, settings=settings, dp=None, global_arrays=global_arrays)
