"""Pretraining the head on public data, at no privacy cost, before the nodes fine-tune it with DP-SGD.

The server trains the run's head, without DP, on the public set of
:mod:`federation.data.synthetic.public` (synthetic chats whose scripted lines and real
chit-chat share no text with the nodes' data) and starts round 1 from the result. The
nodes' DP-SGD then starts near a useful model: under the noise of a small budget, fewer
and smaller steps are enough. Nothing private is read: the public set is a pure function
of the settings, rebuilt identically by anyone, so its part of training needs no
accounting; the report says which part of training was public and which private.

Training is the shared loop (:func:`federation.training.train`, plain); each epoch is one
call, and the weights of the epoch with the best F0.5 on a held-out fifth of the public set
are kept (public data: choosing on it costs nothing either).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from federation.data.split import split_validation
from federation.data.synthetic.public import PublicSetSettings, public_conversations
from federation.histograms import ScoreHistogram
from federation.models.encoder import MessageEncoder
from federation.models.features import build_features
from federation.models.weights import head_arrays, load_head_arrays
from federation.runconfig import PretrainSettings, RunSettings
from federation.training import TrainSettings, evaluate, train

__all__ = ["PretrainResult", "PretrainSettings", "pretrain_head", "public_set_settings"]

log = logging.getLogger(__name__)

#: Share of the public set held out to pick the epoch.
VALIDATION_FRACTION = 0.2
#: Bins of the held-out fifth's score histogram (its F0.5 picks the epoch).
BINS = 200


@dataclass(frozen=True, slots=True)
class PretrainResult:
    """What the public part of training was: for the report's ``training.public``."""

    conversations: int
    positives: int
    epochs: int
    best_epoch: int
    validation_f05: float
    validation_auprc: float
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def public_set_settings(run: RunSettings) -> PublicSetSettings:
    """The public set a run pretrains on: its ``pretrain`` sizes, the run's seed and message limit."""
    return PublicSetSettings(
        conversations=run.pretrain.conversations,
        positive_rate=run.pretrain.positive_rate,
        seed=run.seed,
        max_messages=run.model.max_messages,
    )


def pretrain_head(head: nn.Module, encoder: MessageEncoder, run: RunSettings) -> PretrainResult:
    """Train ``head`` in place on ``run``'s public set (``run.pretrain``); return what was done.

    The head is left with the weights of the best epoch. The public set, the windows and
    the batches follow from the run's seed; windows are ``train.train_window`` messages and
    scores are taken as the nodes score (``model.score_window``). The encoder's cache keeps
    the public set's vectors for the next run.
    """
    settings, seed = run.pretrain, run.seed
    started = time.perf_counter()
    public = public_conversations(public_set_settings(run))
    train_part, validation_part = split_validation(public, fraction=VALIDATION_FRACTION, seed=seed)
    data = build_features(train_part, encoder, max_messages=run.model.max_messages)
    validation = build_features(validation_part, encoder, max_messages=run.model.max_messages)
    best: tuple[float, float, int, list[Any]] | None = None
    for epoch in range(1, settings.epochs + 1):
        step = TrainSettings(
            local_epochs=1.0,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            momentum=settings.momentum,
            train_window=run.train.train_window,
            seed=seed * 1000 + epoch,
        )
        load_head_arrays(head, train(head=head, data=data, settings=step, dp=None).arrays)
        scored = evaluate(head=head, data=validation, window=run.model.score_window)
        histogram = ScoreHistogram.from_scores(scored.scores, scored.labels, bins=BINS)
        f05 = histogram.metrics_at(histogram.best_threshold(beta=0.5)).f05
        log.debug("pretraining epoch %d: held-out public F0.5 %.3f", epoch, f05)
        if best is None or f05 > best[0]:
            best = (f05, histogram.auprc(), epoch, head_arrays(head))
    assert best is not None  # epochs >= 1
    load_head_arrays(head, best[3])
    return PretrainResult(
        conversations=len(public),
        positives=sum(c.label for c in public),
        epochs=settings.epochs,
        best_epoch=best[2],
        validation_f05=best[0],
        validation_auprc=best[1],
        seconds=time.perf_counter() - started,
    )
