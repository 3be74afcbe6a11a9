"""Baselines in the federated report's shape: all data pooled (centralized) or each node alone (local).

They use the same data split, model, training function and privacy ledger code as the
nodes, so the value of federating and the cost of privacy can be read side by side.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from federation.assessment import EarlyRule, assess, prevalence_table
from federation.bundle import BundleMeta, save_bundle
from federation.data.load import load_conversations
from federation.data.nodes import read_simulated_node
from federation.data.split import split_device
from federation.data.types import Conversation
from federation.data.store import is_store
from federation.errors import ConfigError, PrivacyBudgetExceeded
from federation.histograms import ScoreHistogram
from federation.history import NodeRecord, RoundRecord, RunHistory
from federation.io import atomic_write_json
from federation.models.features import FeatureSet, build_features
from federation.models.spec import build_encoder, build_head
from federation.models.weights import load_head_arrays
from federation.privacy.ledger import PrivacyLedger
from federation.real_negatives import measure_real_negatives
from federation.report import build_report, model_card, write_report
from federation.runconfig import RunSettings
from federation.local_round import PartyPrivacy, local_round
from federation.training import evaluate
from simulations.encoding import run_cache
from simulations.prepare import prepare_data
from simulations.progress import BarsFactory, no_bars
from conf.settings import plain
from simulations.settings import run_settings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Party:
    """Who trains in a baseline: the pooled data, or one node alone."""

    name: str
    kind: str
    train: FeatureSet
    validation: FeatureSet
    conversations: int
    positives: int
    pooled_nodes: int = 1


def _load_parties(settings: RunSettings, encoder: Any) -> list[tuple[str, str, list[Conversation], list[Conversation]]]:
    """Each node's train and validation conversations, split as its virtual node splits them."""
    if settings.mode == "local" and is_store(Path(settings.data_dir)):
        raise ConfigError(
            f"mode=local trains one model per node, and {settings.data_dir} is a store of {settings.nodes} small "
            "nodes (a chat or a few each); use mode=centralized for a baseline"
        )
    parties = []
    for i, kind in enumerate(settings.kinds):
        conversations = read_simulated_node(Path(settings.data_dir), i)
        train_part, validation_part = split_device(
            conversations, fraction=settings.evaluation.validation_fraction, seed=settings.seed
        )
        parties.append((f"node-{i}", kind, train_part, validation_part))
    return parties


def _featurise(
    name: str,
    kind: str,
    train_part: list[Conversation],
    validation_part: list[Conversation],
    settings: RunSettings,
    encoder: Any,
    *,
    pooled_nodes: int = 1,
) -> Party:
    spec = settings.model
    return Party(
        name=name,
        kind=kind,
        train=build_features(train_part, encoder, max_messages=spec.max_messages),
        validation=build_features(validation_part, encoder, max_messages=spec.max_messages),
        conversations=len(train_part) + len(validation_part),
        positives=sum(c.label for c in train_part) + sum(c.label for c in validation_part),
        pooled_nodes=pooled_nodes,
    )


