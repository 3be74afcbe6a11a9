"""The node's ClientApp for runs with secure aggregation (Flower's SecAgg+).

Flower 1.42 ships SecAgg+ only on its legacy workflow path: the server drives
``SecAggPlusWorkflow`` over a ``LegacyContext`` and the node answers with
``secaggplus_mod``, which masks the legacy ``FitRes`` parameters before they leave. This
app puts exactly that in front of the node's one training function:

- a train message of the legacy path (``fitins.parameters``, ``fitins.config``) is turned
  into the Message-API train message of :mod:`clients.app` and handed to its
  ``train_handler`` (same data loading, same ledger, same DP-SGD through
  ``federation.training.train_with_ledger``, same error replies);
- the reply becomes a legacy ``FitRes`` that ``secaggplus_mod`` quantizes and masks; the
  weights themselves are removed from the reply, only the masked vector leaves;
- evaluate messages go to :mod:`clients.app`'s ``evaluate_handler`` unchanged (score
  histograms per class: aggregate counts, sent in the clear as in every run).

What still leaves the node in the clear, besides the masked vector: the aggregate metrics
of :mod:`clients.app` (rounded examples, epsilon spent, steps, seconds) and the node's name,
kind and counts, as in a run without SecAgg+.
"""

from __future__ import annotations

import logging
import flwr.compat.common.recorddict_compat as compat
from flwr.app import ConfigRecord, Context, Error, Message, RecordDict
from flwr.app.metadata import Metadata
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

from clients.app import evaluate_handler, train_handler
from clients.attack import attack_mod
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays

log = logging.getLogger(__name__)

app = ClientApp()


class _ErrorReply(Exception):
    """Carries a node's error reply (declined, failed) through ``secaggplus_mod``."""

    def __init__(self, error: Error) -> None:
        super().__init__(error.reason)
        self.error = error


def _secaggplus_keeping_errors(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
    """``secaggplus_mod``, but a declined or failed round answers with the node's own error.

    ``secaggplus_mod`` reads the content of the training reply; an error reply has none.
    The node's error (budget exhausted, bad data) is passed back as it is, so the server
    records the same reason as without SecAgg+; the protocol treats the node as dropped.
    """

    def next_or_raise(message: Message, ctx: Context) -> Message:
        reply = call_next(message, ctx)
        if reply.has_error():
            raise _ErrorReply(reply.error)
        return reply

    try:
        return secaggplus_mod(msg, context, next_or_raise)
    except _ErrorReply as declined:
        return Message(declined.error, reply_to=msg)


def _copy_metadata(metadata: Metadata) -> Metadata:
    return Metadata(
        run_id=metadata.run_id,
        message_id=metadata.message_id,
        src_node_id=metadata.src_node_id,
        dst_node_id=metadata.dst_node_id,
        reply_to_message_id=metadata.reply_to_message_id,
        group_id=metadata.group_id,
        created_at=metadata.created_at,
        ttl=metadata.ttl,
        message_type=metadata.message_type,
        src_task_id=metadata.src_task_id,
        dst_task_id=metadata.dst_task_id,
    )


def legacy_to_train_message(msg: Message) -> Message:
    """The Message-API train message of :mod:`clients.app` carrying a legacy fit message's contents."""
    fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    server_round = int(fitins.config[ConfigKeys.SERVER_ROUND])
    content = RecordDict(
        {
            ConfigKeys.ARRAYS_RECORD: arrays_to_record(parameters_to_ndarrays(fitins.parameters)),
            ConfigKeys.CONFIG_RECORD: ConfigRecord({ConfigKeys.SERVER_ROUND: server_round}),
        }
    )
    return Message(content, metadata=_copy_metadata(msg.metadata))


def train_reply_to_fitres(reply: Message) -> RecordDict:
    """A legacy ``FitRes`` record dict from a train reply, keeping the node's metrics records."""
    metrics = reply.content[ConfigKeys.METRICS_RECORD]
    fitres = FitRes(
        status=Status(code=Code.OK, message="ok"),
        parameters=ndarrays_to_parameters(record_to_arrays(reply.content[ConfigKeys.ARRAYS_RECORD])),
        num_examples=int(metrics[ConfigKeys.NUM_EXAMPLES]),
        metrics={},
    )
    content = compat.fitres_to_recorddict(fitres, keep_input=True)
    content[ConfigKeys.METRICS_RECORD] = metrics
    content[ConfigKeys.NODE_RECORD] = reply.content[ConfigKeys.NODE_RECORD]
    return content


@app.train(mods=[_secaggplus_keeping_errors])
def secagg_train_handler(msg: Message, context: Context) -> Message:
    """Train with :func:`clients.app.train_handler`; reply as a legacy FitRes for SecAgg+ to mask.

    Notes
    -----
    Same privacy as a run without SecAgg+ (record-level DP-SGD under the node's ledger and
    cap); in addition the server only ever sees the sum of the nodes' quantized, weighted
    updates. ``secaggplus_mod`` clips each weight to the run's clipping range and
    quantizes it before masking.
    """
    reply = attack_mod(legacy_to_train_message(msg), context, train_handler)  # a no-op for an honest node
    if reply.has_error():
        return Message(reply.error, reply_to=msg)
    return Message(train_reply_to_fitres(reply), reply_to=msg)


@app.evaluate()
def secagg_evaluate_handler(msg: Message, context: Context) -> Message:
    """Evaluation is the same as without SecAgg+ (aggregate histograms only)."""
    return evaluate_handler(msg, context)
