"""The node's Flower ClientApp: train and evaluate on local data, reply with aggregates only.

The same app runs as a virtual node in simulation and as a real SuperNode. Every request
is first checked against the node's own policy (:mod:`federation.privacy.node_policy`); outside it
the node declines with a one-line reason. Replies carry only what
:data:`clients.allow_list.REPLY_ALLOW_LIST` names: model weights after DP training, the
epsilon spent, coarsened counts and bounded score histograms; never a text, an author id,
a loss or a per-conversation score.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from flwr.app import ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from clients.attack import attack_mod
from clients.input_audit import black_box_audit, keep_reference, log_audit, with_canaries
from clients.local_data import NodeData, node_data
from federation.privacy.release import release_histograms
from federation.privacy.node_policy import (
    NodePolicy,
    charge_evaluation,
    check_evaluation,
    check_request,
    coarse_count,
    coarse_noise_multiplier,
    policy_from_node_config,
    quota_path_for,
    virtual_policy,
)
from clients.node_settings import NodeSettings, resolve_node
from federation.early import warning_at
from federation.errors import CesagramError, PolicyDeclined, PrivacyBudgetExceeded
from federation.histograms import EarlyCounts, ScoreHistogram
from federation.models.spec import build_head
from federation.models.weights import load_head_arrays
from federation.runconfig import RunSettings
from federation.privacy.audit import result_of
from federation.local_round import PartyPrivacy, local_round
from federation.training import evaluate
from federation.wire import (
    DECLINED_BUDGET,
    DECLINED_POLICY,
    FAILED,
    ConfigKeys,
    arrays_to_record,
    audit_to_metrics,
    early_counts_to_metrics,
    record_to_arrays,
)

log = logging.getLogger(__name__)

app = ClientApp()


def _central_clipping_mod(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
    """Flower's client-side fixed clipping, on train messages of central-DP runs only.

    A node whose policy does not accept central DP declines in the handler; clipping its
    error reply is a no-op (``fixedclipping_mod`` passes error replies through).
    """
    try:
        central = RunSettings.from_flat(context.run_config).privacy.mode == "central"
    except CesagramError:
        central = False  # the handler answers with the config error
    if central:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def node_policy(context: Context) -> NodePolicy:
    """This node's policy: its node config (a SuperNode) or the simulation's (a virtual node).

    Never the run config: the coordinator cannot widen what the node agrees to.
    """
    if "partition-id" in context.node_config and "data-path" not in context.node_config:
        return virtual_policy()
    return policy_from_node_config(context.node_config)


def _node_record(
    node: NodeSettings, data: NodeData | None, policy: NodePolicy, *, accountant: str | None = None
) -> ConfigRecord:
    record = ConfigRecord(
        {
            ConfigKeys.NODE_NAME: node.name,
            ConfigKeys.NODE_KIND: node.kind,
            ConfigKeys.CAP: node.cap,
            ConfigKeys.DELTA: node.delta,
        }
    )
    if accountant is not None:
        record[ConfigKeys.ACCOUNTANT] = accountant
    if data is not None:
        record[ConfigKeys.CONVERSATIONS] = coarse_count(data.conversations, policy)
        record[ConfigKeys.POSITIVES] = coarse_count(data.positives, policy)
    return record


def _node_name(context: Context) -> str:
    try:
        return resolve_node(context.node_config, RunSettings.from_flat(context.run_config)).name
    except CesagramError:
        return "node"


def _error_reply(msg: Message, context: Context, code: int, reason: str) -> Message:
    return Message(Error(code=code, reason=f"{_node_name(context)}: {reason}"), reply_to=msg)


def _admit(context: Context, *, evaluation: bool) -> tuple[RunSettings, NodeSettings, NodePolicy, int]:
    """Check the request against the node's policy before anything is loaded; the evaluation's number in the run."""
    run = RunSettings.from_flat(context.run_config)
    node = resolve_node(context.node_config, run)
    policy = node_policy(context)
    check_request(policy, run)
    call = 0
    if evaluation:
        check_evaluation(policy, run)
        day = datetime.now(timezone.utc).date().isoformat()
        call = charge_evaluation(quota_path_for(node.ledger_path), run_id=run.run_id, day=day, policy=policy)
    return run, node, policy, call


def _load(node: NodeSettings, run: RunSettings, policy: NodePolicy) -> NodeData:
    """The node's data, split and cached as its policy says (cache folder, split seed and share)."""
    return node_data(
        node.data_path,
        store_node=node.store_node,
        simulated=node.simulated,
        spec=run.model,
        cache_dir=str(policy.cache_folder),
        validation_fraction=policy.validation_fraction,
        seed=policy.split_seed,
    )


def _seconds(value: float) -> float:
    """Durations leave the node in tenths of a second (finer timings only help side channels)."""
    return round(float(value), 1)