def _train_rounds(
    party: Party,
    settings: RunSettings,
    encoder_dim: int,
    ledger_dir: Path,
    history: RunHistory,
    *,
    evaluate_each_round: bool,
    on_round: Callable[[], None] | None,
    keep_best: bool,
) -> tuple[Any, ScoreHistogram | None, float | None]:
    """Train one party for the run's rounds with ``settings``; record each round (see :func:`train_party`).

    Returns the head, its validation histogram and, with ``keep_best``, its validation F0.5.
    """
    head = build_head(settings.model, dim_in=encoder_dim, seed=settings.seed)
    record = history.nodes.setdefault(party.name, NodeRecord(name=party.name, kind=party.kind))
    record.conversations, record.positives = party.conversations, party.positives
    ledger_path = ledger_dir / f"{party.name}.json"
    cap = settings.privacy.simulated_cap
    trainer = PartyPrivacy(name=party.name, ledger_path=ledger_path, cap=cap, delta=settings.privacy.delta)
    if settings.privacy.mode == "record" and not ledger_path.exists():
        PrivacyLedger.create(
            ledger_path, node=party.name, cap=cap, delta=settings.privacy.delta, accountant=settings.privacy.accountant
        )
    histogram = None
    best: tuple[float, int, list[np.ndarray], ScoreHistogram] | None = None
    for server_round in range(1, settings.rounds + 1):
        started = time.perf_counter()
        try:
            result = local_round(
                run=settings,
                party=trainer,
                head=head,
                data=party.train,
                round=server_round,
                batch_size=settings.party_batch_size(len(party.train), pooled_nodes=party.pooled_nodes),
                audit=False,  # a baseline reports no audit
            )
            if settings.privacy.mode == "record":
                record.epsilon, record.delta, record.cap = float(result.epsilon or 0.0), settings.privacy.delta, cap
        except PrivacyBudgetExceeded as error:
            record.declined[server_round] = str(error)
            history.notes.append(f"{party.name} round {server_round}: {error}")
            break
        load_head_arrays(head, result.arrays)
        if on_round is not None:
            on_round()
        record.rounds.append(server_round)
        record.steps += result.steps
        record.train_seconds += result.seconds
        if not (evaluate_each_round or keep_best) and server_round < settings.rounds:
            continue
        evaluation = evaluate(head=head, data=party.validation, window=settings.model.score_window)
        histogram = ScoreHistogram.from_scores(evaluation.scores, evaluation.labels, bins=settings.evaluation.histogram_bins)
        threshold = histogram.best_threshold(beta=0.5)
        validation_f05 = histogram.metrics_at(threshold).f05
        if keep_best and (best is None or validation_f05 > best[0]):
            best = (validation_f05, server_round, [a.copy() for a in result.arrays], histogram)
        if not evaluate_each_round and server_round < settings.rounds:
            continue
        history.rounds.append(
            RoundRecord(
                round=server_round,
                node=party.name,
                train_loss=result.train_loss,
                participants=[party.name],
                metrics={**histogram.metrics_at(threshold).as_dict(), "auprc": histogram.auprc(), "threshold": threshold},
                eval_loss=evaluation.loss,
                epsilon={party.name: record.epsilon},
                seconds=time.perf_counter() - started,
            )
        )
    if best is not None and best[1] != record.rounds[-1]:
        load_head_arrays(head, best[2])
        histogram = best[3]
        history.notes.append(f"{party.name}: kept round {best[1]} of {record.rounds[-1]}, the best validation F0.5 ({best[0]:.3f})")
    return head, histogram, (best[0] if best is not None else None)


#: Learning rates a party without DP tries, as multiples of the run's ``train.learning_rate``.
PLAIN_STEP_SCALES: tuple[float, ...] = (1.0, 0.1, 0.01)


def step_scales(settings: RunSettings) -> tuple[float, ...]:
    """Learning rates a party tries, as multiples of ``train.learning_rate``: several without DP, the run's own under DP."""
    return PLAIN_STEP_SCALES if settings.privacy.mode == "none" else (1.0,)


def train_party(
    party: Party,
    settings: RunSettings,
    encoder_dim: int,
    ledger_dir: Path,
    history: RunHistory,
    *,
    evaluate_each_round: bool = True,
    on_round: Callable[[], None] | None = None,
) -> tuple[Any, ScoreHistogram | None]:
    """Train one party for the run's rounds with the shared training function; record each round.

    The validation split is scored after every round (for the per-round report) or, when
    only the final model matters, after the last one (to choose its threshold).
    ``on_round`` is called after each round trained (a progress bar's step).

    A party without DP chooses its own step size and round on its validation split: the
    run's ``train`` settings are chosen for DP-SGD, whose clipping shrinks every gradient
    to at most ``max_grad_norm``; unclipped, the same learning rate overshoots and the
    loss oscillates, so a non-private baseline trained with it says more about those
    settings than about what the data allows. It trains at each of
    :data:`PLAIN_STEP_SCALES` times the run's learning rate and keeps the learning rate and
    round with the best validation F0.5 (ties: the larger rate, the earlier round); the
    report's notes say which. The choice reads the party's own validation split, never the
    test file. A party under DP trains once, with the run's settings, and keeps its last
    round, as the federation does: choosing among rounds or rates on private data is a
    release no epsilon covers.
    """
    plain = settings.privacy.mode == "none"
    tried = []
    seconds = 0.0
    for index, scale in enumerate(step_scales(settings)):
        rate = settings.train.learning_rate * scale
        scaled = dataclasses.replace(settings, train=dataclasses.replace(settings.train, learning_rate=rate))
        scratch = RunHistory()
        head, histogram, score = _train_rounds(
            party, scaled, encoder_dim, ledger_dir, scratch,
            evaluate_each_round=evaluate_each_round, on_round=on_round, keep_best=plain,
        )  # fmt: skip
        seconds += scratch.nodes[party.name].train_seconds
        tried.append((float("-inf") if score is None else score, -index, rate, head, histogram, scratch))
    _, _, rate, head, histogram, chosen = max(tried, key=lambda entry: entry[:2])
    record = chosen.nodes[party.name]
    record.train_seconds = seconds  # every rate tried is training time
    history.nodes[party.name] = record
    history.rounds.extend(chosen.rounds)
    if plain:
        history.notes.append(
            f"{party.name}: learning rate {rate:g} of {', '.join(f'{settings.train.learning_rate * s:g}' for s in PLAIN_STEP_SCALES)} "
            "tried without DP, chosen on validation F0.5"
        )
    history.notes.extend(chosen.notes)
    return head, histogram


