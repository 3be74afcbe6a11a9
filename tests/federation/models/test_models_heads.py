"""Heads: padding invariance, empty batches, Opacus compatibility, per-sample gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus import GradSampleModule
from opacus.validators import ModuleValidator
from torch import nn

from federation.errors import ConfigError
from federation.models.features import FeatureSet
from federation.models.heads import AttentionWindowHead, NgramHead, MessageScoreHead

DIM = 12


def _features(lengths: list[int], seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    total = sum(lengths)
    embeddings = rng.standard_normal((total, DIM)).astype(np.float32)
    rows, speakers, start = [], [], 0
    for n in lengths:
        rows.append(np.arange(start, start + n))
        speakers.append(rng.integers(0, 3, n))
        start += n
    return FeatureSet(
        embeddings=embeddings, rows=rows, speakers=speakers,
        labels=np.arange(len(lengths)) % 2, ids=[f"c{i}" for i in range(len(lengths))],
    )


def _heads() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        AttentionWindowHead(dim_in=DIM, hidden=16, window=3, dropout=0.1),
        AttentionWindowHead(dim_in=DIM, hidden=8, window=1, dropout=0.0),
        NgramHead(dim_in=DIM, hidden=0),
        NgramHead(dim_in=DIM, hidden=6),
        MessageScoreHead(dim_in=DIM),
    ]


@pytest.mark.parametrize("head", _heads(), ids=["attn-w3", "attn-w1", "ngram-linear", "ngram-mlp", "message-score"])
def test_padded_batch_scores_like_each_sequence_alone(head: nn.Module) -> None:
    head.eval()
    features = _features([7, 2, 1, 5])
    batch = features.batch(range(4))
    garbage = batch.x.clone()
    garbage[~batch.mask] = 123.0  # whatever sits in padding must not matter
    speaker = batch.speaker.clone()
    speaker[~batch.mask] = 2
    with torch.no_grad():
        together = head(batch.x, batch.mask, batch.speaker)
        dirty = head(garbage, batch.mask, speaker)
        weights = head.message_weights(batch.x, batch.mask, batch.speaker)
        for i in range(4):
            alone = features.batch([i])
            single = head(alone.x, alone.mask, alone.speaker)
            torch.testing.assert_close(together[i : i + 1], single, atol=1e-5, rtol=1e-5)
            alone_weights = head.message_weights(alone.x, alone.mask, alone.speaker)[0]
            torch.testing.assert_close(
                weights[i, : alone.x.shape[1]], alone_weights, atol=1e-6, rtol=1e-5
            )
    assert together.shape == (4,)
    torch.testing.assert_close(dirty, together, atol=1e-5, rtol=1e-5)
    assert not weights[~batch.mask].any()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))


def test_attention_head_is_causal_over_messages() -> None:
    head = AttentionWindowHead(dim_in=DIM, hidden=16, window=3).eval()
    features = _features([6])
    full = features.batch([0])
    with torch.no_grad():
        h_full, _ = head._messages(full.x, full.mask, full.speaker)
        prefix = features.batch([0], ends=[4])
        h_prefix, _ = head._messages(prefix.x, prefix.mask, prefix.speaker)
    torch.testing.assert_close(h_full[:, :4], h_prefix, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("head", _heads(), ids=["attn-w3", "attn-w1", "ngram-linear", "ngram-mlp", "message-score"])
@pytest.mark.parametrize("length", [0, 1])
def test_empty_batch(head: nn.Module, length: int) -> None:
    x = torch.zeros(0, length, DIM)
    mask = torch.zeros(0, length, dtype=torch.bool)
    speaker = torch.zeros(0, length, dtype=torch.long)
    head.train()
    logits = head(x, mask, speaker)
    assert logits.shape == (0,)
    logits.sum().backward()  # an empty Poisson batch must still give a (zero) gradient
    assert head.message_weights(x, mask, speaker).shape == (0, length)


def test_all_padding_row_is_finite() -> None:
    for head in _heads():
        mask = torch.zeros(2, 3, dtype=torch.bool)
        out = head.eval()(torch.zeros(2, 3, DIM), mask, torch.zeros(2, 3, dtype=torch.long))
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("head", _heads(), ids=["attn-w3", "attn-w1", "ngram-linear", "ngram-mlp", "message-score"])
def test_opacus_strict_validation_passes(head: nn.Module) -> None:
    assert ModuleValidator.validate(head, strict=True) == []


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("make", [
    lambda: AttentionWindowHead(dim_in=DIM, hidden=16, window=3, dropout=0.0),
    lambda: NgramHead(dim_in=DIM, hidden=6),
    lambda: MessageScoreHead(dim_in=DIM),
], ids=["attn", "ngram", "message-score"])
def test_per_sample_gradients_match_each_sample_alone(make) -> None:  # noqa: ANN001
    torch.manual_seed(3)
    head = make()
    features = _features([5, 2, 4], seed=1)
    batch = features.batch(range(3))
    wrapped = GradSampleModule(head, loss_reduction="sum")
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    loss_fn(wrapped(batch.x, batch.mask, batch.speaker), batch.labels).backward()
    expected: list[dict[str, torch.Tensor]] = []
    for i in range(3):
        reference = make()
        reference.load_state_dict(head.state_dict())
        alone = features.batch([i])
        loss_fn(reference(alone.x, alone.mask, alone.speaker), alone.labels).backward()
        expected.append({n: p.grad.clone() for n, p in reference.named_parameters()})
    for name, parameter in head.named_parameters():
        assert parameter.grad_sample is not None, name
        assert parameter.grad_sample.shape == (3, *parameter.shape), name
        for i in range(3):
            torch.testing.assert_close(
                parameter.grad_sample[i], expected[i][name], atol=1e-5, rtol=1e-4
            )


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("length", [0, 1])
def test_per_sample_gradients_of_an_empty_batch(length: int) -> None:
    for head in _heads():
        wrapped = GradSampleModule(head, loss_reduction="sum")
        x = torch.zeros(0, length, DIM)
        mask = torch.zeros(0, length, dtype=torch.bool)
        logits = wrapped(x, mask, torch.zeros(0, length, dtype=torch.long))
        nn.BCEWithLogitsLoss(reduction="sum")(logits, torch.zeros(0)).backward()
        for parameter in head.parameters():
            assert parameter.grad_sample.shape == (0, *parameter.shape)
        wrapped._close()


def test_attention_head_learns_a_toy_task() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(DIM).astype(np.float32)
    n = 40
    labels = np.arange(n) % 2
    embeddings = rng.standard_normal((n * 4, DIM)).astype(np.float32) * 0.5
    for i in np.flatnonzero(labels):
        embeddings[i * 4 + 2] += direction  # one risky message in each positive conversation
    features = FeatureSet(
        embeddings=embeddings, rows=[np.arange(i * 4, i * 4 + 4) for i in range(n)],
        speakers=[np.array([0, 1, 0, 1])] * n, labels=labels, ids=[str(i) for i in range(n)],
    )
    head = AttentionWindowHead(dim_in=DIM, hidden=16, window=2, dropout=0.0)
    batch = features.batch(range(n))
    loss_fn = nn.BCEWithLogitsLoss()
    first = loss_fn(head(batch.x, batch.mask, batch.speaker), batch.labels).item()
    for _ in range(100):  # plain gradient descent (torch.optim would import torch._dynamo: slow)
        head.zero_grad()
        loss = loss_fn(head(batch.x, batch.mask, batch.speaker), batch.labels)
        loss.backward()
        with torch.no_grad():
            for parameter in head.parameters():
                parameter -= 0.2 * parameter.grad
    assert loss.item() < 0.3 * first
    with torch.no_grad():
        weights = head.eval().message_weights(batch.x, batch.mask, batch.speaker)
    assert weights[labels == 1].argmax(dim=1).float().mean() > 1.5  # attends near the risky line


@pytest.mark.parametrize("kwargs", [
    {"dim_in": 0}, {"dim_in": DIM, "hidden": 0}, {"dim_in": DIM, "window": 0},
    {"dim_in": DIM, "dropout": 1.0}, {"dim_in": DIM, "dropout": -0.1},
    {"dim_in": DIM, "hidden": 2.0},
])
def test_attention_head_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        AttentionWindowHead(**kwargs)


def test_ngram_head_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="hidden"):
        NgramHead(dim_in=DIM, hidden=-1)


def test_message_score_head_is_a_soft_maximum_of_message_logits() -> None:
    """One telling message dominates a window; the weights that pick evidence are the score's own."""
    head = MessageScoreHead(dim_in=DIM)
    with torch.no_grad():
        head.scorer.weight.zero_()
        head.scorer.weight[0, 0] = 1.0
        head.scorer.bias.zero_()
        head.speaker.weight.zero_()
    x = torch.zeros(1, 6, DIM)
    x[0, :, 0] = torch.tensor([-2.0, -2.0, 6.0, -2.0, -2.0, -2.0])  # message logits
    mask = torch.ones(1, 6, dtype=torch.bool)
    speaker = torch.zeros(1, 6, dtype=torch.long)
    logits = torch.tensor([-2.0, -2.0, 6.0, -2.0, -2.0, -2.0])
    weights = torch.softmax(logits, dim=0)
    torch.testing.assert_close(head(x, mask, speaker), (weights * logits).sum().reshape(1))
    assert 5.9 < float(head(x, mask, speaker)) < 6.0  # near the strongest message, not the mean (-0.67)
    torch.testing.assert_close(head.message_weights(x, mask, speaker)[0], weights)
