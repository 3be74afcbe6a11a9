"""The round loop with a stand-in grid and strategy: hook order, the stop rule, rejected updates,
histogram merging, the recorder, progress line and checkpoint as its callbacks, and the deadline
for nodes that never come online or answer. No process starts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.app.metadata import Metadata
from flwr.common.constant import ErrorCode
from flwr.serverapp.strategy import FedAvg

from federation.history import RoundRecord
from federation.wire import DECLINED_BUDGET, FAILED, ConfigKeys
from server.checkpoint import CheckpointEachRound, load_checkpoint
from server.evaluation import RoundEvaluation
from server.progress_file import ProgressFile
from server.recorder import RunRecorder
from server.rounds import CallbackList, EvaluateRound, RoundCallbacks, RoundPlan, TrainRound, answered_by_nodes, every_node_declined, run_rounds

Reply = Callable[[Message], Message]
K = ConfigKeys


def instruction(dst: int, kind: str) -> Message:
    """A message from the server to node ``dst`` (outside a Flower run, so its metadata is given)."""
    metadata = Metadata(
        run_id=1, message_id=f"{kind}-{dst}", src_node_id=1, dst_node_id=dst, reply_to_message_id="", group_id="1",
        created_at=0.0, ttl=1e12, message_type=kind,
    )  # fmt: skip
    return Message(RecordDict(), metadata=metadata)


def train_ok(epsilon: float = 0.5, loss: float = 0.7) -> Reply:
    metrics = {K.EPSILON: epsilon, K.STEPS: 3, K.TRAIN_SECONDS: 0.1, K.ENCODE_SECONDS: 0.2, K.TRAIN_LOSS: loss, K.NUM_EXAMPLES: 10}
    return lambda m: Message(RecordDict({K.METRICS_RECORD: MetricRecord(metrics)}), reply_to=m)


def evaluate_ok(pos: list[int], neg: list[int], loss: float = 0.4) -> Reply:
    metrics = {K.EVAL_SECONDS: 0.05, K.HIST_POS: pos, K.HIST_NEG: neg, K.EVAL_LOSS: loss, K.NUM_EXAMPLES: sum(pos) + sum(neg)}
    return lambda m: Message(RecordDict({K.METRICS_RECORD: MetricRecord(metrics)}), reply_to=m)


def error(code: int, reason: str) -> Reply:
    return lambda m: Message(Error(code=code, reason=reason), reply_to=m)


class FakeGrid:
    """Online nodes and how each answers a train or evaluate message (node ids above 1, the SuperLink's)."""

    def __init__(self, train: dict[int, Reply], evaluate: dict[int, Reply]) -> None:
        self.answers = {"train": train, "evaluate": evaluate}
        self.sent: list[str] = []

    def get_node_ids(self) -> list[int]:
        return sorted(self.answers["train"])

    def send_and_receive(self, messages: list[Message], timeout: float) -> list[Message]:
        replies = []
        for message in messages:
            kind = message.metadata.message_type
            self.sent.append(kind)
            answer = self.answers[kind].get(message.metadata.dst_node_id)
            if answer is not None:  # no answer: the node missed the round
                replies.append(answer(message))
        return replies


class FakeStrategy(FedAvg):
    """Addresses every node; "aggregates" by counting the replies it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.aggregated: list[list[int]] = []

    def _messages(self, kind: str, grid: FakeGrid) -> list[Message]:
        return [instruction(n, kind) for n in grid.get_node_ids()]

    def configure_train(self, server_round, arrays, config, grid):  # type: ignore[no-untyped-def, override]
        return self._messages("train", grid)

    def configure_evaluate(self, server_round, arrays, config, grid):  # type: ignore[no-untyped-def, override]
        return self._messages("evaluate", grid)

    def aggregate_train(self, server_round, replies):  # type: ignore[no-untyped-def, override]
        replies = list(replies)
        self.aggregated.append([r.metadata.src_node_id for r in replies])
        return ArrayRecord([np.full(2, float(server_round), dtype=np.float32)]), None


class Log(RoundCallbacks):
    """Every hook call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_round_start(self, server_round: int) -> None:
        self.calls.append(("start", server_round))

    def on_train(self, server_round: int, train: TrainRound) -> None:
        self.calls.append(("train", server_round, sorted(r.metadata.src_node_id for r in train.accepted)))

    def on_evaluate(self, server_round: int, evaluate: EvaluateRound) -> None:
        self.calls.append(("evaluate", server_round, len(evaluate.answered)))

    def on_round_end(self, server_round: int, evaluation: RoundEvaluation, arrays: ArrayRecord) -> None:
        self.calls.append(("end", server_round, evaluation.histogram, float(arrays.to_numpy_ndarrays()[0][0])))

    def on_note(self, text: str) -> None:
        self.calls.append(("note", text))


def plan(rounds: int, nodes: int) -> RoundPlan:
    return RoundPlan(first_round=1, last_round=rounds, required_nodes=nodes, timeout_s=5, wait_for_nodes_s=0)


def loop(grid: FakeGrid, callbacks: RoundCallbacks, rounds: int = 2, strategy: FakeStrategy | None = None, **kwargs: Any) -> ArrayRecord:
    return run_rounds(
        grid=grid,  # type: ignore[arg-type]
        strategy=strategy or FakeStrategy(),
        arrays=ArrayRecord([np.zeros(2, dtype=np.float32)]),
        plan=plan(rounds, len(grid.get_node_ids())),
        callbacks=callbacks,
        train_config=ConfigRecord({}),
        evaluate_config=ConfigRecord({}),
        **kwargs,
    )


def test_hooks_come_in_order_and_the_evaluation_is_merged_once_per_round() -> None:
    grid = FakeGrid({11: train_ok(), 12: train_ok()}, {11: evaluate_ok([0, 3], [4, 1]), 12: evaluate_ok([1, 2], [5, 0])})
    log = Log()
    final = loop(grid, log)
    assert [c[:2] for c in log.calls] == [(k, r) for r in (1, 2) for k in ("start", "train", "evaluate", "end")]
    assert log.calls[1] == ("train", 1, [11, 12]) and log.calls[2] == ("evaluate", 1, 2)
    histogram = log.calls[3][2]
    assert histogram.to_lists() == ([1, 5], [9, 1])  # the two nodes' histograms summed
    assert log.calls[3][3] == 1.0 and final.to_numpy_ndarrays()[0][0] == 2.0  # each round's aggregate goes on


def test_rejected_and_failed_replies_are_not_aggregated_and_every_decline_ends_the_run() -> None:
    strategy = FakeStrategy()
    grid = FakeGrid(
        {11: train_ok(), 12: train_ok(), 13: error(FAILED, "node-3: DataError: bad line")},
        {11: evaluate_ok([1, 1], [1, 1]), 12: evaluate_ok([1, 1], [1, 1]), 13: error(FAILED, "node-3: DataError: bad line")},
    )
    log = Log()
    loop(grid, log, rounds=1, strategy=strategy, check_replies=lambda arrays, replies: {12: "non-finite update"})
    assert strategy.aggregated == [[11]]
    assert ("evaluate", 1, 2) in log.calls

    declining = FakeGrid({11: error(DECLINED_BUDGET, "node-1: declined: privacy budget"), 12: error(FAILED, "node-2: x")}, {})
    log = Log()
    loop(declining, log, rounds=3, strategy=strategy)
    notes = [c[1] for c in log.calls if c[0] == "note"]
    assert notes == [
        "round 1: no node trained; the global model is unchanged",
        "round 1: every node declined (privacy budget or its policy); ending the run",
    ]
    assert [c[0] for c in log.calls if c[0] != "note"] == ["start", "train", "evaluate", "end"]


def test_the_stop_rule_counts_declines_and_failures_over_both_phases() -> None:
    sent = [instruction(n, "train") for n in (11, 12, 13)]
    declined = error(DECLINED_BUDGET, "node-1: declined")(sent[0])
    failed = error(FAILED, "node-2: failed")(sent[1])
    missed_then_declined = error(DECLINED_BUDGET, "node-3: declined")(sent[2])
    assert not every_node_declined(TrainRound(sent, [declined, failed]), EvaluateRound([], []))  # node 3 missed it
    assert every_node_declined(TrainRound(sent, [declined, failed]), EvaluateRound(sent, [missed_then_declined]))
    assert not every_node_declined(TrainRound(sent, [failed]), EvaluateRound([], []))  # no one declined: not a budget end
    ok = train_ok()(sent[2])
    assert not every_node_declined(TrainRound(sent, [declined, failed, ok]), EvaluateRound([], []))


def test_too_few_nodes_to_evaluate_is_a_note_and_nothing_is_sent() -> None:
    class Vanishing(FakeGrid):
        def get_node_ids(self) -> list[int]:
            return [11, 12] if not self.sent else [11]  # node 2 leaves after training

    grid = Vanishing({11: train_ok(), 12: train_ok()}, {})
    log = Log()
    loop(grid, log, rounds=1)
    assert grid.sent == ["train", "train"]
    assert ("note", "round 1: too few nodes online to evaluate the round") in log.calls
    assert ("evaluate", 1, 0) in log.calls and log.calls[-1][:3] == ("end", 1, None)


def test_recorder_progress_and_checkpoint_as_callbacks(tmp_path: Path) -> None:
    grid = FakeGrid(
        {11: train_ok(epsilon=0.5, loss=0.6), 12: error(DECLINED_BUDGET, "node-2: declined: privacy budget"), 13: train_ok()},
        {11: evaluate_ok([0, 3], [4, 1], loss=0.2), 13: evaluate_ok([0, 1], [2, 0], loss=0.5)},
    )
    recorder = RunRecorder()
    strategy = FakeStrategy()
    callbacks = CallbackList(
        (recorder, ProgressFile(tmp_path / "progress.jsonl", recorder), CheckpointEachRound(tmp_path, "run-x", strategy, recorder))
    )
    loop(grid, callbacks, rounds=2, strategy=strategy, check_replies=lambda arrays, replies: {13: "too large"})
    first = recorder.rounds[0].to_dict()
    assert list(first) == [
        "round", "participants", "declined", "failed", "rejected", "missed", "train_loss", "metrics", "seconds",
        "aggregation_seconds",
    ]  # fmt: skip
    assert 0 <= first["aggregation_seconds"] <= first["seconds"]  # the server's own share of the round
    assert first["participants"] == ["node-id-11"] and first["declined"] == {"node-2": "node-2: declined: privacy budget"}
    assert first["rejected"] == {"node-id-13": "too large"} and first["missed"] == [] and first["train_loss"] == pytest.approx(0.6)
    assert list(first["metrics"])[-2:] == ["eval_loss", "epsilon"] and first["metrics"]["conversations"] == 11
    assert first["metrics"]["eval_loss"] == pytest.approx((0.2 * 8 + 0.5 * 3) / 11)
    assert first["metrics"]["epsilon"] == {"node-2": 0.0, "node-id-11": 0.5, "node-id-13": 0.5}  # a rejected node still spent it
    assert recorder.last_histogram is not None and recorder.last_histogram.to_lists() == ([0, 4], [6, 1])
    assert set(recorder.phase_seconds) == {"training", "evaluation"}
    lines = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert [line["round"] for line in lines] == [1, 2]
    assert lines[0]["declined"] == ["node-2"] and lines[0]["rejected"] == ["node-id-13"] and lines[0]["max_epsilon"] == 0.5
    assert lines[0]["f05"] == first["metrics"]["f05"]
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.round == 2
    assert checkpoint.history["rounds"] == [json.loads(json.dumps(r.to_dict())) for r in recorder.rounds]


def test_round_record_keeps_the_report_shape_of_both_kinds_of_round() -> None:
    federated = {
        "round": 2, "participants": ["a"], "declined": {"b": "cap"}, "failed": {}, "rejected": {"c": "nan"}, "missed": ["d"],
        "train_loss": None, "metrics": {"f05": 0.5, "auprc": 0.4, "eval_loss": 0.3, "epsilon": {"a": 1.0}}, "seconds": 1.5,
    }  # fmt: skip
    record = RoundRecord.from_dict(federated)
    assert record.declined == {"b": "cap"} and record.eval_loss == 0.3 and record.metrics == {"f05": 0.5, "auprc": 0.4}
    assert record.to_dict() == federated and list(record.to_dict()) == list(federated)
    baseline = RoundRecord(round=1, node="pooled", train_loss=0.2, participants=["pooled"], metrics={"f05": 0.1}, eval_loss=0.4,
                           epsilon={"pooled": 2.0}, seconds=0.5)  # fmt: skip
    assert baseline.to_dict() == {
        "round": 1, "node": "pooled", "participants": ["pooled"], "declined": {}, "failed": {}, "train_loss": 0.2,
        "metrics": {"f05": 0.1, "eval_loss": 0.4, "epsilon": {"pooled": 2.0}}, "seconds": 0.5,
    }  # fmt: skip
    with pytest.raises((KeyError, TypeError, ValueError)):
        RoundRecord.from_dict({"participants": []})


# -- deadlines and nodes that never answer ------------------------------------------------------
class FewNodesGrid:
    """A Grid stand-in with a fixed set of online nodes; it must not be asked to send anything."""

    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)

    def send_and_receive(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("nothing may be sent when too few nodes are online")


def train_message(dst: int, *, round_: int = 1) -> Message:
    """A train message to node ``dst`` (also the SecAgg+ tests' instructions)."""
    metadata = Metadata(
        run_id=1, message_id=f"m{dst}", src_node_id=1, dst_node_id=dst, reply_to_message_id="", group_id=str(round_),
        created_at=0.0, ttl=60, message_type="train",
    )  # fmt: skip
    return Message(RecordDict(), metadata=metadata)


def test_too_few_nodes_stops_the_run_with_a_note_after_the_deadline(tmp_path: Path) -> None:
    recorder = RunRecorder()
    plan = RoundPlan(first_round=1, last_round=3, required_nodes=3, timeout_s=5, wait_for_nodes_s=0.3, expected_nodes=4)
    started = time.monotonic()
    arrays = ArrayRecord([np.zeros(2, dtype=np.float32)])
    result = run_rounds(
        grid=FewNodesGrid([11, 12]),  # type: ignore[arg-type]
        strategy=FedAvg(),
        arrays=arrays,
        plan=plan,
        callbacks=recorder,
        train_config=ConfigRecord({}),
        evaluate_config=ConfigRecord({}),
    )
    assert time.monotonic() - started >= 0.3
    assert result is arrays and recorder.rounds == []
    assert len(recorder.notes) == 1
    assert "only 2 of the 3 required nodes were online within 0 s" in recorder.notes[0]
    assert "start the missing nodes" in recorder.notes[0]


def test_superlink_stand_in_replies_count_as_missed_not_failed() -> None:
    sent = train_message(42)
    node_reply = Message(Error(code=4002, reason="node-a: DataError: bad"), reply_to=sent)
    unavailable = Message(
        Error(code=ErrorCode.NODE_UNAVAILABLE, reason="Error: Node Unavailable"),
        metadata=Metadata(
            run_id=1, message_id="", src_node_id=1, dst_node_id=1, reply_to_message_id="m43", group_id="1",
            created_at=0.0, ttl=60, message_type="train",
        ),
    )  # fmt: skip
    assert answered_by_nodes([node_reply, unavailable]) == [node_reply]
