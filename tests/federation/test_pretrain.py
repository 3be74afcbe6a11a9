"""Public pretraining: the server's head starts from the public set, and the report says so."""

from __future__ import annotations

import numpy as np
import pytest

from federation.errors import ConfigError
from federation.models.ngram import HashedNgramEncoder
from federation.models.spec import ModelSpec, build_head
from federation.models.weights import head_arrays
from federation.pretrain import pretrain_head
from federation.report import report_markdown, training_lines, training_parts
from federation.runconfig import PretrainSettings, RunSettings

SPEC = ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0, ngram_dim=256)


def _run(**pretrain: object) -> RunSettings:
    return RunSettings(
        run_id="r", run_dir=".", rounds=1, nodes=1, seed=3, model=SPEC,
        pretrain=PretrainSettings(enabled=True, **pretrain),  # type: ignore[arg-type]
    )  # fmt: skip


def test_pretraining_learns_from_the_public_set_and_keeps_its_best_epoch() -> None:
    encoder = HashedNgramEncoder(dim=SPEC.ngram_dim)
    run = _run(conversations=150, epochs=3, learning_rate=0.5)
    head = build_head(SPEC, dim_in=encoder.dim, seed=run.seed)
    before = head_arrays(head)
    result = pretrain_head(head, encoder, run)
    assert result.conversations == 150 and result.positives == 45  # the set's positive rate, 0.3
    assert 1 <= result.best_epoch <= 3 and result.epochs == 3
    assert result.validation_f05 > 0.5  # the held-out public fifth: better than a constant guess
    assert any(not np.allclose(a, b) for a, b in zip(before, head_arrays(head), strict=True))
    again = build_head(SPEC, dim_in=encoder.dim, seed=run.seed)
    pretrain_head(again, encoder, run)  # the same run pretrains the same head
    assert all(np.allclose(a, b) for a, b in zip(head_arrays(again), head_arrays(head), strict=True))


def test_the_report_says_which_part_of_training_was_public_and_which_private() -> None:
    run = _run()
    public = {
        "conversations": 3000,
        "positives": 900,
        "epochs": 20,
        "best_epoch": 7,
        "validation_f05": 0.9,
        "validation_auprc": 0.9,
        "seconds": 1.0,
    }
    parts = training_parts(run, public)
    assert parts["public"]["conversations"] == 3000 and "no text with the nodes' data" in parts["public"]["privacy"]
    assert parts["private"]["privacy"] == "record"
    line = training_lines(parts)[0]
    assert "pretrained on 3000 public conversations" in line and "epoch 7 of 20" in line and "privacy record" in line
    assert training_lines(training_parts(run, None))[0].startswith("Training: no public pretraining")
    text = report_markdown(
        {
            "run_id": "r",
            "mode": "federated",
            "privacy": {"guarantee": "none"},
            "protections": {},
            "timing": {"total": 1.0},
            "nodes": {},
            "training": parts,
        }
    )
    assert "pretrained on 3000 public conversations" in text


@pytest.mark.parametrize(
    ("key", "value"),
    [("epochs", 0), ("learning_rate", -1.0), ("conversations", 3), ("positive_rate", 0.0), ("enabled", "yes")],
)
def test_bad_pretraining_settings_fail_with_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"pretrain.{key}"):
        PretrainSettings(**{key: value})  # type: ignore[arg-type]
