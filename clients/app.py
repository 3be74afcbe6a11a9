"""The node's Flower ClientApp: train and evaluate on local data, reply with aggregates only.

The same app runs as a virtual node in simulation and as a real SuperNode. Replies carry
model weights after DP training and aggregate metrics (counts, losses, score histograms,
epsilon spent); never a text, an author id or a per-conversation score.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace

from flwr.app import ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from clients.attack import attack_mod
from clients.local_data import NodeData, node_data
from clients.node_settings import NodeSettings, resolve_node
from federation.early import warning_at
from federation.errors import CesagramError, PrivacyBudgetExceeded
from federation.histograms import EarlyCounts, ScoreHistogram
from federation.models.spec import build_head
from federation.models.weights import load_head_arrays
from federation.runconfig import RunSettings
from federation.training import evaluate, train, train_with_ledger
from federation.wire import (
    DECLINED_BUDGET,
    FAILED,
    ConfigKeys,
    arrays_to_record,
    record_to_arrays,
)

log = logging.getLogger(__name__)

app = ClientApp()


def _central_clipping_mod(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
    """Flower's client-side fixed clipping, on train messages of central-DP runs only."""
    if RunSettings.from_flat(context.run_config).privacy.mode == "central":
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def _node_record(node: NodeSettings, data: NodeData | None) -> ConfigRecord:
    record = ConfigRecord(
        {
            ConfigKeys.NODE_NAME: node.name,
            ConfigKeys.NODE_KIND: node.kind,
            ConfigKeys.CAP: node.cap,
            ConfigKeys.DELTA: node.delta,
        }
    )
    if data is not None:
        record[ConfigKeys.CONVERSATIONS] = data.conversations
        record[ConfigKeys.POSITIVES] = data.positives
    return record


def _node_name(context: Context) -> str:
    try:
        return resolve_node(context.node_config, RunSettings.from_flat(context.run_config)).name
    except CesagramError:
        return "node"


def _error_reply(msg: Message, context: Context, code: int, reason: str) -> Message:
    return Message(Error(code=code, reason=f"{_node_name(context)}: {reason}"), reply_to=msg)


def _load(context: Context) -> tuple[RunSettings, NodeSettings, NodeData]:
    run = RunSettings.from_flat(context.run_config)
    node = resolve_node(context.node_config, run)
    data = node_data(
        node.data_path,
        spec=run.model,
        cache_dir=run.cache_dir,
        validation_fraction=run.evaluation.validation_fraction,
        seed=run.seed,
    )
    return run, node, data


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
    """Train the received global model on this node's data, with DP-SGD when configured."""
    run, node, data = _load(context)
    config = msg.content[ConfigKeys.CONFIG_RECORD]
    server_round = int(config[ConfigKeys.SERVER_ROUND])
    global_arrays = record_to_arrays(msg.content[ConfigKeys.ARRAYS_RECORD])
    head = build_head(run.model, dim_in=data.train.embeddings.shape[1], seed=run.seed)
    load_head_arrays(head, global_arrays)
    settings = replace(
        run.train,
        proximal_mu=run.strategy.proximal_mu if run.strategy.name == "fedprox" else 0.0,
        seed=_stable_seed(run.seed, run.run_id, node.name, server_round),
        batch_size=run.party_batch_size(len(data.train)),
    )
    started = time.perf_counter()
    if run.privacy.mode == "record":
        result = train_with_ledger(
            ledger_path=node.ledger_path,
            run_id=run.run_id,
            round=server_round,
            planned_rounds=run.rounds,
            run_epsilon=run.privacy.epsilon,
            cap=node.cap,
            delta=node.delta,
            head=head,
            data=data.train,
            settings=settings,
            dp_clip=run.privacy.max_grad_norm,
            global_arrays=global_arrays,
        )
        epsilon = float(result.epsilon or 0.0)
    else:
        result = train(head=head, data=data.train, settings=settings, dp=None, global_arrays=global_arrays)
        epsilon = 0.0
    metrics = MetricRecord(
        {
            ConfigKeys.NUM_EXAMPLES: int(result.num_examples),
            ConfigKeys.TRAIN_LOSS: float(result.train_loss),
            ConfigKeys.EPSILON: epsilon,
            ConfigKeys.STEPS: int(result.steps),
            ConfigKeys.NOISE_MULTIPLIER: float(result.noise_multiplier or 0.0),
            ConfigKeys.TRAIN_SECONDS: time.perf_counter() - started,
            ConfigKeys.ENCODE_SECONDS: float(data.encode_seconds),
        }
    )
    return Message(
        RecordDict(
            {
                ConfigKeys.ARRAYS_RECORD: arrays_to_record(result.arrays),
                ConfigKeys.METRICS_RECORD: metrics,
                ConfigKeys.NODE_RECORD: _node_record(node, data),
            }
        ),
        reply_to=msg,
    )


@app.evaluate()
@_guarded
def evaluate_handler(msg: Message, context: Context) -> Message:
    """Score the validation split; reply with score histograms per class (and early-warning counts)."""
    run, node, data = _load(context)
    config = msg.content[ConfigKeys.CONFIG_RECORD]
    head = build_head(run.model, dim_in=data.validation.embeddings.shape[1], seed=run.seed)
    load_head_arrays(head, record_to_arrays(msg.content[ConfigKeys.ARRAYS_RECORD]))
    started = time.perf_counter()
    result = evaluate(head=head, data=data.validation, window=run.model.score_window)
    histogram = ScoreHistogram.from_scores(result.scores, result.labels, bins=run.evaluation.histogram_bins)
    metrics: dict[str, int | float | list[int] | list[float]] = {
        ConfigKeys.NUM_EXAMPLES: int(len(result.labels)),
        ConfigKeys.EVAL_LOSS: float(result.loss),
        ConfigKeys.HIST_POS: [int(c) for c in histogram.counts_pos],
        ConfigKeys.HIST_NEG: [int(c) for c in histogram.counts_neg],
    }
    if ConfigKeys.THRESHOLD in config:
        threshold = float(config[ConfigKeys.THRESHOLD])
        alerts = [
            warning_at(scores, threshold=threshold, k=run.evaluation.early_k, last=run.evaluation.early_last)
            for scores in result.per_message
        ]
        early = EarlyCounts.from_alerts(result.labels, alerts)
        metrics.update({f"early-{key}": value for key, value in early.to_lists().items()})
    metrics[ConfigKeys.EVAL_SECONDS] = time.perf_counter() - started
    return Message(
        RecordDict(
            {
                ConfigKeys.METRICS_RECORD: MetricRecord(metrics),
                ConfigKeys.NODE_RECORD: _node_record(node, data),
            }
        ),
        reply_to=msg,
    )

