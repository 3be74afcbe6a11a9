"""Update validation: every train reply is checked before any strategy aggregates it.

One node with a bug, a corrupted file or a compromised machine must not take the
federation down: a NaN in one update makes the average NaN, and every node then refuses
the global model; an update scaled by 100 drowns the others. So before aggregation, each
reply must carry

- the metrics the server reads, as finite numbers (a missing key would stop the server);
- exactly the arrays the server sent (same names and shapes, the wire's dtype float32);
- finite values only;
- an update (reply minus the round's global weights) no longer than an honest node's
  update can be (:func:`honest_update_bound`, the one place that derives the bound).

A reply that fails is rejected: the recorder writes node, round and reason into the
report and the round goes on with the other replies, as for a node that failed.

Notes
-----
The bound uses what the reply says of itself (steps, examples, noise multiplier) and what
the run config says of training (learning rate, momentum, clipping norm, batch size). A
node that lies about its steps or its noise multiplier can widen its own bound (under
FedAvg a node that lies about its examples also weighs more): the check stops faults and
blunt attacks; robust aggregation (``strategy=fedmedian|fedtrimmedavg|krum|normbounded``)
is the defence against a node that lies well. With SecAgg+ the server never sees a single
update, so only the unmasked aggregate is checked (:func:`aggregate_problem`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from flwr.app import ArrayRecord, Message

from federation.checks import is_finite_number, is_number
from federation.privacy.node_policy import NOISE_MULTIPLIER_STEP
from federation.runconfig import RunSettings
from federation.wire import WIRE_DTYPE, ConfigKeys

__all__ = [
    "BOUND_MARGIN",
    "NOISE_TAIL",
    "REQUIRED_METRICS",
    "ReplyScreen",
    "aggregate_problem",
    "honest_update_bound",
    "momentum_gain",
    "reply_problem",
]

WIRE = np.dtype(WIRE_DTYPE).name  # "float32", as Flower's Array names dtypes

#: Metrics the recorder reads from every successful train reply (nodes send no training
#: loss: see clients.allow_list).
REQUIRED_METRICS = (
    ConfigKeys.NUM_EXAMPLES,
    ConfigKeys.EPSILON,
    ConfigKeys.STEPS,
    ConfigKeys.TRAIN_SECONDS,
    ConfigKeys.ENCODE_SECONDS,
)

#: Safety factor on the whole bound (covers Poisson batches up to twice their expected size).
BOUND_MARGIN = 2.0
#: Standard deviations of the Gaussian noise's norm above its mean, sqrt(d), that the bound allows.
NOISE_TAIL = 6.0
#: Adam's per-coordinate step is at most lr * max(1, (1 - beta1) / sqrt(1 - beta2)) (Kingma & Ba,
#: section 2.1); torch's defaults beta1 = 0.9, beta2 = 0.999 give 3.17.
ADAM_STEP_FACTOR = max(1.0, (1 - 0.9) / math.sqrt(1 - 0.999))


def honest_update_bound(
    run: RunSettings,
    *,
    steps: int,
    num_examples: int,
    noise_multiplier: float,
    dim: int,
) -> float | None:
    """The largest L2 norm an honest node's update can have, with margin; None when there is none.

    Parameters
    ----------
    run
        The run's training, privacy and strategy settings (what every node was told).
    steps, num_examples, noise_multiplier
        As the node's reply reports them.
    dim
        Number of weights (the sum of the arrays' sizes).

    Notes
    -----
    **DP-SGD with SGD** (``privacy.mode=record``, ``train.optimizer=sgd``). Each step the
    gradient is ``g = (sum of clipped per-conversation gradients + N(0, sigma^2 C^2 I_d)) / B``
    with clip ``C = privacy.max_grad_norm`` and expected batch ``B``, so
    ``||g|| <= C * (|S| + sigma * ||z||) / B``: the Poisson sample ``|S|`` stays below ``2B``
    with overwhelming probability (``BOUND_MARGIN`` covers it) and ``||z||``, the norm of a
    standard Gaussian in ``d`` dimensions, below ``sqrt(d) + NOISE_TAIL`` (its tail is
    ``exp(-t^2 / 2)``). SGD with momentum ``m`` keeps ``v_t = m v_{t-1} + g_t``, so
    ``||v_t|| <= (1 + m + ... + m^(t-1)) max ||g|| = (1 - m^t) / (1 - m) max ||g||``, and ``T``
    steps of ``lr * v_t`` move the weights by at most ``lr * M(T) * max ||g||`` with
    ``M(T) = sum_t (1 - m^t) / (1 - m)`` (below ``T / (1 - m)``: momentum amplifies a long run by
    up to ``1 / (1 - m)``, a short one by less)::

        bound = BOUND_MARGIN * lr * M(T) * C * (1 + sigma * (sqrt(d) + NOISE_TAIL) / B)

    This is a triangle-inequality bound: noise adds up like a random walk (``sqrt(T)``,
    not ``T``), so an honest update sits well below it, and an update scaled by 100 above it
    for any ``T`` under ``(100 / (2 * BOUND_MARGIN))^2``.

    ``lr`` is the step the node really took: the configured learning rate, lowered by
    the step rule (:meth:`TrainSettings.for_noise`) for the noise multiplier, taken at the
    lowest value the rounded one in the reply allows (a larger learning rate, so the bound
    stays a bound). With ``privacy.sample_rate`` set the batch the node used is only known
    from its rounded count, and the configured learning rate is used.

    **Adam** (with or without DP): each step moves each weight by at most
    ``lr * ADAM_STEP_FACTOR``, so ``bound = BOUND_MARGIN * lr * T * ADAM_STEP_FACTOR * sqrt(d)``.

    **Central DP** (``privacy.mode=central``): Flower's client-side ``fixedclipping_mod``
    clips each update to ``privacy.clipping_norm``; the bound is that norm (with rounding slack).

    **No bound** (None: shape and finiteness checks only): SGD without DP (nothing bounds a
    plain gradient), and SGD with weight decay or FedProx, whose gradient grows with the
    weights themselves.
    """
    train = run.train
    lr = train.learning_rate
    if run.privacy.mode == "central":
        return run.privacy.clipping_norm * (1.0 + 1e-4)
    if train.optimizer == "adam":
        return BOUND_MARGIN * lr * steps * ADAM_STEP_FACTOR * math.sqrt(dim)
    if run.privacy.mode != "record" or train.weight_decay > 0 or run.strategy.name == "fedprox":
        return None
    expected_batch = max(1, min(run.party_batch_size(num_examples), num_examples))
    clip = run.privacy.max_grad_norm
    if run.privacy.sample_rate is None:  # the node's batch is at most train.batch_size: its step rule can be replayed
        # The step rule's learning rate falls with the multiplier and grows with the batch:
        # the lowest multiplier the rounded-up reply allows and the largest batch the node
        # can have used (train.batch_size; its own count, canaries of a black-box audit
        # included, is not known here) give the largest learning rate it can have used.
        lowest = max(noise_multiplier - NOISE_MULTIPLIER_STEP, 0.0)
        lr = train.for_noise(lowest, max_grad_norm=clip, expected_batch=train.batch_size).learning_rate
    per_step = clip * (1.0 + noise_multiplier * (math.sqrt(dim) + NOISE_TAIL) / expected_batch)
    return BOUND_MARGIN * lr * momentum_gain(train.momentum, steps) * per_step


def momentum_gain(momentum: float, steps: int) -> float:
    """``sum_{t=1..T} (1 - m^t) / (1 - m)``: the most ``T`` heavy-ball steps add up unit gradients to."""
    if momentum == 0:
        return float(steps)
    return (steps - momentum * (1.0 - momentum**steps) / (1.0 - momentum)) / (1.0 - momentum)


def _metrics_problem(reply: Message) -> str | None:
    if ConfigKeys.METRICS_RECORD not in reply.content.metric_records:
        return f"the reply has no {ConfigKeys.METRICS_RECORD!r} metrics"
    metrics = reply.content.metric_records[ConfigKeys.METRICS_RECORD]
    for key in REQUIRED_METRICS:
        value = metrics.get(key)
        if not is_number(value):
            return f"metric {key!r} is missing or not a number"
        if not math.isfinite(value):
            return f"metric {key!r} is not finite ({value})"
    steps, examples = metrics[ConfigKeys.STEPS], metrics[ConfigKeys.NUM_EXAMPLES]
    if steps < 1 or examples < 1:
        return f"metrics claim {steps} steps on {examples} examples"
    noise = metrics.get(ConfigKeys.NOISE_MULTIPLIER, 0.0)
    if not is_finite_number(noise) or noise < 0:
        return f"metric {ConfigKeys.NOISE_MULTIPLIER!r} is not a finite number >= 0 ({noise!r})"
    return None


def _node_problem(reply: Message) -> str | None:
    if ConfigKeys.NODE_RECORD not in reply.content.config_records:
        return None
    info = reply.content.config_records[ConfigKeys.NODE_RECORD]
    if not isinstance(info.get(ConfigKeys.NODE_NAME), str):
        return "the node record has no name"
    for key in (ConfigKeys.CONVERSATIONS, ConfigKeys.POSITIVES, ConfigKeys.CAP, ConfigKeys.DELTA):
        value = info.get(key, 0)
        if not is_finite_number(value):
            return f"node record {key!r} is not a finite number"
    return None


def reply_problem(reply: Message, global_arrays: ArrayRecord, run: RunSettings) -> str | None:
    """Why a successful train reply must not be aggregated, or None when it may.

    The reason names the array or metric and the value at fault, never a weight value
    beyond a norm: it goes into the report.
    """
    problem = _metrics_problem(reply) or _node_problem(reply)
    if problem:
        return problem
    records = reply.content.array_records
    if list(records) != [ConfigKeys.ARRAYS_RECORD]:
        return f"expected one array record {ConfigKeys.ARRAYS_RECORD!r}, got {sorted(records) or 'none'}"
    record = records[ConfigKeys.ARRAYS_RECORD]
    expected, got = list(global_arrays.keys()), list(record.keys())
    if got != expected:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        return f"array names differ from the global model's (missing: {missing or 'none'}, unexpected: {extra or 'none'})"
    squared = 0.0
    dim = 0
    for name in expected:
        sent, array = global_arrays[name], record[name]
        if tuple(array.shape) != tuple(sent.shape):
            return f"array {name!r} has shape {tuple(array.shape)}, the global model's is {tuple(sent.shape)}"
        if array.dtype != WIRE:  # not the global's: a strategy's aggregate may be float64 (FedAdam)
            return f"array {name!r} has dtype {array.dtype}, nodes send {WIRE}"
        try:
            values = array.numpy()
        except Exception as error:  # noqa: BLE001 - bytes that do not decode are a malformed reply
            return f"array {name!r} cannot be read ({type(error).__name__})"
        if tuple(values.shape) != tuple(sent.shape) or str(values.dtype) != WIRE:
            return f"array {name!r} decodes to {values.dtype} {tuple(values.shape)}, not what its header says"
        finite = np.isfinite(values)
        if not finite.all():
            nan = int(np.isnan(values).sum())
            return f"array {name!r} holds {nan} NaN and {int((~finite).sum()) - nan} infinite values"
        delta = values.astype(np.float64) - sent.numpy().astype(np.float64)
        squared += float(np.dot(delta.ravel(), delta.ravel()))
        dim += values.size
    norm = math.sqrt(squared)
    metrics = reply.content.metric_records[ConfigKeys.METRICS_RECORD]
    bound = honest_update_bound(
        run,
        steps=int(metrics[ConfigKeys.STEPS]),
        num_examples=int(metrics[ConfigKeys.NUM_EXAMPLES]),
        noise_multiplier=float(metrics.get(ConfigKeys.NOISE_MULTIPLIER, 0.0)),
        dim=dim,
    )
    if bound is not None and not norm <= bound:
        return f"update norm {norm:.4g} exceeds the bound {bound:.4g} an honest node's update stays within"
    return None


@dataclass(frozen=True)
class ReplyScreen:
    """The check run_rounds applies to each round's train replies (a callable)."""

    run: RunSettings

    def __call__(self, global_arrays: ArrayRecord, replies: Iterable[Message]) -> dict[int, str]:
        """Node id -> reason, for each successful reply that must not be aggregated."""
        rejected: dict[int, str] = {}
        for reply in replies:
            if reply.has_error():
                continue
            problem = reply_problem(reply, global_arrays, self.run)
            if problem:
                rejected[reply.metadata.src_node_id] = problem
        return rejected


def aggregate_problem(arrays: ArrayRecord | Mapping[str, object]) -> str | None:
    """Why an aggregate (SecAgg+'s unmasked sum) must not become the global model, or None."""
    for name in arrays.keys():
        values = arrays[name].numpy()  # type: ignore[union-attr]
        if not np.isfinite(values).all():
            return f"the aggregate's array {name!r} holds NaN or infinite values"
    return None
