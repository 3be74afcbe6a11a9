"""The node's side of the black-box audit: canaries into its training data, the final model tested on them.

The canaries and the test are :mod:`federation.privacy.input_canaries`; this module ties
them to a node: seeds from its secret, features from its encoder and cache, the reference
scores beside its ledger and the accounted epsilon from it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from torch import nn

from clients.local_data import encoder_for
from clients.node_settings import NodeSettings
from federation.models.features import FeatureSet, build_features
from federation.privacy.audit import AuditResult
from federation.privacy.input_canaries import (
    InputCanaries,
    input_audit,
    input_canaries,
    load_reference,
    reference_path_for,
    save_reference,
)
from federation.privacy.ledger import PrivacyLedger
from federation.privacy.node_policy import NodePolicy
from federation.runconfig import INPUT_KINDS, RunSettings
from federation.training import evaluate

__all__ = ["black_box_audit", "keep_reference", "log_audit", "node_canaries", "run_epsilon", "with_canaries"]

log = logging.getLogger(__name__)


def node_canaries(run: RunSettings, node: NodeSettings, policy: NodePolicy) -> InputCanaries | None:
    """The node's canary conversations for ``run``, or None when the run asks no black-box audit.

    Texts from the node's name and secret (the same every run: cached once), coins from
    its secret and the run id (new for each run, stable within it).
    """
    if run.privacy.audit not in INPUT_KINDS:
        return None
    coins = (policy.seed("input-canary-coins", node.name, run.run_id) << 32) | policy.seed(
        "input-canary-coins-low", node.name, run.run_id
    )
    return input_canaries(
        count=run.privacy.audit_input_canaries,
        texts_seed=policy.seed("input-canaries", node.name),
        coin_seed=coins,
        max_messages=run.model.max_messages,
    )


def _features(canaries: InputCanaries, run: RunSettings, policy: NodePolicy, *, included: bool) -> FeatureSet:
    conversations = canaries.included if included else list(canaries.conversations)
    encoder = encoder_for(run.model, str(policy.cache_folder))
    return build_features(conversations, encoder, max_messages=run.model.max_messages)


def with_canaries(train: FeatureSet, run: RunSettings, node: NodeSettings, policy: NodePolicy) -> tuple[FeatureSet, int]:
    """The node's training split with the run's "in" canaries appended, and how many there are (0 without an audit)."""
    canaries = node_canaries(run, node, policy)
    if canaries is None or not canaries.members.any():
        return train, 0
    return train.joined(_features(canaries, run, policy, included=True)), int(canaries.members.sum())


def _scores(head: nn.Module, canaries: InputCanaries, run: RunSettings, policy: NodePolicy) -> np.ndarray:
    scored = evaluate(head=head, data=_features(canaries, run, policy, included=False), window=run.model.score_window)
    return np.asarray(scored.scores, dtype=np.float64)


def keep_reference(head: nn.Module, run: RunSettings, node: NodeSettings, policy: NodePolicy) -> None:
    """Score the canaries with the model received for the node's first training of the run (the reference).

    Called before training; later calls of the run keep the first reference. A reference
    is only ever taken before the node's first DP-SGD step of the run (its ledger has no
    entry for it), so it cannot depend on the coins. Without a black-box audit it does
    nothing.
    """
    canaries = node_canaries(run, node, policy)
    if canaries is None:
        return
    path = reference_path_for(node.ledger_path)
    if load_reference(path, run_id=run.run_id, canaries=canaries.members.size) is not None:
        return
    if _run_history(node.ledger_path, run):
        # The node has trained in this run already (its reference was lost: an old run's
        # entry dropped, a deleted file): a model received now has seen the "in" canaries and
        # depends on the coins, so it cannot be the reference. The run goes unaudited.
        log.warning("%s: no black-box reference for run %s after training began; the run is not audited", node.name, run.run_id)
        return
    save_reference(path, run_id=run.run_id, scores=_scores(head, canaries, run, policy))


def run_epsilon(ledger_path: Path, run: RunSettings, delta: float) -> tuple[float, int]:
    """This run's epsilon at the node (its ledger's entries for the run, by the ledger's accountant) and its steps.

    Infinite without DP (the audit's control); 0 before the node trained in the run.
    """
    if run.privacy.mode != "record":
        return math.inf, 0
    history = _run_history(ledger_path, run)
    if not history:
        return 0.0, 0
    from federation.privacy.accounting import epsilon_of

    accountant = PrivacyLedger.open(ledger_path).accountant
    return epsilon_of(history, delta=delta, accountant=accountant), sum(t for _, _, t in history)


def _run_history(ledger_path: Path, run: RunSettings) -> list[tuple[float, float, int]]:
    """The DP-SGD steps the node's ledger records for ``run`` (empty before it trained, or without a ledger)."""
    if run.privacy.mode != "record" or not Path(ledger_path).exists():
        return []
    return [entry.step for entry in PrivacyLedger.open(ledger_path).entries if entry.run == run.run_id]


def black_box_audit(
    head: nn.Module, run: RunSettings, node: NodeSettings, policy: NodePolicy
) -> tuple[AuditResult, float] | None:
    """The black-box audit of the model ``head`` holds (the global model of the evaluate call), or None.

    None without a black-box audit, and before the node's first training of the run.
    """
    canaries = node_canaries(run, node, policy)
    if canaries is None:
        return None
    reference = load_reference(reference_path_for(node.ledger_path), run_id=run.run_id, canaries=canaries.members.size)
    if reference is None:
        return None  # the node has not trained in this run: nothing to audit yet
    epsilon, steps = run_epsilon(node.ledger_path, run, node.delta)
    result, auc = input_audit(
        canaries, _scores(head, canaries, run, policy), reference, epsilon=epsilon, delta=node.delta, steps=steps
    )
    log_audit(node.name, result, mia_auc=auc)
    return result, auc


def log_audit(name: str, audit: AuditResult, *, mia_auc: float | None = None) -> None:
    """The node's log line of an audit (either kind); an error when the bound refutes the accounted epsilon."""
    canaries = "canaries" if audit.kind == "white" else "canary conversations"
    auc = f", MIA AUC {mia_auc:.3f}" if mia_auc is not None else ""
    message = (
        f"{name}: privacy audit ({audit.kind}-box, {audit.canaries_in + audit.canaries_out} {canaries}): "
        f"{audit.correct}/{audit.guesses} guesses right{auc}, epsilon lower bound {audit.lower_bound:.3f} at "
        f"{audit.confidence:.0%} confidence, accounted epsilon {audit.epsilon:.3f} over {audit.steps} steps"
    )
    if audit.failed:
        log.error("PRIVACY AUDIT FAILED: %s (the mechanism, the pipeline or its accounting is wrong)", message)
    else:
        log.info("%s", message)
