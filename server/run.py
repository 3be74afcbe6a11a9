"""A federated run from the server's side: rounds, final evaluation, report and model bundle."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from federation.assessment import EarlyRule, assess
from federation.bundle import BundleMeta, save_bundle
from federation.data.load import load_conversations
from federation.models.features import build_features
from federation.models.spec import build_encoder, build_head
from federation.models.weights import head_arrays, load_head_arrays
from federation.models.cache import EmbeddingCache, default_cache_path
from federation.report import build_report, model_card, write_report
from federation.runconfig import RunSettings
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays
from server.evaluation import merge_early_counts
from server.recorder import RunRecorder
from server.rounds import RoundPlan, run_rounds
from server.strategies import build_strategy

log = logging.getLogger(__name__)

WAIT_FOR_NODES_S = 120.0


def _cache(run: RunSettings) -> EmbeddingCache:
    return EmbeddingCache(Path(run.cache_dir) / "embeddings.sqlite" if run.cache_dir else default_cache_path())


def _composed_config(run_dir: Path, run: RunSettings) -> dict[str, Any]:
    path = run_dir / "config.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return dict(run.to_flat())


def run_federation(grid: Grid, run: RunSettings) -> dict[str, Any]:
    """Run every round, evaluate, write the report and the bundle; return the report."""
    started = time.perf_counter()
    run_dir = Path(run.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder(progress_path=run_dir / "progress.jsonl")
    encoder = build_encoder(run.model, cache=_cache(run))
    head = build_head(run.model, dim_in=encoder.dim, seed=run.seed)
    strategy = build_strategy(run)
    plan = RoundPlan(
        first_round=1,
        last_round=run.rounds,
        required_nodes=run.required_nodes,
        timeout_s=run.timeout_s,
        wait_for_nodes_s=WAIT_FOR_NODES_S,
    )
    startup = time.perf_counter() - started
    arrays = run_rounds(
        grid=grid,
        strategy=strategy,
        arrays=arrays_to_record(head_arrays(head)),
        plan=plan,
        recorder=recorder,
        train_config=ConfigRecord({}),
        evaluate_config=ConfigRecord({}),
    )
    load_head_arrays(head, record_to_arrays(arrays))
    threshold = recorder.last_histogram.best_threshold(beta=0.5) if recorder.last_histogram is not None else 0.5
    rule = EarlyRule(k=run.evaluation.early_k, last=run.evaluation.early_last, window=run.model.score_window)

    evaluation_started = time.perf_counter()
    federated_final = _federated_early_metrics(grid, strategy, arrays, run, recorder, threshold)
    final: dict[str, Any] = {}
    if run.test_path:
        test = build_features(load_conversations(Path(run.test_path)), encoder, max_messages=run.model.max_messages)
        final = assess(head, test, threshold=threshold, rule=rule).metrics
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
            provenance={"run_id": run.run_id, "mode": run.mode, "rounds": len(recorder.rounds)},
        ),
        card=model_card(report),
    )
    log.info("report written to %s", run_dir / "report.json")
    return report


def _federated_early_metrics(grid, strategy, arrays, run: RunSettings, recorder: RunRecorder, threshold: float) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One more evaluation on the nodes' validation splits, at the chosen threshold, for early-warning counts."""
    if not recorder.rounds:
        return {}
    config = ConfigRecord({ConfigKeys.THRESHOLD: float(threshold)})
    last = recorder.rounds[-1]["round"]
    sent = list(strategy.configure_evaluate(last, arrays, config, grid))
    replies = [r for r in grid.send_and_receive(messages=sent, timeout=run.timeout_s) if not r.has_error()]
    counts = merge_early_counts(replies)
    return {"threshold": threshold, **counts.metrics()} if counts is not None else {}
