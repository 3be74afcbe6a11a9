"""Update validation at the server: each malformed train reply is refused, an honest one is not."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.metadata import Metadata

from federation.models import FeatureSet, NgramHead, head_arrays
from federation.runconfig import PrivacySettings, RunSettings
from federation.training import DPParams, TrainSettings, train
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays
from server.evaluation import RoundEvaluation
from server.recorder import RunRecorder
from server.rounds import TrainRound
from server.validation import ReplyScreen, aggregate_problem, honest_update_bound, momentum_gain, reply_problem

DIM = 32
# max_step_noise=None: the step is the configured one (the step rule's own test is below)
TRAIN = TrainSettings(local_epochs=4, batch_size=16, learning_rate=5.0, optimizer="sgd", momentum=0.9, seed=1, max_step_noise=None)
RUN = RunSettings(
    run_id="r",
    run_dir="/nonexistent",
    rounds=1,
    nodes=3,
    train=TRAIN,
    privacy=PrivacySettings(mode="record", max_grad_norm=0.5),
)
NOISE = 1.2


def toy_features(n: int = 96, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(400, DIM)).astype(np.float32)
    embeddings[:200, 0] += 2.0
    labels = np.arange(n) % 2
    rows = [rng.integers(0, 200, 8) if label else rng.integers(200, 400, 8) for label in labels]
    return FeatureSet(embeddings=embeddings, rows=rows, speakers=[np.zeros(8, dtype=np.int64)] * n, labels=labels, ids=[f"c{i}" for i in range(n)])


@pytest.fixture(scope="module")
def honest() -> tuple[list[np.ndarray], list[np.ndarray], int, int]:
    """The global weights and a real DP-SGD update of them (24 steps), as a node would send."""
    torch.manual_seed(0)
    head = NgramHead(dim_in=DIM)
    data = toy_features()
    result = train(head=head, data=data, settings=TRAIN, dp=DPParams(noise_multiplier=NOISE, max_grad_norm=0.5, delta=1e-5))
    return head_arrays(head), result.arrays, result.steps, result.num_examples


def reply_of(arrays: list[np.ndarray] | ArrayRecord, *, steps: int, examples: int, node_id: int = 7, metrics: dict | None = None) -> Message:
    values = {
        ConfigKeys.NUM_EXAMPLES: examples,
        ConfigKeys.TRAIN_LOSS: 0.5,
        ConfigKeys.EPSILON: 1.0,
        ConfigKeys.STEPS: steps,
        ConfigKeys.NOISE_MULTIPLIER: NOISE,
        ConfigKeys.TRAIN_SECONDS: 1.0,
        ConfigKeys.ENCODE_SECONDS: 0.0,
        **(metrics or {}),
    }
    values = {key: value for key, value in values.items() if value is not None}  # None: leave the key out
    record = arrays if isinstance(arrays, ArrayRecord) else arrays_to_record(arrays)
    content = RecordDict(
        {
            ConfigKeys.ARRAYS_RECORD: record,
            ConfigKeys.METRICS_RECORD: MetricRecord(values),
            ConfigKeys.NODE_RECORD: ConfigRecord({ConfigKeys.NODE_NAME: f"node-{node_id}", ConfigKeys.CONVERSATIONS: examples}),
        }
    )
    metadata = Metadata(
        run_id=1, message_id=f"r{node_id}", src_node_id=node_id, dst_node_id=1, reply_to_message_id="m", group_id="1",
        created_at=0.0, ttl=60, message_type="train",
    )  # fmt: skip
    return Message(content, metadata=metadata)


def test_an_honest_dp_update_passes_and_sits_well_inside_the_bound(honest) -> None:
    global_arrays, trained, steps, examples = honest
    assert reply_problem(reply_of(trained, steps=steps, examples=examples), arrays_to_record(global_arrays), RUN) is None
    norm = math.sqrt(sum(float(((t - g) ** 2).sum()) for t, g in zip(trained, global_arrays)))
    bound = honest_update_bound(RUN, steps=steps, num_examples=examples, noise_multiplier=NOISE, dim=DIM + 1)
    assert bound is not None and 0 < norm < bound / 4  # room for nodes whose noise is larger than this one's


def test_an_update_scaled_by_100_exceeds_the_bound(honest) -> None:
    global_arrays, trained, steps, examples = honest
    scaled = [g + 100.0 * (t - g) for t, g in zip(trained, global_arrays)]
    problem = reply_problem(reply_of(scaled, steps=steps, examples=examples), arrays_to_record(global_arrays), RUN)
    assert problem is not None and problem.startswith("update norm") and "exceeds the bound" in problem


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda a: [a[0]], "array names differ"),
        (lambda a: [a[0][:, :-1], a[1]], "has shape (1, 31)"),
        (lambda a: [a[0].astype(np.float64), a[1]], "has dtype float64, nodes send float32"),
        (lambda a: [np.full_like(a[0], np.nan), a[1]], "holds 32 NaN and 0 infinite values"),
        (lambda a: [a[0], np.full_like(a[1], np.inf)], "holds 0 NaN and 1 infinite values"),
    ],
    ids=["names", "shape", "dtype", "nan", "inf"],
)
def test_each_malformed_array_kind_is_refused(honest, damage, expected) -> None:
    global_arrays, trained, steps, examples = honest
    arrays = damage([a.copy() for a in trained])
    record = ArrayRecord({str(i): Array(a) for i, a in enumerate(arrays)})  # keeps the damaged dtype
    problem = reply_problem(reply_of(record, steps=steps, examples=examples), arrays_to_record(global_arrays), RUN)
    assert problem is not None and expected in problem


def test_renamed_arrays_are_refused(honest) -> None:
    global_arrays, trained, steps, examples = honest
    record = ArrayRecord({"weight": Array(trained[0]), "bias": Array(trained[1])})
    problem = reply_problem(reply_of(record, steps=steps, examples=examples), arrays_to_record(global_arrays), RUN)
    assert problem is not None and "missing: ['0', '1']" in problem and "unexpected: ['bias', 'weight']" in problem


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({ConfigKeys.EPSILON: math.nan}, "metric 'epsilon' is not finite"),
        ({ConfigKeys.STEPS: None}, "metric 'steps' is missing or not a number"),
        ({ConfigKeys.STEPS: 0}, "metrics claim 0 steps"),
        ({ConfigKeys.NOISE_MULTIPLIER: -1.0}, "'noise-multiplier' is not a finite number >= 0"),
    ],
)
def test_unreadable_metrics_are_refused_before_the_recorder_reads_them(honest, metrics, expected) -> None:
    global_arrays, trained, steps, examples = honest
    problem = reply_problem(reply_of(trained, steps=steps, examples=examples, metrics=metrics), arrays_to_record(global_arrays), RUN)
    assert problem is not None and expected in problem


def test_the_bound_replays_the_nodes_step_rule_from_the_rounded_noise() -> None:
    """With ``max_step_noise`` the node stepped at a lower rate; the bound takes the highest rate the reply allows."""
    ruled = replace(RUN, train=replace(TRAIN, max_step_noise=0.05))
    args = {"steps": 24, "num_examples": 96, "dim": DIM + 1}
    plain = honest_update_bound(RUN, noise_multiplier=5.0, **args)
    bound = honest_update_bound(ruled, noise_multiplier=5.0, **args)
    lowest_rate = TRAIN.learning_rate * 0.05 / (TRAIN.learning_rate * 4.75 * 0.5 / 16)  # sigma 5 rounded from above 4.75
    assert bound == pytest.approx(plain * lowest_rate / TRAIN.learning_rate)
    # A node reporting fewer conversations than a batch (canaries of a black-box audit are not
    # counted) may have stepped with the full batch: the rate is replayed at train.batch_size.
    few = {**args, "num_examples": 10}
    assert honest_update_bound(ruled, noise_multiplier=5.0, **few) == pytest.approx(
        honest_update_bound(RUN, noise_multiplier=5.0, **few) * lowest_rate / TRAIN.learning_rate
    )
    torch.manual_seed(0)
    head, data = NgramHead(dim_in=DIM), toy_features()
    before = head_arrays(head)
    stepped = ruled.train.for_noise(4.8, max_grad_norm=0.5, expected_batch=16)  # what a node at sigma 4.8 runs
    trained = train(head=head, data=data, settings=stepped, dp=DPParams(noise_multiplier=4.8, max_grad_norm=0.5, delta=1e-5)).arrays
    norm = math.sqrt(sum(float(((t - g) ** 2).sum()) for t, g in zip(trained, before)))
    assert norm < bound  # the honest node's update, reported as 5.0 (rounded up), stays inside


def test_the_bound_follows_the_optimizer_and_the_privacy_mode() -> None:
    args = {"steps": 10, "num_examples": 100, "noise_multiplier": 1.0, "dim": 100}
    sgd = honest_update_bound(RUN, **args)
    # 2 * lr * M(T) * C * (1 + sigma * (sqrt(d) + 6) / B), B = min(16, 100), M(T) = sum_t (1 - m^t) / (1 - m)
    gain = sum((1 - 0.9**t) / 0.1 for t in range(1, 11))
    assert momentum_gain(0.9, 10) == pytest.approx(gain) and momentum_gain(0.9, 10) < 10 / 0.1
    assert momentum_gain(0.0, 10) == 10
    assert sgd == pytest.approx(2 * 5.0 * gain * 0.5 * (1 + 1.0 * (10 + 6) / 16))
    assert honest_update_bound(replace(RUN, privacy=PrivacySettings(mode="none")), **args) is None
    assert honest_update_bound(replace(RUN, train=replace(TRAIN, weight_decay=1e-4)), **args) is None
    adam = replace(RUN, train=replace(TRAIN, optimizer="adam", learning_rate=1e-3))
    assert honest_update_bound(adam, **args) == pytest.approx(2 * 1e-3 * 10 * (0.1 / math.sqrt(0.001)) * 10)
    central = replace(RUN, privacy=PrivacySettings(mode="central", clipping_norm=0.7))
    assert honest_update_bound(central, **args) == pytest.approx(0.7, rel=1e-3)


def test_rejected_replies_are_recorded_and_left_out_of_aggregation(honest) -> None:
    global_arrays, trained, steps, examples = honest
    good = reply_of(trained, steps=steps, examples=examples, node_id=7)
    bad = reply_of([np.full_like(a, np.nan) for a in trained], steps=steps, examples=examples, node_id=8, metrics={ConfigKeys.EPSILON: 2.5})
    rejected = ReplyScreen(RUN)(arrays_to_record(global_arrays), [good, bad])
    assert list(rejected) == [8]
    recorder = RunRecorder()
    recorder.on_round_start(1)
    train = TrainRound(sent=[], replies=[good, bad], rejected=rejected)
    recorder.on_train(1, train)
    assert train.accepted == [good]
    recorder.on_round_end(1, RoundEvaluation(), ArrayRecord())
    entry = recorder.rounds[-1]
    assert entry.participants == ["node-7"]
    assert entry.rejected == {"node-8": rejected[8]}
    assert recorder.nodes["node-8"].rejected == {1: rejected[8]}
    assert recorder.nodes["node-8"].epsilon == 2.5  # its ledger charged the round: the report says so


def test_a_non_finite_aggregate_is_named() -> None:
    assert aggregate_problem(ArrayRecord([np.zeros(3, dtype=np.float32)])) is None
    assert "array '0'" in aggregate_problem(ArrayRecord([np.array([0.0, np.nan], dtype=np.float32)]))


def test_secagg_refuses_a_non_finite_unmasked_aggregate(monkeypatch) -> None:
    """SecAgg+ hides single updates; what the server can still check is the unmasked aggregate."""
    import server.secagg as secagg
    from flwr.server.workflow.constant import MAIN_PARAMS_RECORD

    class FakeWorkflow:  # stands in for SecAggPlusWorkflow: "unmasks" to the given aggregate
        aggregate = np.array([np.nan, 1.0], dtype=np.float32)

        def __init__(self, **kwargs) -> None:
            pass

        def __call__(self, grid, context) -> None:
            context.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord([self.aggregate])

    class FakeGrid:
        class run:  # noqa: N801 - mimics Grid.run
            run_id = 1

        def get_node_ids(self) -> list[int]:
            return [1, 2, 3]

    monkeypatch.setattr(secagg, "SecAggPlusWorkflow", FakeWorkflow)
    step = secagg.SecAggTrainStep(FakeGrid(), secagg.SecAggSettings(enabled=True), required_nodes=3, timeout_s=5)
    global_arrays = ArrayRecord([np.zeros(2, dtype=np.float32)])
    outcome = step(1, global_arrays, ConfigRecord({}))
    assert outcome.arrays is None  # the global model stays as it was
    assert any("secure aggregate refused" in note and "NaN" in note for note in outcome.notes)
    FakeWorkflow.aggregate = np.array([0.5, 1.0], dtype=np.float32)
    assert np.allclose(record_to_arrays(step(1, global_arrays, ConfigRecord({})).arrays)[0], [0.5, 1.0])


def test_a_float64_global_model_does_not_make_honest_float32_replies_fail(honest) -> None:
    global_arrays, trained, steps, examples = honest  # FedAdam's aggregate comes back as float64
    as_float64 = ArrayRecord({str(i): Array(a.astype(np.float64)) for i, a in enumerate(global_arrays)})
    assert reply_problem(reply_of(trained, steps=steps, examples=examples), as_float64, RUN) is None