def run_baseline(cfg: DictConfig, run_dir: Path, *, bars: BarsFactory = no_bars) -> dict[str, Any]:
    """``mode=centralized`` or ``mode=local``: train without Flower, write the same report."""
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir, test_path = prepare_data(cfg, run_dir)
    settings = run_settings(cfg, run_dir=run_dir, data_dir=data_dir, test_path=test_path, ledger_dir=run_dir / "ledgers")
    atomic_write_json(run_dir / "config.json", plain(cfg))
    with bars() as progress:
        report = baseline_report(
            settings,
            config=plain(cfg),
            started=started,
            encode_progress=progress.tracker("encoding texts", unit="texts") if progress else None,
            train_progress=progress.tracker("training", unit="rounds") if progress else None,
        )
    write_report(report, run_dir)
    return report


def baseline_report(
    settings: RunSettings,
    *,
    config: dict[str, Any],
    started: float,
    write_bundle: bool = True,
    evaluate_each_round: bool = True,
    encode_progress: Callable[[int, int], None] | None = None,
    train_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train and assess a baseline; returns the report (also writes the bundle for centralized).

    ``encode_progress`` follows the encoder (MiniLM), ``train_progress`` is told
    ``(party-rounds trained, party-rounds planned)``; both are for a command's progress bars.
    """
    run_dir = Path(settings.run_dir)
    encoder = build_encoder(settings.model, cache=run_cache(settings))
    if encode_progress is not None and hasattr(encoder, "on_progress"):
        encoder.on_progress = encode_progress
    encode_started = time.perf_counter()
    raw = _load_parties(settings, encoder)
    if settings.mode == "centralized":
        pooled_train = [c for _, _, t, _ in raw for c in t]
        pooled_validation = [c for _, _, _, v in raw for c in v]
        parties = [_featurise("pooled", "all", pooled_train, pooled_validation, settings, encoder, pooled_nodes=len(raw))]
    else:
        parties = [_featurise(name, kind, t, v, settings, encoder) for name, kind, t, v in raw]
    test = build_features(load_conversations(Path(settings.test_path)), encoder, max_messages=settings.model.max_messages)
    encoding = time.perf_counter() - encode_started
    rule = EarlyRule(k=settings.evaluation.early_k, last=settings.evaluation.early_last, window=settings.model.score_window)
    history = RunHistory()
    results = {}
    heads = {}
    planned, trained = len(parties) * settings.rounds * len(step_scales(settings)), 0

    def step() -> None:
        nonlocal trained
        trained += 1
        if train_progress is not None:
            train_progress(trained, planned)

    if train_progress is not None:
        train_progress(0, planned)
    for party in parties:
        head, histogram = train_party(
            party, settings, encoder.dim, run_dir / "ledgers", history, evaluate_each_round=evaluate_each_round, on_round=step
        )
        threshold = histogram.best_threshold(beta=0.5) if histogram is not None else 0.5
        results[party.name] = assess(head, test, threshold=threshold, rule=rule)
        heads[party.name] = (head, threshold)
    per_party = {name: result.metrics for name, result in results.items()}
    extra: dict[str, Any] = {}
    if settings.mode == "centralized":
        head, threshold = heads["pooled"]
        result = results["pooled"]
        final = {**result.metrics, "at_prevalence": prevalence_table(result, test.labels, threshold=threshold)}
        extra["real_negatives"] = measure_real_negatives(
            head, encoder, threshold=threshold, rule=rule, max_messages=settings.model.max_messages
        )
    else:
        keys = [k for k, v in next(iter(per_party.values())).items() if isinstance(v, (int, float))]
        final = {key: float(np.mean([m[key] for m in per_party.values()])) for key in keys}
        extra["parties"] = per_party
    training = sum(n.train_seconds for n in history.nodes.values())
    report = build_report(
        run=settings,
        config=config,
        recorder=history,
        final=final,
        federated_final={},
        timing={"encoding": encoding, "training": training, "total": time.perf_counter() - started},
        extra=extra,
    )
    if write_bundle and settings.mode == "centralized":
        head, threshold = heads["pooled"]
        save_bundle(
            run_dir / "model",
            head=head,
            meta=BundleMeta(spec=settings.model, encoder_id=encoder.id, dim_in=encoder.dim, threshold=threshold, rule=rule, provenance={"run_id": settings.run_id, "mode": "centralized"}),
            card=model_card(report),
        )
    return report
