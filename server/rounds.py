"""The round loop: Flower's strategy hooks, driven with deadlines, callbacks and a clean stop.

``Strategy.start`` always begins at round 1, waits for nodes without a deadline and cannot
stop early. This loop calls the same hooks (``configure_train``, ``aggregate_train``,
``configure_evaluate``; the evaluate replies are merged by
:func:`server.evaluation.aggregate_evaluation`) and adds what a federation of organisations
needs: a deadline on node availability, a start at any round (a resumed run), a clean end
when no node may train any more, and an optional secure-aggregation training step.

The loop itself reports nothing: what a round did goes to :class:`RoundCallbacks` (as
pfl-research's training-process callbacks): the recorder (:mod:`server.recorder`), the
progress line (:mod:`server.progress_file`) and the checkpoint (:mod:`server.checkpoint`).
It decides alone when to stop (:func:`every_node_declined`), from the replies themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from federation.wire import DECLINED
from server.central_dp import CentralDP
from server.evaluation import RoundEvaluation, aggregate_evaluation

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class TrainRound:
    """One round's training as the nodes answered it: what the callbacks are told.

    ``replies`` are the nodes' own (the SuperLink's stand-ins for a node that never
    answered are dropped); ``rejected`` (node id -> reason) are the replies update
    validation refused; ``seconds`` is the training phase, aggregation included.
    """

    sent: list[Message]
    replies: list[Message]
    rejected: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: Of ``seconds``, the server's own work on the replies: update checks and aggregation
    #: (None when a training step aggregates inside its protocol, SecAgg+).
    aggregation_seconds: float | None = None

    @property
    def accepted(self) -> list[Message]:
        """The replies that reach the strategy's aggregation: no error, not rejected."""
        return [r for r in self.replies if not r.has_error() and r.metadata.src_node_id not in self.rejected]


@dataclass(frozen=True)
class EvaluateRound:
    """One round's evaluation as the nodes answered it; with ``too_few_nodes`` nothing was sent."""

    sent: list[Message]
    replies: list[Message]
    seconds: float = 0.0
    too_few_nodes: bool = False

    @property
    def answered(self) -> list[Message]:
        """The replies without an error: the ones merged into the round's metrics."""
        return [r for r in self.replies if not r.has_error()]


class RoundCallbacks:
    """What the round loop tells the rest of a run; every hook does nothing unless overridden.

    The hooks come in this order for each round: ``on_round_start``, ``on_train``,
    ``on_evaluate``, ``on_round_end``; ``on_note`` whenever the loop has something a person
    should read in the report (a stop, a skipped step, a central-DP decision).
    """

    def on_round_start(self, server_round: int) -> None:
        """A round begins (enough nodes are online)."""

    def on_train(self, server_round: int, train: TrainRound) -> None:
        """The round's training ended (aggregated, when any node's update was accepted)."""

    def on_evaluate(self, server_round: int, evaluate: EvaluateRound) -> None:
        """The round's evaluation replies are in."""

    def on_round_end(self, server_round: int, evaluation: RoundEvaluation, arrays: ArrayRecord) -> None:
        """The round is over: its merged evaluation and the global weights after it."""

    def on_note(self, text: str) -> None:
        """A note for the report."""


@dataclass(frozen=True)
class CallbackList(RoundCallbacks):
    """Several callbacks, told in their order (a recorder before what reads its history)."""

    callbacks: Sequence[RoundCallbacks] = ()

    def on_round_start(self, server_round: int) -> None:
        for callback in self.callbacks:
            callback.on_round_start(server_round)

    def on_train(self, server_round: int, train: TrainRound) -> None:
        for callback in self.callbacks:
            callback.on_train(server_round, train)

    def on_evaluate(self, server_round: int, evaluate: EvaluateRound) -> None:
        for callback in self.callbacks:
            callback.on_evaluate(server_round, evaluate)

    def on_round_end(self, server_round: int, evaluation: RoundEvaluation, arrays: ArrayRecord) -> None:
        for callback in self.callbacks:
            callback.on_round_end(server_round, evaluation, arrays)

    def on_note(self, text: str) -> None:
        for callback in self.callbacks:
            callback.on_note(text)


