"""FeatureSet and Batch: dedup, truncation, speakers, window slicing, empty batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

from federation.data.types import Conversation, Message
from federation.errors import ConfigError, DataError
from federation.models.features import FeatureSet, build_features


class CountingEncoder:
    """A fake encoder whose vector for a text is derived from the text, so rows can be checked."""

    id = "counting-v1"
    dim = 4

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def vector(self, text: str) -> np.ndarray:
        return np.array([len(text), sum(map(ord, text)) % 97, text.count(" "), 1.0], np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, 4), np.float32)


def _conv(cid: str, label: int, lines: list[tuple[str, str]]) -> Conversation:
    messages = tuple(Message(author=a, text=t) for a, t in lines)
    return Conversation(id=cid, label=label, messages=messages)


CONVERSATIONS = [
    _conv("c1", 1, [("u1", "hi"), ("u2", "hello"), ("u1", "how old are you?"), ("u2", "13"),
                    ("u1", "you're so mature"), ("u1", "don't tell anyone")]),
    _conv("c2", 0, [("a", "hi"), ("b", "did you finish the homework?"), ("c", "hi"), ("a", "yes")]),
    _conv("c3", 0, [("x", "hello")]),
]


@pytest.fixture()
def encoder() -> CountingEncoder:
    return CountingEncoder()


@pytest.fixture()
def features(encoder: CountingEncoder) -> FeatureSet:
    return build_features(CONVERSATIONS, encoder, max_messages=5)


def test_one_encode_call_on_distinct_texts(features: FeatureSet, encoder: CountingEncoder) -> None:
    assert len(encoder.calls) == 1
    kept = {m.text for c in CONVERSATIONS for m in c.messages[:5]}
    assert sorted(encoder.calls[0]) == sorted(kept)
    assert features.embeddings.shape == (len(kept), 4)
    assert "don't tell anyone" not in encoder.calls[0]  # beyond max_messages: never encoded


def test_rows_truncation_labels_ids(features: FeatureSet, encoder: CountingEncoder) -> None:
    assert len(features) == 3
    assert features.ids == ["c1", "c2", "c3"]
    assert features.labels.dtype == np.int64 and features.labels.tolist() == [1, 0, 0]
    assert features.lengths.tolist() == [5, 4, 1]
    for conversation, rows in zip(CONVERSATIONS, features.rows, strict=True):
        assert rows.dtype == np.int64
        for message, row in zip(conversation.messages, rows, strict=False):
            np.testing.assert_array_equal(features.embeddings[row], encoder.vector(message.text))
    assert features.rows[0][0] == features.rows[1][0] == features.rows[1][2]  # "hi" stored once


def test_speakers_first_second_other(features: FeatureSet) -> None:
    assert features.speakers[0].tolist() == [0, 1, 0, 1, 0]
    assert features.speakers[1].tolist() == [0, 1, 2, 0]
    assert features.speakers[2].tolist() == [0]
    assert all(s.dtype == np.int64 for s in features.speakers)


def test_subset_shares_embeddings(features: FeatureSet) -> None:
    part = features.subset([2, 0])
    assert part.embeddings is features.embeddings
    assert part.ids == ["c3", "c1"] and part.labels.tolist() == [0, 1]
    assert part.lengths.tolist() == [1, 5]
    np.testing.assert_array_equal(part.rows[1], features.rows[0])


def test_whole_conversation_batch_is_padded_and_masked(
    features: FeatureSet, encoder: CountingEncoder
) -> None:
    batch = features.batch([1, 2, 0])
    assert batch.x.shape == (3, 5, 4) and batch.x.dtype == torch.float32
    assert batch.mask.dtype == torch.bool and batch.speaker.dtype == torch.int64
    assert batch.labels.dtype == torch.float32 and batch.labels.tolist() == [0.0, 0.0, 1.0]
    assert batch.mask.sum(dim=1).tolist() == [4, 1, 5]
    assert not batch.x[~batch.mask].any()
    assert batch.speaker[1].tolist() == [0, 0, 0, 0, 0]
    texts = [m.text for m in CONVERSATIONS[1].messages]
    expected = np.stack([encoder.vector(t) for t in texts])
    np.testing.assert_array_equal(batch.x[0, :4].numpy(), expected)


def test_window_and_ends_select_the_right_messages(
    features: FeatureSet, encoder: CountingEncoder
) -> None:
    batch = features.batch([0, 0, 1, 0], window=2, ends=[1, 4, 4, 5])
    assert batch.x.shape == (4, 2, 4)
    assert batch.mask.tolist() == [[True, False], [True, True], [True, True], [True, True]]
    c1 = CONVERSATIONS[0].messages
    v = [encoder.vector(m.text) for m in c1]
    np.testing.assert_array_equal(batch.x[0, 0].numpy(), v[0])
    np.testing.assert_array_equal(batch.x[1].numpy(), np.stack([v[2], v[3]]))
    assert batch.speaker[1].tolist() == [0, 1]
    assert batch.speaker[2].tolist() == [2, 0]  # messages 3 and 4 of c2: third author, then first
    no_window = features.batch([0], ends=[3])
    assert no_window.mask.tolist() == [[True, True, True]]
    last_two = features.batch([0, 2], window=2)  # no ends: the conversation's last messages
    np.testing.assert_array_equal(last_two.x[0].numpy(), np.stack([v[3], v[4]]))
    assert last_two.mask.tolist() == [[True, True], [True, False]]


def test_empty_batch(features: FeatureSet) -> None:
    batch = features.batch([])
    assert batch.x.shape[0] == 0 and batch.x.dim() == 3 and batch.x.shape[2] == 4
    assert batch.mask.shape[0] == 0 and batch.mask.dim() == 2
    assert batch.speaker.shape == batch.mask.shape
    assert batch.labels.shape == (0,)
    assert len(batch) == 0
    assert features.batch([], window=3, ends=[]).x.shape[0] == 0


def test_empty_conversation_and_empty_input(encoder: CountingEncoder) -> None:
    features = build_features([_conv("e", 0, []), CONVERSATIONS[2]], encoder)
    assert features.lengths.tolist() == [0, 1]
    batch = features.batch([0])
    assert batch.x.shape == (1, 0, 4) and not batch.mask.any()
    nothing = build_features([], CountingEncoder())
    assert len(nothing) == 0 and nothing.batch([]).x.shape[0] == 0


def test_bad_arguments(features: FeatureSet, encoder: CountingEncoder) -> None:
    with pytest.raises(ConfigError, match="max_messages"):
        build_features(CONVERSATIONS, encoder, max_messages=0)
    with pytest.raises(ValueError, match="ends"):
        features.batch([2], ends=[2])
    with pytest.raises(ValueError, match="ends"):
        features.batch([0, 1], ends=[1])
    with pytest.raises(ConfigError, match="window"):
        features.batch([0], window=0)
    with pytest.raises(IndexError):
        features.batch([3])


def test_evidence_starts_at_the_first_annotated_message_kept(encoder: CountingEncoder) -> None:
    """The first message with a risk-indicator code (1-based); 0 when none is kept or annotated."""
    def annotated(cid: str, codes_at: dict[int, tuple[str, ...]], length: int, label: int = 1) -> Conversation:
        messages = tuple(
            Message(author=f"u{i % 2}", text=f"line {i}", indicators=codes_at.get(i, ())) for i in range(length)
        )
        return Conversation(id=cid, label=label, messages=messages)

    conversations = [
        annotated("early", {2: ("personal_question",), 4: ("secrecy",)}, 6),
        annotated("none", {}, 6),
        annotated("late", {5: ("app_move",)}, 6),  # beyond max_messages: not kept
        annotated("quoted", {1: ("secrecy",)}, 6, label=0),  # a benign report quoting a groomer
    ]
    features = build_features(conversations, encoder, max_messages=5)
    assert features.evidence_from.tolist() == [3, 0, 0, 0]
    assert features.subset([2, 0]).evidence_from.tolist() == [0, 3]


def test_joined_sets_keep_every_conversations_messages(features: FeatureSet) -> None:
    tail = features.subset([0])
    both = features.joined(tail)
    assert len(both) == len(features) + 1 and both.ids[-1] == features.ids[0]
    assert np.array_equal(both.embeddings[both.rows[-1]], features.embeddings[features.rows[0]])
    assert np.array_equal(both.labels[-1:], features.labels[:1]) and both.evidence_from is not None
    with pytest.raises(DataError, match="cannot join"):
        features.joined(FeatureSet(embeddings=np.zeros((1, 3)), rows=[[0]], speakers=[[0]], labels=[0], ids=["x"]))
