"""Accounting maths: epsilon of a history and noise calibration, checked against Opacus."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opacus.accountants import RDPAccountant

from federation.errors import ConfigError, PrivacyBudgetExceeded
from federation.privacy import calibrate_noise, epsilon_of

DELTA = 1e-5


def _stepped_accountant(history):
    accountant = RDPAccountant()
    for noise, rate, steps in history:
        for _ in range(steps):
            accountant.step(noise_multiplier=noise, sample_rate=rate)
    return accountant


def test_epsilon_of_equals_an_rdp_accountant_stepped_over_the_same_history():
    history = [(1.1, 0.05, 30), (0.9, 0.1, 12), (1.1, 0.05, 7), (2.0, 0.25, 5)]
    expected = _stepped_accountant(history).get_epsilon(delta=DELTA)
    assert epsilon_of(history, delta=DELTA) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_one_homogeneous_stretch_matches_the_accountant_exactly():
    history = [(1.3, 0.125, 4)] * 5
    expected = _stepped_accountant(history).get_epsilon(delta=DELTA)
    assert abs(epsilon_of(history, delta=DELTA) - expected) <= 1e-12


def test_empty_history_and_zero_steps_spend_nothing():
    assert epsilon_of([], delta=DELTA) == 0.0
    assert epsilon_of([(1.0, 0.1, 0)], delta=DELTA) == 0.0


@pytest.mark.parametrize(
    "history",
    [[(0.0, 0.1, 3)], [(1.0, 0.0, 3)], [(1.0, 1.5, 3)], [(1.0, 0.1, -1)], [(1.0, 0.1, 2.5)], [(1.0, 0.1)]],
)
def test_invalid_history_entries_are_config_errors(history):
    with pytest.raises(ConfigError):
        epsilon_of(history, delta=DELTA)


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-5, "1e-5", True])
def test_invalid_delta_is_a_config_error(delta):
    with pytest.raises(ConfigError):
        epsilon_of([(1.0, 0.1, 3)], delta=delta)


NOISES = st.sampled_from([0.7, 1.0, 1.5, 3.0])
RATES = st.sampled_from([0.01, 0.1, 0.5, 1.0])
ENTRIES = st.lists(st.tuples(NOISES, RATES, st.integers(min_value=0, max_value=40)), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(history=ENTRIES, data=st.data())
def test_any_split_and_order_of_a_history_gives_the_same_epsilon(history, data):
    # Split every entry into two parts at a random point, then shuffle everything.
    pieces = []
    for noise, rate, steps in history:
        cut = data.draw(st.integers(min_value=0, max_value=steps))
        pieces += [(noise, rate, cut), (noise, rate, steps - cut)]
    shuffled = data.draw(st.permutations(pieces))
    assert epsilon_of(shuffled, delta=DELTA) == pytest.approx(epsilon_of(history, delta=DELTA), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(history=ENTRIES, noise=NOISES, rate=RATES, extra=st.integers(min_value=1, max_value=30))
def test_epsilon_grows_with_steps(history, noise, rate, extra):
    before = epsilon_of(history, delta=DELTA)
    after = epsilon_of([*history, (noise, rate, extra)], delta=DELTA)
    assert after > before or (math.isinf(before) and math.isinf(after))


@pytest.mark.parametrize("target", [0.5, 2.0, 8.0])
def test_calibrate_noise_hits_the_target_within_one_percent(target):
    history = [(2.0, 0.1, 40)]
    spent = epsilon_of(history, delta=DELTA)
    noise = calibrate_noise(history=history, delta=DELTA, sample_rate=0.25, steps=20, target_epsilon=spent + target)
    reached = epsilon_of([*history, (noise, 0.25, 20)], delta=DELTA)
    assert reached <= spent + target
    assert reached >= 0.99 * (spent + target)
    # and it is the smallest such noise: 1% less noise overshoots
    assert epsilon_of([*history, (noise * 0.99, 0.25, 20)], delta=DELTA) > spent + target


def test_calibrated_noise_is_monotone_in_target_and_steps():
    def noise(target, steps):
        return calibrate_noise(history=[], delta=DELTA, sample_rate=0.1, steps=steps, target_epsilon=target)

    by_target = [noise(target, 50) for target in (0.5, 1.0, 2.0, 4.0)]
    assert by_target == sorted(by_target, reverse=True)
    assert len(set(by_target)) == len(by_target)
    by_steps = [noise(2.0, steps) for steps in (10, 50, 200)]
    assert by_steps == sorted(by_steps)
    assert len(set(by_steps)) == len(by_steps)


def test_calibrate_noise_refuses_when_the_history_already_reaches_the_target():
    history = [(0.8, 0.5, 50)]
    spent = epsilon_of(history, delta=DELTA)
    with pytest.raises(PrivacyBudgetExceeded, match="exhausted"):
        calibrate_noise(history=history, delta=DELTA, sample_rate=0.1, steps=1, target_epsilon=spent)


def test_calibrate_noise_refuses_a_target_no_noise_can_certify():
    with pytest.raises(PrivacyBudgetExceeded, match="too small"):
        calibrate_noise(history=[], delta=DELTA, sample_rate=0.1, steps=10, target_epsilon=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 0.0},
        {"sample_rate": 1.5},
        {"steps": 0},
        {"target_epsilon": -1.0},
        {"target_epsilon": math.inf},
    ],
)
def test_calibrate_noise_validates_its_arguments(kwargs):
    arguments = {"history": [], "delta": DELTA, "sample_rate": 0.1, "steps": 10, "target_epsilon": 1.0} | kwargs
    with pytest.raises(ConfigError):
        calibrate_noise(**arguments)
