"""The round loop: Flower's strategy hooks, driven with deadlines, callbacks and a clean stop.

``Strategy.start`` always begins at round 1, waits for nodes without a deadline and cannot
stop early. This loop calls the same hooks (``configure_train``, ``aggregate_train``,
``configure_evaluate``, ``aggregate_evaluate`` is replaced by histogram merging) and adds
what a federation of organisations needs: a deadline on node availability, a start at any
round (a resumed run), a clean end when no node may train any more, a callback after each
round (checkpoints, progress), and an optional secure-aggregation training step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from server.central_dp import CentralDP
from server.evaluation import histogram_metrics, merge_histograms, weighted_loss
from server.recorder import RunRecorder

log = logging.getLogger(__name__)

RoundCallback = Callable[[int, ArrayRecord], None]
#: Update validation: (global arrays sent, train replies) -> node id -> why its reply is refused.
ReplyCheck = Callable[[ArrayRecord, list[Message]], dict[int, str]]

#: Replies the SuperLink writes itself when a node never answered (it went offline, or the
#: reply expired): the node missed the round, it did not fail in it.
_UNAVAILABLE = (ErrorCode.NODE_UNAVAILABLE, ErrorCode.REPLY_MESSAGE_UNAVAILABLE, ErrorCode.MESSAGE_UNAVAILABLE)


@dataclass(frozen=True)
class RoundPlan:
    """Which rounds to run and how long to wait.

    ``expected_nodes`` (default: ``required_nodes``) is how many nodes the first round of
    this call waits for, up to ``wait_for_nodes_s``; every round then needs at least
    ``required_nodes`` online, or the run stops with a note saying so.
    """

    first_round: int
    last_round: int
    required_nodes: int
    timeout_s: float
    wait_for_nodes_s: float
    expected_nodes: int = 0

    @property
    def awaited_nodes(self) -> int:
        return max(self.expected_nodes, self.required_nodes)


@dataclass
class TrainOutcome:
    """One round's training as the loop records it.

    ``arrays`` is the already aggregated global model (secure aggregation aggregates inside
    its protocol), or None when the round produced none.
    """

    sent: list[Message]
    replies: list[Message]
    arrays: ArrayRecord | None = None
    notes: list[str] = field(default_factory=list)


#: A training step that aggregates itself (SecAgg+): (round, global arrays, train config) -> outcome.
TrainStep = Callable[[int, ArrayRecord, ConfigRecord], TrainOutcome]


def wait_for_nodes(grid: Grid, required: int, deadline_s: float, *, poll_s: float = 1.0) -> int:
    """Wait until ``required`` nodes are connected or the deadline passes; return how many are."""
    end = time.monotonic() + deadline_s
    while True:
        connected = len(list(grid.get_node_ids()))
        if connected >= required or time.monotonic() >= end:
            return connected
        time.sleep(poll_s)


def answered_by_nodes(replies: Iterable[Message]) -> list[Message]:
    """The replies a node sent, without the SuperLink's "node unavailable" stand-ins.

    A node that was killed or cut off gets no reply of its own: the SuperLink answers for
    it once its heartbeat lapses. Dropping those makes the recorder count the node as
    having missed the round (with the others going on), not as a failed node of unknown name.
    """
    kept = []
    for reply in replies:
        if reply.has_error() and (
            reply.error.code in _UNAVAILABLE or reply.metadata.src_node_id == SUPERLINK_NODE_ID
        ):
            log.warning("a node did not answer in round %s (%s)", reply.metadata.group_id, reply.error.reason)
            continue
        kept.append(reply)
    return kept


def _too_few_nodes(server_round: int, connected: int, plan: RoundPlan) -> str:
    return (
        f"round {server_round}: only {connected} of the {plan.required_nodes} required nodes were online within "
        f"{plan.wait_for_nodes_s:.0f} s, so the run stopped here; start the missing nodes (or lower "
        "federation.min_nodes) before resuming it"
    )


def run_rounds(
    *,
    grid: Grid,
    strategy: Strategy,
    arrays: ArrayRecord,
    plan: RoundPlan,
    recorder: RunRecorder,
    train_config: ConfigRecord,
    evaluate_config: ConfigRecord,
    on_round_end: RoundCallback | None = None,
    train_step: TrainStep | None = None,
    check_replies: ReplyCheck | None = None,
) -> ArrayRecord:
    """Run rounds ``plan.first_round .. plan.last_round``; return the final global weights.

    Parameters
    ----------
    train_step
        Replaces Flower's ``configure_train`` / ``send_and_receive`` / ``aggregate_train``
        for the training half of a round (secure aggregation); evaluation is unchanged.
    on_round_end
        Called with the round number and the global weights after each round is recorded
        (the checkpoint).
    check_replies
        Update validation (:class:`server.validation.ReplyScreen`): the replies it refuses
        are recorded as rejected and never reach the strategy; the round goes on with the
        others.
    """
    awaited = plan.awaited_nodes
    for server_round in range(plan.first_round, plan.last_round + 1):
        connected = wait_for_nodes(grid, awaited, plan.wait_for_nodes_s)
        if connected < plan.required_nodes:
            recorder.note(_too_few_nodes(server_round, connected, plan))
            break
        if connected < awaited:
            log.warning("round %d: %d of %d expected nodes online; going on with them", server_round, connected, awaited)
        awaited = plan.required_nodes  # later rounds do not wait for nodes that went away
        recorder.start_round(server_round)
        phase_started = time.perf_counter()
        config = ConfigRecord(dict(train_config))
        if train_step is None:
            sent = list(strategy.configure_train(server_round, arrays, config, grid))
            replies = answered_by_nodes(grid.send_and_receive(messages=sent, timeout=plan.timeout_s))
            rejected = check_replies(arrays, replies) if check_replies is not None else {}
            trained = recorder.on_train(server_round, sent, replies, rejected)
            if trained:
                new_arrays, _ = strategy.aggregate_train(server_round, trained)
                if new_arrays is not None:
                    arrays = new_arrays
                if isinstance(strategy, CentralDP):
                    for note in strategy.pop_notes():
                        recorder.note(note)
            else:
                recorder.note(f"round {server_round}: no node trained; the global model is unchanged")
        else:
            outcome = train_step(server_round, arrays, config)
            sent = outcome.sent
            trained = recorder.on_train(server_round, sent, answered_by_nodes(outcome.replies))
            for note in outcome.notes:
                recorder.note(note)
            if outcome.arrays is not None:
                arrays = outcome.arrays

        recorder.add_phase_seconds("training", time.perf_counter() - phase_started)
        phase_started = time.perf_counter()
        eval_replies: list[Message] = []
        # Flower's configure_evaluate waits without a deadline for its minimum of nodes.
        if wait_for_nodes(grid, plan.required_nodes, plan.wait_for_nodes_s) >= plan.required_nodes:
            sent_eval = list(strategy.configure_evaluate(server_round, arrays, ConfigRecord(dict(evaluate_config)), grid))
            eval_replies = recorder.on_evaluate(
                server_round,
                sent_eval,
                answered_by_nodes(grid.send_and_receive(messages=sent_eval, timeout=plan.timeout_s)),
            )
        else:
            recorder.note(f"round {server_round}: too few nodes online to evaluate the round")
        recorder.add_phase_seconds("evaluation", time.perf_counter() - phase_started)
        histogram = merge_histograms(eval_replies)
        metrics = histogram_metrics(histogram) if histogram is not None else {}
        metrics["eval_loss"] = weighted_loss(eval_replies)
        if histogram is not None:
            recorder.last_histogram = histogram
        recorder.end_round(server_round, metrics)
        if on_round_end is not None:
            on_round_end(server_round, arrays)

        declined = recorder.rounds[-1]["declined"]
        if not trained and declined and len(declined) + len(recorder.rounds[-1]["failed"]) >= len(sent):
            recorder.note(f"round {server_round}: every node declined (privacy budget or its policy); ending the run")
            break
    return arrays