def _guarded(handler):  # type: ignore[no-untyped-def]
    """Turn a node's failure into an error reply that names the node and the cause.

    Expected errors (bad data, exhausted budget) carry their one-line message; anything
    else sends only the exception's type, since its text could quote local data. The full
    traceback stays in the node's own log.
    """

    def wrapped(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except PrivacyBudgetExceeded as error:
            log.warning("declining the round: %s", error)
            return _error_reply(msg, context, DECLINED_BUDGET, f"declined: {error}")
        except PolicyDeclined as error:
            log.warning("declining the request: %s", error)
            return _error_reply(msg, context, DECLINED_POLICY, f"declined: {error}")
        except CesagramError as error:
            log.error("%s", error)
            return _error_reply(msg, context, FAILED, f"{type(error).__name__}: {error}")
        except Exception as error:  # noqa: BLE001 - a node must answer, not crash the run
            log.exception("node failure")
            return _error_reply(msg, context, FAILED, f"unexpected {type(error).__name__} (see the node's log)")

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


@app.train(mods=[attack_mod, _central_clipping_mod])  # attack_mod: no-op unless the node config says attack
@_guarded
def train_handler(msg: Message, context: Context) -> Message:
    """Train the received global model on this node's data, under the privacy mode its policy accepts."""
    run, node, policy, _ = _admit(context, evaluation=False)
    data = _load(node, run, policy)
    config = msg.content[ConfigKeys.CONFIG_RECORD]
    server_round = int(config[ConfigKeys.SERVER_ROUND])
    global_arrays = record_to_arrays(msg.content[ConfigKeys.ARRAYS_RECORD])
    head = build_head(run.model, dim_in=data.train.embeddings.shape[1], seed=run.seed)
    load_head_arrays(head, global_arrays)
    started = time.perf_counter()
    party = PartyPrivacy(name=node.name, ledger_path=node.ledger_path, cap=node.cap, delta=node.delta)
    keep_reference(head, run, node, policy)  # black-box audit: the canaries' scores before the node trains
    train_set, canaries_in = with_canaries(data.train, run, node, policy)  # canaries are records, not the node's
    result = local_round(
        run=run,
        party=party,
        head=head,
        data=train_set,
        round=server_round,
        batch_size=run.party_batch_size(len(train_set)),
        global_arrays=global_arrays,
        policy=policy,
    )
    epsilon = float(result.epsilon or 0.0) if run.privacy.mode == "record" else 0.0
    # No train loss: it is computed on private data without noise, on weights the server
    # chose (a crafted head makes it a membership test); it is not on the allow-list.
    metrics = MetricRecord(
        {
            ConfigKeys.NUM_EXAMPLES: coarse_count(int(result.num_examples) - canaries_in, policy),
            ConfigKeys.EPSILON: epsilon,
            ConfigKeys.STEPS: int(result.steps),
            ConfigKeys.NOISE_MULTIPLIER: coarse_noise_multiplier(result.noise_multiplier),
            ConfigKeys.TRAIN_SECONDS: _seconds(time.perf_counter() - started),
            ConfigKeys.ENCODE_SECONDS: _seconds(data.encode_seconds),
        }
    )
    if result.canaries is not None:
        audit = result_of(
            result.canaries, kind="white", delta=node.delta, accountant=result.accountant or "rdp"
        )
        log_audit(node.name, audit)
        metrics.update(audit_to_metrics(audit, prefix=ConfigKeys.AUDIT_PREFIX))
    return Message(
        RecordDict(
            {
                ConfigKeys.ARRAYS_RECORD: arrays_to_record(result.arrays),
                ConfigKeys.METRICS_RECORD: metrics,
                ConfigKeys.NODE_RECORD: _node_record(node, data, policy, accountant=result.accountant),
            }
        ),
        reply_to=msg,
    )


@app.evaluate()
@_guarded
def evaluate_handler(msg: Message, context: Context) -> Message:
    """Score the validation split; reply with bounded score histograms per class (and early-warning counts).

    The node's policy bounds the histogram resolution and the number of evaluate calls;
    the loss on the validation split is not sent.
    """
    run, node, policy, call = _admit(context, evaluation=True)
    data = _load(node, run, policy)
    config = msg.content[ConfigKeys.CONFIG_RECORD]
    head = build_head(run.model, dim_in=data.validation.embeddings.shape[1], seed=run.seed)
    load_head_arrays(head, record_to_arrays(msg.content[ConfigKeys.ARRAYS_RECORD]))
    started = time.perf_counter()
    result = evaluate(head=head, data=data.validation, window=run.model.score_window)
    histogram = ScoreHistogram.from_scores(result.scores, result.labels, bins=run.evaluation.histogram_bins)
    pos, neg = histogram.to_lists()
    # A simulated device that holds no validation conversation has nothing to release: noise
    # alone (clipped at 0) would only bias the server's threshold histogram.
    if policy.histogram_noise > 0 and (len(result.labels) or not node.simulated):
        (pos, neg), _ = release_histograms(
            node.ledger_path,
            run_id=run.run_id,
            call=call,
            counts=(pos, neg),
            sigma=policy.histogram_noise,
            cap=node.cap,
            delta=node.delta,
            planned_calls=run.rounds + 1,
        )
    metrics: dict[str, int | float | list[int] | list[float]] = {
        ConfigKeys.NUM_EXAMPLES: coarse_count(int(len(result.labels)), policy),
        ConfigKeys.HIST_POS: pos,
        ConfigKeys.HIST_NEG: neg,
    }
    if ConfigKeys.THRESHOLD in config:
        threshold = float(config[ConfigKeys.THRESHOLD])
        alerts = [
            warning_at(scores, threshold=threshold, k=run.evaluation.early_k, last=run.evaluation.early_last)
            for scores in result.per_message
        ]
        early = EarlyCounts.from_alerts(result.labels, alerts, max_latency=policy.max_latency_bins)
        early = early.coarsened(policy.count_granularity)
        metrics.update(early_counts_to_metrics(early))
    black = black_box_audit(head, run, node, policy)  # on canary conversations, never on the node's
    if black is not None:
        metrics.update(audit_to_metrics(black[0], prefix=ConfigKeys.BLACK_PREFIX, mia_auc=black[1]))
    metrics[ConfigKeys.EVAL_SECONDS] = _seconds(time.perf_counter() - started)
    return Message(
        RecordDict(
            {
                ConfigKeys.METRICS_RECORD: MetricRecord(metrics),
                ConfigKeys.NODE_RECORD: _node_record(node, data, policy),
            }
        ),
        reply_to=msg,
    )

