"""The round loop: Flower's strategy hooks, driven with deadlines, callbacks and a clean stop.

``Strategy.start`` always begins at round 1, waits for nodes without a deadline and cannot
stop early. This loop calls the same hooks (``configure_train``, ``aggregate_train``,
``configure_evaluate``, ``aggregate_evaluate`` is replaced by histogram merging) and adds
what a federation of organisations needs: a deadline on node availability, a clean end when
no node may train any more, and a callback after each round (checkpoints, progress).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from server.evaluation import histogram_metrics, merge_histograms, weighted_loss
from server.recorder import RunRecorder

log = logging.getLogger(__name__)

RoundCallback = Callable[[int, ArrayRecord], None]


@dataclass(frozen=True)
class RoundPlan:
    """Which rounds to run and how long to wait."""

    first_round: int
    last_round: int
    required_nodes: int
    timeout_s: float
    wait_for_nodes_s: float


def wait_for_nodes(grid: Grid, required: int, deadline_s: float, *, poll_s: float = 1.0) -> int:
    """Wait until ``required`` nodes are connected or the deadline passes; return how many are."""
    end = time.monotonic() + deadline_s
    while True:
        connected = len(list(grid.get_node_ids()))
        if connected >= required or time.monotonic() >= end:
            return connected
        time.sleep(poll_s)


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
) -> ArrayRecord:
    """Run rounds ``plan.first_round .. plan.last_round``; return the final global weights."""
    for server_round in range(plan.first_round, plan.last_round + 1):
        connected = wait_for_nodes(grid, plan.required_nodes, plan.wait_for_nodes_s)
        if connected < plan.required_nodes:
            recorder.note(
                f"round {server_round}: only {connected} of the {plan.required_nodes} required nodes connected "
                f"within {plan.wait_for_nodes_s:.0f} s; stopping the run"
            )
            break
        recorder.start_round(server_round)
        phase_started = time.perf_counter()
        sent = list(strategy.configure_train(server_round, arrays, ConfigRecord(dict(train_config)), grid))
        replies = grid.send_and_receive(messages=sent, timeout=plan.timeout_s)
        trained = recorder.on_train(server_round, sent, replies)
        if trained:
            new_arrays, _ = strategy.aggregate_train(server_round, trained)
            if new_arrays is not None:
                arrays = new_arrays
        else:
            recorder.note(f"round {server_round}: no node trained; the global model is unchanged")

        recorder.add_phase_seconds("training", time.perf_counter() - phase_started)
        phase_started = time.perf_counter()
        sent_eval = list(strategy.configure_evaluate(server_round, arrays, ConfigRecord(dict(evaluate_config)), grid))
        eval_replies = recorder.on_evaluate(
            server_round, sent_eval, grid.send_and_receive(messages=sent_eval, timeout=plan.timeout_s)
        )
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
            recorder.note(f"round {server_round}: every node has spent its privacy budget; ending the run")
            break
    return arrays
