from __future__ import annotations

from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.models.spec import ModelSpec
from federation.runconfig import PrivacySettings, RunSettings, StrategySettings


def make(**overrides) -> RunSettings:
    values = dict(run_id="r1", run_dir="/tmp/run", rounds=3, nodes=3, node_kinds="hotline,police,platform")
    values.update(overrides)
    return RunSettings(**values)


def test_flat_round_trip_is_identity_and_scalar_only() -> None:
    settings = make(model=ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0), privacy=PrivacySettings(cap=5.0))
    flat = settings.to_flat()
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())
    assert flat["train.batch-size"] == settings.train.batch_size
    assert flat["model.name"] == "ngram"
    assert "privacy.sample-rate" not in flat  # None is left out
    assert RunSettings.from_flat(flat) == settings


def test_wrong_type_in_run_config_names_the_key() -> None:
    flat = make().to_flat()
    flat["rounds"] = "three"
    with pytest.raises(ConfigError, match="'rounds'"):
        RunSettings.from_flat(flat)


def test_a_missing_key_is_refused_not_filled_in_from_a_default() -> None:
    flat = make().to_flat()
    del flat["train.learning-rate"]
    with pytest.raises(ConfigError, match="lacks key 'train.learning-rate'"):
        RunSettings.from_flat(flat)


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: PrivacySettings(epsilon=0.0), "privacy.epsilon"),
        (lambda: PrivacySettings(epsilon=-1.0), "privacy.epsilon"),
        (lambda: PrivacySettings(delta=1.5), "privacy.delta"),
        (lambda: StrategySettings(name="fedsgd"), "strategy.name"),
        (lambda: make(min_nodes=5), "federation.min_nodes"),
        (lambda: make(rounds=0), "rounds"),
        (lambda: make(strategy=StrategySettings(name="krum", num_malicious_nodes=1)), "num_malicious_nodes"),
    ],
)
def test_bad_values_are_refused_with_the_key(build, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build()


def test_required_nodes_defaults_to_every_node() -> None:
    assert make().required_nodes == 3
    assert make(min_nodes=2).required_nodes == 2


def test_pooled_party_samples_at_the_nodes_rate_only_with_dp_sgd() -> None:
    """The centralized baseline's DP batch is the nodes' batches summed; its non-DP batch is the plain one."""
    private = make(privacy=PrivacySettings(mode="record"))
    assert private.party_batch_size(1000) == private.train.batch_size
    assert private.party_batch_size(5000, pooled_nodes=5) == 5 * private.train.batch_size
    plain = make(privacy=PrivacySettings(mode="none"))
    assert plain.party_batch_size(5000, pooled_nodes=5) == plain.train.batch_size


def test_fixed_sample_rate_sets_the_batch_from_the_party_size() -> None:
    settings = make(privacy=PrivacySettings(mode="record", sample_rate=0.05))
    assert settings.party_batch_size(1000) == 50
    assert settings.party_batch_size(4000, pooled_nodes=4) == 200
    assert settings.party_batch_size(3) == 1  # never an empty expected batch


def test_node_kinds_repeat_in_order_and_the_run_config_stays_small_at_ten_thousand_nodes() -> None:
    from conf.settings import compose, settings_from_config

    settings = make(nodes=7, node_kinds="platform,hotline,police")
    assert settings.kinds == ("platform", "hotline", "police", "platform", "hotline", "police", "platform")
    assert [settings.kind_of(i) for i in (0, 4, 6, 7)] == ["platform", "hotline", "platform", "unknown"]
    cfg = compose(["experiment=cross_device"])
    run = settings_from_config(cfg, run_dir=Path("/tmp/run"), data_dir=Path("/tmp/data"), ledger_dir=Path("/tmp/l"))
    assert run.nodes == 10_000 and run.node_kinds == "platform,hotline,police"
    assert len(str(run.to_flat())) < 5_000  # Flower copies the run config into each virtual node's context
