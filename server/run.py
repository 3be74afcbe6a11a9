"""A federated run from the server's side: rounds, final evaluation, report and model bundle."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from federation.errors import CheckpointError
from federation.assessment import EarlyRule, assess, prevalence_table
from federation.behaviour import run_behaviour_suite
from federation.bundle import BundleMeta, save_bundle
from federation.data.load import load_conversations
from federation.models.features import build_features
from federation.models.spec import build_encoder, build_head
from federation.models.weights import head_arrays, load_head_arrays
from federation.pretrain import pretrain_head
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.real_negatives import measure_real_negatives
from federation.report import build_report, model_card, protections, training_parts, write_report
from federation.runconfig import INPUT_KINDS, RunSettings
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays
from federation.privacy.accounting import run_central_epsilon
from server.checkpoint import CheckpointEachRound, load_checkpoint, restore_recorder, restore_strategy
from server.evaluation import merge_early_counts
from deploy.settings import DeploymentSettings
from server.progress_file import ProgressFile
from server.recorder import RunRecorder
from server.rounds import CallbackList, RoundPlan, TrainStep, answered_by_nodes, run_rounds, wait_for_nodes
from server.secagg import SecAggTrainStep
from server.strategies import build_strategy
from server.validation import ReplyScreen

log = logging.getLogger(__name__)

WAIT_FOR_NODES_S = 120.0


def _cache(run: RunSettings) -> EmbeddingCache:
    return EmbeddingCache(cache_path_for(run.cache_dir))


def _composed_config(run_dir: Path, run: RunSettings) -> dict[str, Any]:
    path = run_dir / "config.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return dict(run.to_flat())


def _resume(run: RunSettings, run_dir: Path, recorder: RunRecorder, strategy: Any) -> tuple[int, list[Any] | None]:
    """Restore the last checkpoint; return the round to start from and the weights (None: from scratch)."""
    checkpoint = load_checkpoint(run_dir)
    if checkpoint is None:
        recorder.note("resumed without a checkpoint (no round had ended): starting again from round 1")
        return 1, None
    if checkpoint.run_id != run.run_id:
        raise CheckpointError(
            f"{run_dir}: the checkpoint belongs to run {checkpoint.run_id}, not {run.run_id}; resume the folder it came from"
        )
    restore_recorder(recorder, checkpoint.history)
    restore_strategy(strategy, checkpoint.strategy)
    recorder.note(f"resumed after round {checkpoint.round} from the checkpoint")
    log.info("resuming run %s after round %d", run.run_id, checkpoint.round)
    return checkpoint.round + 1, checkpoint.weights


def run_federation(grid: Grid, run: RunSettings, deployment: DeploymentSettings | None = None) -> dict[str, Any]:
    """Run every round, evaluate, write the report and the bundle; return the report.

    After each round the global weights, the strategy state and the run's history so far
    are checkpointed in the run folder; with ``deployment.resume`` the run continues from
    the round after the checkpoint (same run id, so the nodes' ledgers continue the run's
    noise plan), and the report covers every round.
    """
    started = time.perf_counter()
    run_dir = Path(run.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder()
    encoder = build_encoder(run.model, cache=_cache(run))
    head = build_head(run.model, dim_in=encoder.dim, seed=run.seed)
    strategy = build_strategy(run)
    first_round, weights = 1, None
    public_part: dict[str, Any] | None = None
    if deployment is not None and deployment.resume:
        first_round, weights = _resume(run, run_dir, recorder, strategy)
    else:
        (run_dir / "progress.jsonl").unlink(missing_ok=True)
    if weights is not None:
        load_head_arrays(head, weights)
        if run.pretrain.enabled:
            public_part = {"resumed": True}  # the checkpoint's weights started from the pretrained head
    elif run.pretrain.enabled:
        log.info("pretraining the head on %d public conversations (no privacy cost)", run.pretrain.conversations)
        pretrained = pretrain_head(head, encoder, run)
        public_part = pretrained.as_dict()
    plan = RoundPlan(
        first_round=first_round,
        last_round=run.rounds,
        required_nodes=run.required_nodes,
        timeout_s=run.timeout_s,
        wait_for_nodes_s=deployment.wait_for_nodes_s if deployment is not None else WAIT_FOR_NODES_S,
        expected_nodes=run.nodes if deployment is not None else 0,
    )
    train_step: TrainStep | None = None
    if deployment is not None and deployment.secagg.enabled:
        train_step = SecAggTrainStep(
            grid, deployment.secagg, required_nodes=run.required_nodes, timeout_s=run.timeout_s
        )
    callbacks = CallbackList(
        (
            recorder,
            ProgressFile(run_dir / "progress.jsonl", recorder, central_epsilon=_central_epsilon_of(run)),
            CheckpointEachRound(run_dir, run.run_id, strategy, recorder),
        )
    )

    startup = time.perf_counter() - started
    arrays = run_rounds(
        grid=grid,
        strategy=strategy,
        arrays=arrays_to_record(head_arrays(head)),
        plan=plan,
        callbacks=callbacks,
        train_config=ConfigRecord({}),
        evaluate_config=ConfigRecord({}),
        train_step=train_step,
        check_replies=ReplyScreen(run),
    )
    load_head_arrays(head, record_to_arrays(arrays))
    threshold = recorder.last_histogram.best_threshold(beta=0.5) if recorder.last_histogram is not None else 0.5
    rule = EarlyRule(k=run.evaluation.early_k, last=run.evaluation.early_last, window=run.model.score_window)

    evaluation_started = time.perf_counter()
    final_wait_s = plan.wait_for_nodes_s if len(recorder.rounds) == run.rounds else 0.0
    federated_final = _federated_early_metrics(grid, strategy, arrays, run, recorder, threshold, final_wait_s)
    final: dict[str, Any] = {}
    if run.test_path:
        test = build_features(load_conversations(Path(run.test_path)), encoder, max_messages=run.model.max_messages)
        result = assess(head, test, threshold=threshold, rule=rule)
        final = {**result.metrics, "at_prevalence": prevalence_table(result, test.labels, threshold=threshold)}
    real_negatives = measure_real_negatives(
        head, encoder, threshold=threshold, rule=rule, max_messages=run.model.max_messages
    )
    behaviour = run_behaviour_suite(head, encoder, spec=run.model, threshold=threshold, rule=rule)
    final_evaluation = time.perf_counter() - evaluation_started

    timing = {
        "startup": startup,
        "encoding": max((n.encode_seconds for n in recorder.nodes.values()), default=0.0),
        "training": recorder.phase_seconds.get("training", 0.0),
        "evaluation": recorder.phase_seconds.get("evaluation", 0.0) + final_evaluation,
        "total": time.perf_counter() - started,
    }
    report = build_report(
        run=run,
        config=_composed_config(run_dir, run),
        recorder=recorder,
        final=final,
        federated_final=federated_final,
        timing=timing,
        extra={
            **_deployment_extra(run, recorder, deployment),
            "real_negatives": real_negatives,
            "behaviour": behaviour,
            "training": training_parts(run, public_part),
        },
    )
    write_report(report, run_dir)
    save_bundle(
        run_dir / "model",
        head=head,
        meta=BundleMeta(
            spec=run.model,
            encoder_id=encoder.id,
            dim_in=encoder.dim,
            threshold=threshold,
            rule=rule,
            provenance={
                "run_id": run.run_id,
                "mode": run.mode,
                "rounds": len(recorder.rounds),
                "trained_with_canaries": bool(report.get("audit", {}).get("nodes")) or trained_on_canaries(run, recorder),
                "audit": (
                    {
                        "kind": report["audit"]["kind"],
                        "canaries_per_node": report["audit"]["canaries_per_node"],
                        "canary_gradients_in_weights": False,  # they live in audit coordinates, never exported
                        # black-box: canary conversations were training data, so they are in the weights
                        "canary_conversations_in_training": trained_on_canaries(run, recorder),
                        "guarantee_failed": report["audit"]["guarantee_failed"],
                    }
                    if report.get("audit")
                    else None
                ),
            },
        ),
        card=model_card(report),
    )
    log.info("report written to %s", run_dir / "report.json")
    return report


def _central_epsilon_of(run: RunSettings) -> Callable[[int], float] | None:
    """Under central DP, the client-level epsilon after a number of rounds (as the report's privacy section)."""
    if run.privacy.mode != "central":
        return None
    return lambda rounds: run_central_epsilon(run, rounds)


def trained_on_canaries(run: RunSettings, recorder: RunRecorder) -> bool:
    """Whether a black-box audit put canary conversations into the training of these weights.

    Any node that trained in a run asking one did (its policy accepted it, or it declined
    and did not train), whether or not it later reported the audit.
    """
    return run.privacy.audit in INPUT_KINDS and any(node.rounds for node in recorder.nodes.values())


def _deployment_extra(run: RunSettings, recorder: RunRecorder, deployment: DeploymentSettings | None) -> dict[str, Any]:
    """The report's protections and, for a production run, how it was deployed."""
    if deployment is None:
        return {"protections": protections(run)}
    return {
        "protections": protections(
            run,
            tls=deployment.tls,
            authentication=deployment.node_authentication,
            secagg=deployment.secagg.enabled,
        ),
        "deployment": {
            "superlink": deployment.superlink,
            "expected_nodes": run.nodes,
            "min_nodes": run.required_nodes,
            "wait_for_nodes_s": deployment.wait_for_nodes_s,
            "secagg": {
                "enabled": deployment.secagg.enabled,
                "num_shares": deployment.secagg.num_shares,
                "reconstruction_threshold": deployment.secagg.reconstruction_threshold,
                "clipping_range": deployment.secagg.clipping_range,
                "quantization_range": deployment.secagg.quantization_range,
            },
            "rounds_planned": run.rounds,
            "rounds_done": len(recorder.rounds),
            "complete": len(recorder.rounds) == run.rounds,
            "resumed": deployment.resume,
        },
    }


def _federated_early_metrics(grid, strategy, arrays, run: RunSettings, recorder: RunRecorder, threshold: float, wait_s: float) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One more evaluation on the nodes' validation splits, at the chosen threshold, for early-warning counts."""
    if not recorder.rounds:
        return {}
    if wait_for_nodes(grid, run.required_nodes, wait_s) < run.required_nodes:
        recorder.note("final evaluation skipped: too few nodes online")
        return {}
    config = ConfigRecord({ConfigKeys.THRESHOLD: float(threshold)})
    last = recorder.rounds[-1].round
    sent = list(strategy.configure_evaluate(last, arrays, config, grid))
    replies = [r for r in answered_by_nodes(grid.send_and_receive(messages=sent, timeout=run.timeout_s)) if not r.has_error()]
    counts = merge_early_counts(replies)
    return {"threshold": threshold, **counts.metrics()} if counts is not None else {}