def every_node_declined(train: TrainRound, evaluate: EvaluateRound) -> bool:
    """Whether the run should end after this round: no node's update was accepted, at least
    one node declined, and the nodes that declined or failed are as many as were asked to train.

    Counted per node and kind over training and evaluation, as the round's record lists
    them (a node that declined to train and failed to evaluate counts twice); a node that
    missed the round counts for neither, so a node that merely went offline ends nothing.
    """
    if train.accepted:
        return False
    declined: set[int] = set()
    failed: set[int] = set()
    for reply in (*train.replies, *evaluate.replies):
        if reply.has_error():
            (declined if reply.error.code in DECLINED else failed).add(reply.metadata.src_node_id)
    return bool(declined) and len(declined) + len(failed) >= len(train.sent)


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
    callbacks: RoundCallbacks,
    train_config: ConfigRecord,
    evaluate_config: ConfigRecord,
    train_step: TrainStep | None = None,
    check_replies: ReplyCheck | None = None,
) -> ArrayRecord:
    """Run rounds ``plan.first_round .. plan.last_round``; return the final global weights.

    Parameters
    ----------
    callbacks
        Told what each round did (:class:`RoundCallbacks`; several as a :class:`CallbackList`).
    train_step
        Replaces Flower's ``configure_train`` / ``send_and_receive`` / ``aggregate_train``
        for the training half of a round (secure aggregation); evaluation is unchanged.
    check_replies
        Update validation (:class:`server.validation.ReplyScreen`): the replies it refuses
        are recorded as rejected and never reach the strategy; the round goes on with the
        others.
    """
    awaited = plan.awaited_nodes
    for server_round in range(plan.first_round, plan.last_round + 1):
        connected = wait_for_nodes(grid, awaited, plan.wait_for_nodes_s)
        if connected < plan.required_nodes:
            callbacks.on_note(_too_few_nodes(server_round, connected, plan))
            break
        if connected < awaited:
            log.warning("round %d: %d of %d expected nodes online; going on with them", server_round, connected, awaited)
        awaited = plan.required_nodes  # later rounds do not wait for nodes that went away
        callbacks.on_round_start(server_round)
        config = ConfigRecord(dict(train_config))
        train, arrays, notes = _train(server_round, grid, strategy, arrays, plan, config, train_step, check_replies)
        callbacks.on_train(server_round, train)
        for note in notes:
            callbacks.on_note(note)
        evaluate = _evaluate(server_round, grid, strategy, arrays, plan, ConfigRecord(dict(evaluate_config)))
        if evaluate.too_few_nodes:
            callbacks.on_note(f"round {server_round}: too few nodes online to evaluate the round")
        callbacks.on_evaluate(server_round, evaluate)
        callbacks.on_round_end(server_round, aggregate_evaluation(evaluate.answered), arrays)
        if every_node_declined(train, evaluate):
            callbacks.on_note(f"round {server_round}: every node declined (privacy budget or its policy); ending the run")
            break
    return arrays


def _train(
    server_round: int,
    grid: Grid,
    strategy: Strategy,
    arrays: ArrayRecord,
    plan: RoundPlan,
    config: ConfigRecord,
    train_step: TrainStep | None,
    check_replies: ReplyCheck | None,
) -> tuple[TrainRound, ArrayRecord, list[str]]:
    """The training half of a round: its replies, the global weights after it and its notes."""
    started = time.perf_counter()
    rejected: dict[int, str] = {}
    aggregation: float | None = None
    if train_step is not None:
        outcome = train_step(server_round, arrays, config)
        sent, replies = outcome.sent, answered_by_nodes(outcome.replies)
        new_arrays, notes = outcome.arrays, list(outcome.notes)
    else:
        sent = list(strategy.configure_train(server_round, arrays, config, grid))
        replies = answered_by_nodes(grid.send_and_receive(messages=sent, timeout=plan.timeout_s))
        received = time.perf_counter()
        if check_replies is not None:
            rejected = check_replies(arrays, replies)
        accepted = TrainRound(sent, replies, rejected).accepted
        new_arrays, notes = None, []
        if accepted:
            new_arrays, _ = strategy.aggregate_train(server_round, accepted)
            if isinstance(strategy, CentralDP):
                notes += strategy.pop_notes()
        else:
            notes.append(f"round {server_round}: no node trained; the global model is unchanged")
        aggregation = time.perf_counter() - received
    train = TrainRound(sent, replies, rejected, time.perf_counter() - started, aggregation)
    return train, arrays if new_arrays is None else new_arrays, notes


def _evaluate(
    server_round: int, grid: Grid, strategy: Strategy, arrays: ArrayRecord, plan: RoundPlan, config: ConfigRecord
) -> EvaluateRound:
    """The evaluation half of a round (nothing sent when too few nodes are online)."""
    started = time.perf_counter()
    # Flower's configure_evaluate waits without a deadline for its minimum of nodes.
    if wait_for_nodes(grid, plan.required_nodes, plan.wait_for_nodes_s) < plan.required_nodes:
        return EvaluateRound([], [], time.perf_counter() - started, too_few_nodes=True)
    sent = list(strategy.configure_evaluate(server_round, arrays, config, grid))
    replies = answered_by_nodes(grid.send_and_receive(messages=sent, timeout=plan.timeout_s))
    return EvaluateRound(sent, replies, time.perf_counter() - started)
