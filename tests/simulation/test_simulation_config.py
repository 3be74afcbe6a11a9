"""Every Hydra config composes and instantiates; bad values stop before training with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.runconfig import RunSettings
from simulations.compose import compose
from simulations.settings import group_options, run_settings
from server.strategies import build_strategy


def settings_for(overrides: list[str], tmp_path: Path) -> RunSettings:
    cfg = compose(overrides)
    return run_settings(cfg, run_dir=tmp_path, data_dir=tmp_path / "data", test_path=tmp_path / "t.jsonl", ledger_dir=tmp_path / "l")


@pytest.mark.parametrize("group", ["data", "model", "privacy", "strategy", "federation", "experiment"])
def test_every_group_option_composes(group: str, tmp_path: Path) -> None:
    options = group_options(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        overrides = [f"{group}={option}"]
        if option in ("jsonl",):
            overrides.append("data.dir=/nowhere")
        if option == "pan12":
            overrides += ["data.train_xml=a", "data.train_predators=b", "data.test_xml=c", "data.test_predators=d"]
        if compose(overrides).federation.kind != "simulation":
            continue  # production setups are composed by `cesagram server run` (tests/production)
        settings = settings_for(overrides, tmp_path)
        assert RunSettings.from_flat(settings.to_flat()) == settings


def test_default_is_five_nodes_dp_at_epsilon_8_fedavg_minilm(tmp_path: Path) -> None:
    settings = settings_for([], tmp_path)
    assert settings.nodes == 5
    assert settings.kinds == ("hotline", "hotline", "police", "police", "platform")
    assert settings.privacy.mode == "record"
    assert settings.privacy.epsilon == 8.0 and settings.privacy.delta == 1e-5
    assert settings.strategy.name == "fedavg"
    assert settings.model.name == "minilm"


@pytest.mark.parametrize("name", group_options("strategy"))
def test_every_strategy_samples_every_node(name: str, tmp_path: Path) -> None:
    settings = settings_for([f"strategy={name}"], tmp_path)
    strategy = build_strategy(settings)
    assert strategy.min_train_nodes == settings.nodes
    assert strategy.min_available_nodes == settings.nodes
    assert strategy.fraction_train == 1.0


def test_central_dp_wraps_the_strategy(tmp_path: Path) -> None:
    from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping

    strategy = build_strategy(settings_for(["privacy=central"], tmp_path))
    assert isinstance(strategy, DifferentialPrivacyClientSideFixedClipping)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy=fedsgd"], "strategy='fedsgd' is not allowed; choose one of: fedadam, fedavg"),
        (["privacy.epsilon=0"], "privacy.epsilon=0 must be > 0"),
        (["privacy.epsilon=-3"], "privacy.epsilon"),
        (["federation.min_nodes=9"], "federation.min_nodes=9"),
        (["model=bert"], "model='bert' is not allowed"),
        (["privacy=central", "strategy=fedmedian"], "privacy=central with strategy=fedmedian"),
        (["privacy.accountant=moments"], "privacy.accountant='moments' is not allowed"),
    ],
)
def test_bad_values_stop_with_one_line(overrides: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings_for(overrides, tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_simulate_hands_every_argument_to_hydra(capsys) -> None:
    from cesagram.cli import main

    assert main(["simulate", "--cfg", "job", "privacy.epsilon=3"]) == 0
    out = capsys.readouterr().out
    assert "epsilon: 3" in out and "kind: synthetic" in out


def test_simulate_refuses_an_unknown_group_option_with_one_line(capsys) -> None:
    from cesagram.cli import main

    assert main(["simulate", "strategy=fedsgd"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: strategy='fedsgd' is not allowed; choose one of: fedadam, fedavg, fedmedian, fedprox, fedtrimmedavg, krum, normbounded"]


def test_the_default_run_audits_and_the_control_runs_without_noise(tmp_path: Path) -> None:
    from simulations.federated import virtual_node_env

    default = settings_for([], tmp_path)
    assert (default.privacy.mode, default.privacy.audit, default.privacy.audit_canaries) == ("record", "white", 1000)
    control = settings_for(["experiment=audit_control"], tmp_path)
    assert (control.privacy.mode, control.privacy.audit) == ("none", "white")
    assert virtual_node_env(compose(["experiment=audit_control"]), control)  # its nodes accept privacy=none
    assert settings_for(["privacy=central"], tmp_path).privacy.audit == "off"
    with pytest.raises(ConfigError, match="accept_audit"):
        virtual_node_env(compose(["federation.node_policy.accept_audit=[off]"]), default)
