"""Streaming scoring raises the same warnings, at the same messages, as batch scoring."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from cesagram.cli import main
from federation.data.types import Conversation
from federation.scoring import IndicatorDetector, Scorer, StreamScorer, follow, load_scoring_model
from federation.scoring.follow import StreamMessage, parse_stream_line
from federation.scoring.model import ScoringModel
from simulations.live_feed import Trickle, feed_bytes, interleaved


def with_third_author(conversations: list[Conversation]) -> list[Conversation]:
    """Every fourth conversation gets a third author on every fifth line (speaker index 2)."""
    out = []
    for index, conversation in enumerate(conversations):
        if index % 4 == 0:
            messages = tuple(
                dataclasses.replace(m, author="third-party") if position % 5 == 4 else m
                for position, m in enumerate(conversation.messages)
            )
            conversation = dataclasses.replace(conversation, messages=messages)
        out.append(conversation)
    return out


def run_stream(model: ScoringModel, data: bytes, *, trickle: bool = False) -> list[dict]:
    sink = io.StringIO()
    source = Trickle(data) if trickle else io.BytesIO(data)
    scorer = StreamScorer(model, detector=IndicatorDetector.for_encoder(model.encoder))
    follow(source, sink, scorer=scorer, name="<test>", report=lambda line: None)
    return [json.loads(line) for line in sink.getvalue().splitlines()]


def batch_alerts(model: ScoringModel, conversations: list[Conversation]) -> dict[str, dict]:
    result = Scorer(model, detector=IndicatorDetector.for_encoder(model.encoder)).score(conversations)
    return {s.id: s.to_record() for s in result.scores if s.alert}


def check_same(stream: list[dict], batch: dict[str, dict]) -> None:
    assert len(batch) >= 3  # the model does warn: the comparison means something
    assert {w["conversation"]: w["alert_at"] for w in stream} == {i: r["alert_at"] for i, r in batch.items()}
    for warning in stream:
        record = batch[warning["conversation"]]
        assert warning["warning"] is True
        assert warning["suspect"] == record["suspect"]
        assert [e["line"] for e in warning["evidence"]] == [e["line"] for e in record["evidence"]]
        assert [e["indicators"] for e in warning["evidence"]] == [e["indicators"] for e in record["evidence"]]
        assert [e["weight"] for e in warning["evidence"]] == pytest.approx([e["weight"] for e in record["evidence"]], abs=2e-3)


@pytest.fixture(scope="module")
def model(ngram_bundle) -> ScoringModel:  # noqa: ANN001
    return load_scoring_model(ngram_bundle.model, cache=None)


def test_follow_warns_at_the_same_messages_as_batch(ngram_bundle, model) -> None:  # noqa: ANN001
    conversations = with_third_author(ngram_bundle.train)
    data = feed_bytes(interleaved(conversations, seed=1))
    check_same(run_stream(model, data), batch_alerts(model, conversations))


def test_follow_one_line_at_a_time_is_the_same(ngram_bundle, model) -> None:  # noqa: ANN001
    conversations = with_third_author(ngram_bundle.train[:12])
    data = feed_bytes(interleaved(conversations, seed=2))
    streamed = run_stream(model, data, trickle=True)
    assert streamed and streamed == run_stream(model, data)


def test_follow_truncates_like_training_and_slides_the_window(ngram_bundle, model) -> None:  # noqa: ANN001
    meta = model.meta
    short = dataclasses.replace(
        model,
        meta=dataclasses.replace(
            meta, spec=dataclasses.replace(meta.spec, max_messages=14), rule=dataclasses.replace(meta.rule, window=4)
        ),
    )
    conversations = with_third_author(ngram_bundle.train)
    assert max(len(c.messages) for c in conversations) > 14
    batch = batch_alerts(short, conversations)
    assert all(record["alert_at"] <= 14 for record in batch.values())
    check_same(run_stream(short, feed_bytes(interleaved(conversations, seed=3))), batch)


def test_follow_command_reports_bad_records_and_scores_the_rest(ngram_bundle, model, tmp_path, capsys) -> None:  # noqa: ANN001
    conversations = ngram_bundle.train
    records = interleaved(conversations, seed=4)
    secret = "zebra-umbrella-secret"
    bad = [
        b"{not json " + secret.encode() + b"\n",
        json.dumps({"author": "a", "text": secret}).encode() + b"\n",  # no conversation id
        json.dumps({"conversation": "", "author": "a", "text": secret}).encode() + b"\n",  # empty id
        json.dumps({"conversation": "x1", "author": "a", "text": 5}).encode() + b"\n",  # text not a string
        json.dumps({"conversation": "x2", "author": "a", "text": ""}).encode() + b"\n",  # empty text: noted, scored
        json.dumps({"conversation": "x3", "author": "a", "text": secret * 400}).encode() + b"\n",  # huge text: cut
        b'{"conversation": "x4", "author": "a", "text": "' + b"y" * (2 * 1024 * 1024) + b'"}\n',  # huge line
    ]
    good = feed_bytes(records).splitlines(keepends=True)
    path = tmp_path / "stream.jsonl"
    path.write_bytes(b"".join(bad[:4]) + b"".join(good[: len(good) // 2]) + b"".join(bad[4:]) + b"".join(good[len(good) // 2 :]))
    out = tmp_path / "warnings.jsonl"
    code = main(["score", "--model", str(ngram_bundle.model), "--follow", str(path), "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert secret not in err and "yyyy" not in err
    problems = [line for line in err.splitlines() if line.startswith(f"{path}:")]
    lines = {int(line.split(":")[1]) for line in problems}
    first_bad = len(good) // 2 + 5
    assert {1, 2, 3, 4, first_bad, first_bad + 1, first_bad + 2} <= lines
    assert any("empty text" in line for line in problems)
    assert any("characters; only the first" in line for line in problems)
    assert any("longer than" in line for line in problems)
    warnings = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = batch_alerts(model, conversations)
    assert {w["conversation"]: w["alert_at"] for w in warnings if w["conversation"] in expected} == {
        i: r["alert_at"] for i, r in expected.items()
    }


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[1, 2]", "expected a JSON object"),
        (b'{"conversation": 7, "author": "a", "text": "hi"}', "conversation: expected a non-empty string"),
        (b'{"conversation": "c", "text": "hi"}', "author: expected a non-empty string"),
        (b'{"conversation": "c", "author": "a"}', "text: expected a string, got missing"),
        (b"\xff\xfe", "not valid UTF-8"),
    ],
)
def test_parse_stream_line_explains_without_echoing(raw: bytes, fragment: str) -> None:
    message, problems = parse_stream_line(raw, source_line=3)
    assert message is None and len(problems) == 1 and fragment in problems[0]


def test_parse_stream_line_keeps_a_message_with_a_bad_time() -> None:
    message, problems = parse_stream_line(
        b'{"conversation": "c", "author": "a", "text": "hi", "time": "25:99"}', source_line=1
    )
    assert message == StreamMessage("c", "a", "hi", 1)
    assert problems and "time" in problems[0]
