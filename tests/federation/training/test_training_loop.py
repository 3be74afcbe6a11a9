"""The one local training loop and evaluation, with and without DP-SGD."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from federation.errors import ConfigError, DataError
from federation.models import AttentionWindowHead, FeatureSet, NgramHead, head_arrays, load_head_arrays
from federation.models.windows import window_scores
from federation.privacy import epsilon_of
from federation.training import DPParams, TrainSettings, evaluate, sampling, train

DIM = 16


def toy_features(n=64, *, seed=0, shift=3.0):
    """Separable toy conversations: positives draw messages whose first feature is shifted."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(400, DIM)).astype(np.float32)
    embeddings[:200, 0] += shift
    labels = np.arange(n) % 2
    rows = [rng.integers(0, 200, rng.integers(3, 20)) if label else rng.integers(200, 400, rng.integers(3, 20)) for label in labels]
    speakers = [rng.integers(0, 2, row.size) for row in rows]
    return FeatureSet(embeddings=embeddings, rows=rows, speakers=speakers, labels=labels, ids=[f"c{i}" for i in range(n)])


def attention_head(seed=0):
    torch.manual_seed(seed)
    return AttentionWindowHead(dim_in=DIM, hidden=16, window=3, dropout=0.1)


def loaded(head, arrays):
    model = copy.deepcopy(head)
    load_head_arrays(model, arrays)
    return model


def same_weights(first, second):
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


SETTINGS = TrainSettings(local_epochs=1, batch_size=16, learning_rate=1e-2, seed=3, optimizer="adam")  # 4 steps on 64


def test_non_dp_training_learns_a_separable_set_and_leaves_the_head_alone():
    data, head = toy_features(), attention_head()
    before = head_arrays(head)
    loss_before = evaluate(head=head, data=data, window=50).loss
    settings = TrainSettings(local_epochs=8, batch_size=16, learning_rate=2e-2, seed=3, optimizer="adam")
    head.eval()  # the caller's mode: train() works on a copy and must not switch it
    result = train(head=head, data=data, settings=settings, dp=None)
    assert same_weights(head_arrays(head), before)  # the caller's head is untouched
    assert not head.training  # and keeps its mode
    trained = evaluate(head=loaded(head, result.arrays), data=data, window=50)
    assert trained.loss < 0.2 * loss_before
    positives, negatives = trained.scores[data.labels == 1], trained.scores[data.labels == 0]
    assert positives.min() > negatives.max()
    assert result.num_examples == 64 and result.steps == 32  # ceil(8 * 64 / 16)
    assert result.epsilon is None and result.noise_multiplier is None and result.accountant is None


def test_exported_arrays_are_plain_head_weights_without_opacus_prefixes():
    data, head = toy_features(), attention_head()
    result = train(head=head, data=data, settings=SETTINGS, dp=DPParams(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-5))
    assert [a.shape for a in result.arrays] == [tuple(t.shape) for t in head.state_dict().values()]
    fresh = attention_head(seed=1)
    load_head_arrays(fresh, result.arrays)  # an unwrapped head takes them as they are
    assert same_weights(head_arrays(fresh), result.arrays)
    assert not same_weights(result.arrays, head_arrays(head))
    assert not any(hasattr(p, "grad_sample") for p in head.parameters())  # no Opacus state leaked onto the caller's head


def test_dp_training_reports_its_own_spend_and_repeats_without_double_hooks():
    data, head = toy_features(), attention_head()
    dp = DPParams(noise_multiplier=1.2, max_grad_norm=1.0, delta=1e-5)
    first = train(head=head, data=data, settings=SETTINGS, dp=dp)
    second = train(head=head, data=data, settings=SETTINGS, dp=dp)  # same head twice: fresh copy each call
    for result in (first, second):
        assert result.sample_rate == 0.25 and result.steps == 4
        assert result.epsilon == pytest.approx(epsilon_of([(1.2, 0.25, 4)], delta=1e-5))
        assert result.delta == 1e-5 and result.accountant == "rdp" and result.noise_multiplier == 1.2
        assert np.isfinite(result.train_loss)
    assert not same_weights(first.arrays, second.arrays)  # fresh noise each call


def test_dp_learns_the_separable_set_with_little_noise():
    data, head = toy_features(), attention_head()
    loss_before = evaluate(head=head, data=data, window=50).loss
    dp = DPParams(noise_multiplier=0.5, max_grad_norm=1.0, delta=1e-5, noise_seed=11)
    settings = TrainSettings(local_epochs=8, batch_size=16, learning_rate=2e-2, seed=3, optimizer="adam")
    result = train(head=head, data=data, settings=settings, dp=dp)
    assert evaluate(head=loaded(head, result.arrays), data=data, window=50).loss < 0.3 * loss_before


