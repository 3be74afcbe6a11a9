"""Batch scoring and evaluation: output shape, agreement with the run's assessment, suspects."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cesagram.cli import main
from federation.assessment import assess
from federation.data.indicators import INDICATOR_CODES
from federation.early import warning_at
from federation.models.features import build_features
from federation.models.heads import NgramHead
from federation.models.windows import window_scores
from federation.data.types import Conversation, Message
from federation.scoring import (
    IndicatorDetector,
    Scorer,
    author_identification,
    explain_window,
    load_scoring_model,
    true_predators,
)

KEYS = ["id", "score", "alert", "alert_at", "suspect", "evidence", "window_scores"]


@pytest.fixture(scope="module")
def scored(ngram_bundle):  # noqa: ANN001, ANN201
    model = load_scoring_model(ngram_bundle.model, cache=None)
    scorer = Scorer(model, detector=IndicatorDetector.for_encoder(model.encoder))
    return model, scorer.score(ngram_bundle.train), ngram_bundle.train


def test_scores_and_alerts_are_the_assessments(ngram_bundle, scored) -> None:  # noqa: ANN001
    model, result, _ = scored
    features = build_features(ngram_bundle.train, model.encoder, max_messages=model.max_messages)
    expected = window_scores(model.head, features, window=model.window)
    assert sum(s.alert for s in result.scores) >= 3  # the fixture model does warn: the checks below mean something
    for score, per_message in zip(result.scores, expected, strict=True):
        assert score.score == pytest.approx(float(per_message.max()), abs=1e-6)
        assert score.alert_at == warning_at(per_message, threshold=model.threshold, k=model.rule.k, last=model.rule.last)
        record = score.to_record()
        assert record["window_scores"] == pytest.approx(per_message.tolist(), abs=1e-6)
        assert record["score"] == max(record["window_scores"])


def test_suspect_and_evidence_only_for_flagged_and_well_formed(scored) -> None:  # noqa: ANN001
    model, result, train = scored
    conversations = {c.id: c for c in train}
    for score in result.scores:
        record = score.to_record()
        assert list(record) == KEYS
        assert 0.0 <= record["score"] <= 1.0 and record["alert"] == (record["alert_at"] is not None)
        if score.score < model.threshold:
            assert record["suspect"] is None and record["evidence"] == []
            continue
        conversation = conversations[score.id]
        assert record["suspect"] in conversation.authors
        weights = [line["weight"] for line in record["evidence"]]
        assert 1 <= len(weights) <= 5 and weights == sorted(weights, reverse=True)
        assert all(0 < w <= 1 for w in weights) and sum(weights) <= 1.0 + 1e-3
        end = score.alert_at or len(conversation.messages)
        for line in record["evidence"]:
            assert 1 <= line["line"] <= end
            assert line["author"] == conversation.messages[line["line"] - 1].author
            assert set(line["indicators"]) <= set(INDICATOR_CODES)


def test_score_command_writes_one_line_per_conversation(ngram_bundle, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--model", str(ngram_bundle.model), str(ngram_bundle.test_file), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [c.id for c in ngram_bundle.test]
    assert all(list(line) == KEYS for line in lines)
    assert main(["score", "--model", str(ngram_bundle.model), str(ngram_bundle.test_file)]) == 0
    stdout = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert stdout == lines


def test_evaluate_reproduces_the_assessment(ngram_bundle, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "metrics.json"
    code = main(["evaluate", "--model", str(ngram_bundle.model), str(ngram_bundle.test_file), "--out", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    model = load_scoring_model(ngram_bundle.model, cache=None)
    features = build_features(ngram_bundle.test, model.encoder, max_messages=model.max_messages)
    expected = assess(model.head, features, threshold=model.threshold, rule=model.rule).metrics
    for key in ("f05", "f1", "precision", "recall", "auprc", "latency_f1", "speed", "erde5", "erde50", "tp", "fp"):
        assert printed["metrics"][key] == pytest.approx(expected[key], abs=1e-9), key
    text = json.dumps(printed)
    assert not any(author in text for c in ngram_bundle.test for author in c.authors)  # counts only, no ids
    authors = printed["authors"]
    assert authors["true"] == len({c.groomer for c in ngram_bundle.test if c.groomer})
    assert authors["predicted"] <= printed["data"]["warned"]
    assert 0.0 <= authors["f05"] <= 1.0


def test_author_f05_on_a_hand_example() -> None:
    # predicted {a, b, x}, truth {a, b, c, d}: tp 2, fp 1, fn 2
    figures = author_identification(["a", "b", "x", "a"], {"a", "b", "c", "d"})
    assert (figures["tp"], figures["fp"], figures["fn"]) == (2, 1, 2)
    assert figures["precision"] == pytest.approx(2 / 3)
    assert figures["recall"] == pytest.approx(0.5)
    assert figures["f05"] == pytest.approx(1.25 * (2 / 3) * 0.5 / (0.25 * (2 / 3) + 0.5))
    empty = author_identification([], {"a"})
    assert empty["f05"] == 0.0 and empty["precision"] == 0.0


def test_true_predators_adds_listed_authors_who_write_here() -> None:
    conversations = [
        Conversation(id="1", label=1, messages=(Message("p1", "hi"), Message("k1", "hey")), groomer="p1"),
        Conversation(id="2", label=1, messages=(Message("p2", "hi"), Message("p3", "yo"), Message("k2", "hey")), groomer="p2"),
    ]
    assert true_predators(conversations, predators=None) == {"p1", "p2"}
    assert true_predators(conversations, predators=frozenset({"p3", "absent"})) == {"p1", "p2", "p3"}


def test_explain_window_points_at_the_lines_that_raise_the_logit() -> None:
    head = NgramHead(dim_in=3, hidden=0)
    with torch.no_grad():
        head.mlp_out.weight.copy_(torch.tensor([[4.0, 0.0, 0.0]]))
        head.mlp_out.bias.zero_()
    # lines 2 and 4 (author "g") carry the risky feature, line 4 more strongly
    embeddings = np.array([[0, 1, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [0, 0, 1]], dtype=np.float32)
    authors = ["c", "g", "c", "g", "c"]
    explanation = explain_window(
        head, embeddings=embeddings, speakers=np.array([0, 1, 0, 1, 0]), authors=authors, first_line=11, detector=None
    )
    assert explanation.suspect == "g"
    assert [line.line for line in explanation.evidence] == [14, 12]
    assert [line.author for line in explanation.evidence] == ["g", "g"]
    assert explanation.evidence[0].weight > explanation.evidence[1].weight
    assert math.isclose(sum(line.weight for line in explanation.evidence), 1.0, abs_tol=1e-3)
    single = explain_window(
        head, embeddings=embeddings[:1], speakers=np.array([0]), authors=["c"], first_line=1, detector=None
    )
    assert single.suspect == "c" and single.evidence == ()
