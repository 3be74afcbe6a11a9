"""What happened in a run, round by round, as the server saw it: the raw material of the report.

Only aggregates arrive here: per-node counts, losses, epsilon spent, bytes moved, and the
reasons a node declined or failed. The recorder is the round loop's first callback: what
comes after it (the progress line, the checkpoint) reads the history it keeps.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, Message

from federation.histograms import ScoreHistogram
from federation.history import NodeRecord, RoundRecord, RunHistory
from federation.wire import DECLINED, FAILED, ConfigKeys, audit_from_metrics, message_bytes
from server.evaluation import RoundEvaluation
from server.rounds import EvaluateRound, RoundCallbacks, TrainRound

log = logging.getLogger(__name__)


def _readable(reply: Message, key: str) -> float | None:
    """A metric of a (rejected) reply, when it is a finite number >= 0."""
    try:
        value = float(reply.content[ConfigKeys.METRICS_RECORD][key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


@dataclass
class RunRecorder(RunHistory, RoundCallbacks):
    """Collects rounds, nodes, privacy and communication from Flower replies (the round loop's callback)."""

    last_histogram: ScoreHistogram | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)
    _names: dict[int, str] = field(default_factory=dict)
    _round_started: float = 0.0
    _current: RoundRecord = field(default_factory=lambda: RoundRecord(round=0))

    # -- naming ---------------------------------------------------------------------------
    def _node(self, node_id: int, reply: Message | None = None) -> NodeRecord:
        if reply is not None and not reply.has_error() and ConfigKeys.NODE_RECORD in reply.content:
            info = reply.content[ConfigKeys.NODE_RECORD]
            name = str(info[ConfigKeys.NODE_NAME])
            self._names[node_id] = name
            node = self.nodes.setdefault(name, NodeRecord(name=name))
            node.kind = str(info.get(ConfigKeys.NODE_KIND, node.kind))
            node.conversations = int(info.get(ConfigKeys.CONVERSATIONS, node.conversations))
            node.positives = int(info.get(ConfigKeys.POSITIVES, node.positives))
            node.cap = float(info[ConfigKeys.CAP]) if ConfigKeys.CAP in info else node.cap
            node.delta = float(info[ConfigKeys.DELTA]) if ConfigKeys.DELTA in info else node.delta
            if ConfigKeys.ACCOUNTANT in info:
                node.accountant = str(info[ConfigKeys.ACCOUNTANT])
            return node
        name = self._names.get(node_id)
        if name is None and reply is not None and reply.has_error() and reply.error.code in (*DECLINED, FAILED):
            # Only our own error replies start with the node's name; Flower's start with other text.
            reason = reply.error.reason or ""
            name = reason.split(":", 1)[0] if ":" in reason else None
        name = name or f"node-id-{node_id}"
        self._names.setdefault(node_id, name)
        return self.nodes.setdefault(name, NodeRecord(name=name))

    def _named(self, node_id: int, reply: Message) -> NodeRecord:
        """The node of a rejected reply: named by its node record when that one is readable."""
        try:
            return self._node(node_id, reply)
        except (KeyError, TypeError, ValueError):
            return self._node(node_id)

    # -- rounds ---------------------------------------------------------------------------
    def on_round_start(self, server_round: int) -> None:
        self._round_started = time.perf_counter()
        self._current = RoundRecord(round=server_round)

    def on_train(self, server_round: int, train: TrainRound) -> None:
        """Record train replies: who trained, missed, declined, failed or was rejected, and what it cost.

        A rejected reply (refused by update validation) is recorded as such: the node
        trained, and spent the privacy its ledger says, but its update was not aggregated.
        """
        current = self._current
        self.add_phase_seconds("training", train.seconds)
        current.aggregation_seconds = train.aggregation_seconds
        answered = {reply.metadata.src_node_id for reply in train.replies}
        for message in train.sent:
            if message.metadata.dst_node_id not in answered:
                node = self._node(message.metadata.dst_node_id)
                node.missed.append(server_round)
                current.missed.append(node.name)
        losses: list[tuple[float, int]] = []
        sent_bytes = {m.metadata.dst_node_id: message_bytes(m) for m in train.sent}
        rejected = train.rejected
        for reply in train.replies:
            node_id = reply.metadata.src_node_id
            node = self._named(node_id, reply) if node_id in rejected else self._node(node_id, reply)
            received = 0
            if node_id in rejected and not reply.has_error():
                reason = rejected[node_id]
                # The node's ledger charged the round all the same: the privacy section says so.
                node.epsilon = max(node.epsilon, _readable(reply, ConfigKeys.EPSILON) or 0.0)
                node.steps += int(_readable(reply, ConfigKeys.STEPS) or 0)
                node.rejected[server_round] = reason
                current.rejected[node.name] = reason
                received = message_bytes(reply)
                log.warning("round %d: rejected the update of %s: %s", server_round, node.name, reason)
            elif reply.has_error():
                reason = reply.error.reason or f"error code {reply.error.code}"
                if reply.error.code in DECLINED:
                    node.declined[server_round] = reason
                    current.declined[node.name] = reason
                else:
                    node.failed[server_round] = reason
                    current.failed[node.name] = reason
                log.warning("round %d: %s", server_round, reason)
            else:
                metrics = reply.content[ConfigKeys.METRICS_RECORD]
                node.rounds.append(server_round)
                node.epsilon = float(metrics[ConfigKeys.EPSILON])
                node.steps += int(metrics[ConfigKeys.STEPS])
                node.train_seconds += float(metrics[ConfigKeys.TRAIN_SECONDS])
                node.encode_seconds = max(node.encode_seconds, float(metrics[ConfigKeys.ENCODE_SECONDS]))
                if ConfigKeys.TRAIN_LOSS in metrics:  # nodes of this version do not send it (see clients.allow_list)
                    losses.append((float(metrics[ConfigKeys.TRAIN_LOSS]), int(metrics[ConfigKeys.NUM_EXAMPLES])))
                node.audit = audit_from_metrics(metrics, prefix=ConfigKeys.AUDIT_PREFIX, server_round=server_round) or node.audit
                current.participants.append(node.name)
                received = message_bytes(reply)
            self.communication.append(
                {
                    "round": server_round,
                    "node": node.name,
                    "phase": "train",
                    "sent_bytes": sent_bytes.get(node_id, 0),
                    "received_bytes": received,
                }
            )
        total = sum(n for _, n in losses)
        current.train_loss = sum(l * n for l, n in losses) / total if total else None

    def on_evaluate(self, server_round: int, evaluate: EvaluateRound) -> None:
        """Record evaluate replies: evaluation time, bytes, and who declined or failed to evaluate."""
        self.add_phase_seconds("evaluation", evaluate.seconds)
        sent_bytes = {m.metadata.dst_node_id: message_bytes(m) for m in evaluate.sent}
        for reply in evaluate.replies:
            node = self._node(reply.metadata.src_node_id, reply)
            if reply.has_error():
                reason = reply.error.reason or f"error code {reply.error.code}"
                declined = reply.error.code in DECLINED
                (node.declined if declined else node.failed).setdefault(server_round, reason)
                (self._current.declined if declined else self._current.failed).setdefault(node.name, reason)
                continue
            metrics = reply.content[ConfigKeys.METRICS_RECORD]
            node.eval_seconds += float(metrics[ConfigKeys.EVAL_SECONDS])
            try:  # evaluate replies are not screened like train replies: a malformed audit is dropped, not fatal
                black = audit_from_metrics(metrics, prefix=ConfigKeys.BLACK_PREFIX, server_round=server_round)
            except (KeyError, TypeError, ValueError) as error:
                log.warning("round %d: %s sent an unreadable black-box audit (%s); ignored", server_round, node.name, error)
                black = None
            node.black_audit = black or node.black_audit
            self.communication.append(
                {
                    "round": server_round,
                    "node": node.name,
                    "phase": "evaluate",
                    "sent_bytes": sent_bytes.get(reply.metadata.src_node_id, 0),
                    "received_bytes": message_bytes(reply),
                }
            )

    def on_round_end(self, server_round: int, evaluation: RoundEvaluation, arrays: ArrayRecord) -> None:
        """Close the round: its metrics, every node's epsilon so far and its duration go into its record."""
        record = self._current
        record.metrics = dict(evaluation.metrics)
        record.eval_loss = evaluation.loss
        record.epsilon = {name: node.epsilon for name, node in sorted(self.nodes.items())}
        record.seconds = time.perf_counter() - self._round_started
        if evaluation.histogram is not None:
            self.last_histogram = evaluation.histogram
        self.rounds.append(record)
        self._current = RoundRecord(round=0)

    def on_note(self, text: str) -> None:
        self.note(text)

    def add_phase_seconds(self, phase: str, seconds: float) -> None:
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + seconds

    def note(self, text: str) -> None:
        log.warning("%s", text)
        self.notes.append(text)