def _force_batches(monkeypatch, batches):
    """Replace the Poisson sampler by a fixed sequence of samples."""
    monkeypatch.setattr(sampling, "poisson_batches", lambda n, rate, rng: iter([np.asarray(b, dtype=np.int64) for b in batches]))


def test_empty_poisson_batches_still_add_noise_and_count_as_steps(monkeypatch):
    data, head = toy_features(), NgramHead(dim_in=DIM, hidden=32)
    _force_batches(monkeypatch, [[]] * 4)
    dp = DPParams(noise_multiplier=2.0, max_grad_norm=0.5, delta=1e-5, noise_seed=5)
    settings = TrainSettings(local_epochs=1, batch_size=16, learning_rate=1.0, optimizer="sgd", seed=0, momentum=0.0)
    result = train(head=head, data=data, settings=settings, dp=dp)
    assert result.steps == 4 and np.isnan(result.train_loss)
    assert result.epsilon == pytest.approx(epsilon_of([(2.0, 0.25, 4)], delta=1e-5))
    # four pure-noise SGD steps: each coordinate moved by N(0, 4 * (z * C / B)^2)
    moved = np.concatenate([(a - b).ravel() for a, b in zip(result.arrays, head_arrays(head))])
    expected_std = 2.0 * (2.0 * 0.5 / 16)
    assert moved.size > 500
    assert abs(moved.mean()) < 0.2 * expected_std
    assert moved.std() == pytest.approx(expected_std, rel=0.15)


def test_real_poisson_sampling_with_many_empty_batches_runs(monkeypatch):
    sizes = []
    real_sampler = sampling.poisson_batches

    def recording_sampler(n, rate, rng):
        for indices in real_sampler(n, rate, rng):
            sizes.append(len(indices))
            yield indices

    monkeypatch.setattr(sampling, "poisson_batches", recording_sampler)
    data = toy_features(n=8)
    settings = TrainSettings(local_epochs=3, batch_size=1, learning_rate=1e-2, seed=0, optimizer="adam")  # q = 1/8: ~34% empty steps
    dp = DPParams(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-5, noise_seed=2)
    result = train(head=attention_head(), data=data, settings=settings, dp=dp)
    assert len(sizes) == result.steps == 24 and result.sample_rate == 0.125
    assert 0 in sizes and max(sizes) >= 2  # Poisson: empty and multi-conversation batches both occur
    assert all(np.isfinite(a).all() for a in result.arrays)
    assert result.epsilon == pytest.approx(epsilon_of([(1.0, 0.125, 24)], delta=1e-5))


def test_each_conversation_moves_the_model_by_at_most_the_clipping_norm(monkeypatch):
    data, head = toy_features(), NgramHead(dim_in=DIM, hidden=32)
    _force_batches(monkeypatch, [[0, 1, 2, 5, 8]])
    clip = 0.01
    dp = DPParams(noise_multiplier=1e-9, max_grad_norm=clip, delta=1e-5, noise_seed=1)
    settings = TrainSettings(local_epochs=0.25, batch_size=16, learning_rate=1.0, optimizer="sgd", seed=0, momentum=0.0)
    result = train(head=head, data=data, settings=settings, dp=dp)
    assert result.steps == 1
    moved = np.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(result.arrays, head_arrays(head))))
    assert 0 < moved <= 5 * clip / 16 + 1e-6  # five clipped gradients over the expected batch of 16


def test_fedprox_pulls_towards_the_global_weights_with_and_without_dp():
    data, head = toy_features(), NgramHead(dim_in=DIM, hidden=32)
    settings = TrainSettings(local_epochs=2, batch_size=16, learning_rate=2e-2, seed=3, optimizer="adam")
    global_arrays = [a + 0.05 for a in head_arrays(head)]

    def distance(result):
        return np.sqrt(sum(float(((a - g) ** 2).sum()) for a, g in zip(result.arrays, global_arrays)))

    for dp in (None, DPParams(noise_multiplier=0.8, max_grad_norm=1.0, delta=1e-5, noise_seed=7)):
        plain = train(head=head, data=data, settings=settings, dp=dp, global_arrays=global_arrays)
        prox = train(head=head, data=data, settings=TrainSettings(**{**_fields(settings), "proximal_mu": 5.0}), dp=dp, global_arrays=global_arrays)
        assert distance(prox) < 0.7 * distance(plain)


def _fields(settings):
    return {name: getattr(settings, name) for name in TrainSettings.__dataclass_fields__}


def test_training_starts_from_the_global_arrays_when_given():
    data, head = toy_features(), attention_head()
    global_arrays = head_arrays(attention_head(seed=9))
    settings = TrainSettings(local_epochs=0.25, batch_size=16, learning_rate=1e-9, optimizer="sgd", seed=0, momentum=0.0)
    result = train(head=head, data=data, settings=settings, dp=None, global_arrays=global_arrays)
    assert all(np.allclose(a, g, atol=1e-6) for a, g in zip(result.arrays, global_arrays))


def test_non_dp_training_is_reproducible_from_its_seed():
    data, head = toy_features(), attention_head()
    first = train(head=head, data=data, settings=SETTINGS, dp=None)
    second = train(head=head, data=data, settings=SETTINGS, dp=None)
    assert same_weights(first.arrays, second.arrays)


def test_batch_larger_than_the_node_caps_the_sample_rate_at_one():
    data = toy_features(n=10)
    result = train(head=attention_head(), data=data, settings=TrainSettings(local_epochs=2, batch_size=64, learning_rate=1e-2, optimizer="adam"),
                   dp=DPParams(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-5))
    assert result.sample_rate == 1.0 and result.steps == 2


def test_evaluate_returns_conversation_scores_labels_and_their_loss():
    data, head = toy_features(n=20), attention_head()
    head.train()
    result = evaluate(head=head, data=data, window=5)
    assert head.training
    assert result.num_examples == 20 and result.scores.shape == (20,)
    assert np.array_equal(result.labels, data.labels)
    assert ((result.scores > 0) & (result.scores < 1)).all()
    scores = result.scores.astype(np.float64)
    expected = -np.mean(data.labels * np.log(scores) + (1 - data.labels) * np.log(1 - scores))
    assert result.loss == pytest.approx(expected, rel=1e-6)
    empty = evaluate(head=head, data=data.subset([]), window=5)
    assert empty.num_examples == 0 and empty.scores.size == 0


def test_training_on_no_data_is_a_data_error():
    with pytest.raises(DataError):
        train(head=attention_head(), data=toy_features().subset([]), settings=SETTINGS, dp=None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("local_epochs", 0), ("batch_size", 0), ("batch_size", 2.5), ("batch_size", True), ("learning_rate", -1.0),
        ("weight_decay", -0.1), ("optimizer", "adagrad"), ("proximal_mu", -1.0), ("train_window", 0), ("seed", "7"),
    ],
)
def test_train_settings_are_validated_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainSettings(**{**_fields(SETTINGS), field: value})


@pytest.mark.parametrize(
    "kwargs",
    [{"noise_multiplier": 0.0}, {"max_grad_norm": 0.0}, {"delta": 1.0}, {"noise_seed": 1.5}],
)
def test_dp_params_are_validated(kwargs):
    with pytest.raises(ConfigError):
        DPParams(**{"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1e-5, **kwargs})


def _opener_then_evidence(*, annotated: bool) -> FeatureSet:
    """Every conversation may open with the same line; only grooming later carries the annotated cue.

    Rows: 0 the shared opener, 1-3 small talk, 4 the cue. Grooming: opener, small talk, cue,
    small talk; benign: half open the same way, then small talk only.
    """
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(5, DIM)).astype(np.float32)
    rows, labels = [], []
    for i in range(64):
        talk = list(rng.integers(1, 4, 6))
        if i % 2:
            rows.append(np.array([0, *talk[:3], 4, *talk[3:]]))
        else:
            rows.append(np.array([0, *talk] if i % 4 == 0 else talk))
        labels.append(i % 2)
    evidence = np.array([5 if label else 0 for label in labels]) if annotated else None
    return FeatureSet(
        embeddings=embeddings, rows=rows, speakers=[np.zeros(r.size, np.int64) for r in rows],
        labels=np.array(labels), ids=[f"c{i}" for i in range(64)], evidence_from=evidence,
    )


def test_annotated_grooming_is_not_learnt_from_the_lines_before_its_first_cue():
    """A window of just the shared opener scores low once grooming windows start at the first annotated cue."""
    settings = TrainSettings(local_epochs=20, batch_size=16, learning_rate=5e-2, seed=3, optimizer="adam")
    opener_scores = {}
    for annotated in (False, True):
        data = _opener_then_evidence(annotated=annotated)
        torch.manual_seed(0)
        head = NgramHead(dim_in=DIM, hidden=0)
        load_head_arrays(head, train(head=head, data=data, settings=settings, dp=None).arrays)
        per_message = window_scores(head, data, window=50)
        opener_scores[annotated] = float(np.mean([s[0] for s, y in zip(per_message, data.labels) if y == 1]))
        after_cue = float(np.mean([s[4] for s, y in zip(per_message, data.labels) if y == 1]))
        assert after_cue > 0.8  # the cue is learnt either way
    assert opener_scores[True] < 0.4 < opener_scores[False]  # measured 0.15 and 0.80
