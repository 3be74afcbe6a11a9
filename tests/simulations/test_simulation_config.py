"""Every Hydra config composes and instantiates; bad keys, types and values stop before training with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conf.settings import compose, group_options
from deploy.settings import DeploymentSettings, RuntimeSettings
from federation.attack import AttackSettings
from federation.errors import ConfigError
from federation.models.spec import ModelSpec
from federation.runconfig import EvaluationSettings, PrivacySettings, RunSettings, StrategySettings
from federation.training import TrainSettings
from server.production import compose_production, production_settings
from server.strategies import build_strategy
from simulations.settings import attack_settings, run_settings, runtime_settings

GROUPS = ("data", "model", "privacy", "strategy", "federation", "attack", "experiment")
#: What an option needs on the command line to be complete (``???`` in its YAML).
REQUIRED = {
    "jsonl": ["data.dir=/nowhere"],
    "pan12": ["data.train_xml=a", "data.train_predators=b", "data.test_xml=c", "data.test_predators=d"],
}


def settings_for(overrides: list[str], tmp_path: Path) -> RunSettings:
    cfg = compose(overrides)
    return run_settings(cfg, run_dir=tmp_path, data_dir=tmp_path / "data", test_path=tmp_path / "t.jsonl", ledger_dir=tmp_path / "l")


def instantiate(overrides: list[str], tmp_path: Path) -> RunSettings:
    """Every settings object the commands build from this config: simulation or production."""
    cfg = compose(overrides)
    if cfg.federation.kind == "production":
        run, deployment = production_settings(
            compose_production([*overrides, f"federation.root_certificates={tmp_path}/ca.crt"]), run_dir=tmp_path
        )
        assert DeploymentSettings.from_run_config({**run.to_flat(), **deployment.to_flat()}) == deployment
        return run
    settings = settings_for(overrides, tmp_path)
    runtime_settings(cfg)
    attack_settings(cfg)
    assert cfg.data.kind in group_options("data")
    return settings


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes_and_instantiates(group: str, tmp_path: Path) -> None:
    options = group_options(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        settings = instantiate([f"{group}={option}", *REQUIRED.get(option, [])], tmp_path)
        assert RunSettings.from_flat(settings.to_flat()) == settings


@pytest.mark.parametrize("experiment", group_options("experiment"))
@pytest.mark.parametrize("source", ["jsonl", "pan12"])
def test_every_experiment_composes_with_every_data_source(experiment: str, source: str, tmp_path: Path) -> None:
    """An experiment sized for synthetic data (``quick``: 80 conversations per node) still runs on a node's own files."""
    if compose([f"experiment={experiment}"]).federation.kind == "production":
        return
    settings = instantiate([f"experiment={experiment}", f"data={source}", *REQUIRED[source]], tmp_path)
    assert settings.rounds >= 1


@pytest.mark.parametrize("option", group_options("experiment"))
def test_every_experiment_composes_with_production_or_names_its_simulation_key(option: str, tmp_path: Path) -> None:
    """An experiment that sets up virtual nodes (their policy, their kinds) is refused by `server run`, by key."""
    overrides = [f"experiment={option}", f"federation.root_certificates={tmp_path}/ca.crt"]
    if compose([f"experiment={option}"]).federation.kind == "production":
        run, _ = production_settings(compose_production(overrides), run_dir=tmp_path)
        assert run.mode == "federated" and run.node_kinds == "" and run.privacy.cap is None
        return
    simulation_keys = ("node_policy", "kinds")
    try:
        run, _ = production_settings(compose_production(overrides), run_dir=tmp_path)
    except ConfigError as error:
        assert any(f"Key '{key}' not in 'ProductionFederationConfig'" in str(error) for key in simulation_keys)
        assert "simulated federations" in str(error) and "\n" not in str(error)
    else:
        assert run.node_kinds == "" and run.privacy.cap is None


def test_the_default_options_restate_the_dataclass_defaults(tmp_path: Path) -> None:
    """The dataclasses are the one source of each default: the default YAML options say the same."""
    cfg = compose([])
    settings = settings_for([], tmp_path)
    assert settings.train == TrainSettings()
    assert settings.model == ModelSpec()
    assert settings.privacy == PrivacySettings(cap=PrivacySettings().epsilon)  # a virtual node's cap: the run's epsilon
    assert settings.strategy == StrategySettings()
    assert settings.evaluation == EvaluationSettings()
    assert attack_settings(cfg) == AttackSettings()
    assert runtime_settings(cfg) == RuntimeSettings()
    assert (settings.seed, settings.mode, settings.timeout_s) == (RunSettings.seed, RunSettings.mode, RunSettings.timeout_s)
    production = compose_production([f"federation.root_certificates={tmp_path}/ca.crt"])
    _, deployment = production_settings(production, run_dir=tmp_path)
    assert deployment == DeploymentSettings(superlink="127.0.0.1:9092", root_certificates=str((tmp_path / "ca.crt").resolve()))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["privacy.epsilonn=3"], "epsilonn"),
        (["train.batchsize=32"], "batchsize"),
        (["federation.nodez=3"], "nodez"),
        (["federation.startup.ray_sec=3"], "ray_sec"),
        (["federation.node_policy.max_round=3"], "max_round"),
        (["data.conversations=80"], "conversations"),
        (["model.hiden=8"], "hiden"),
        (["attack.node=2"], "node"),
        (["roundz=2"], "roundz"),
    ],
)
def test_a_misspelled_key_fails_at_composition_naming_it(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    message = str(info.value)
    assert f"Key '{key}' not in" in message and "\n" not in message


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["privacy.epsilon=high"], "privacy.epsilon"),
        (["train.batch_size=big"], "train.batch_size"),
        (["federation.nodes=2.5"], "federation.nodes"),  # a whole number, for simulations and production alike
        (["rounds=many"], "rounds"),
        (["data.conversations_per_node=lots"], "data.conversations_per_node"),
        (["evaluation.histogram_bins=0.5"], "evaluation.histogram_bins"),
        (["federation.num_gpus=half"], "federation.num_gpus"),
        (["compare_baselines=maybe"], "compare_baselines"),
    ],
)
def test_a_wrong_type_fails_at_composition_naming_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    message = str(info.value)
    assert key in message and ("could not be converted" in message or "not a valid" in message) and "\n" not in message


def test_production_keys_are_checked_at_composition(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Key 'superlnk' not in"):
        compose_production(["federation.superlnk=sl:9092"])
    with pytest.raises(ConfigError, match="federation.nodes.*could not be converted"):
        compose_production(["federation.nodes=2.5"])
    with pytest.raises(ConfigError, match="federation.secagg.enabled"):
        compose_production(["federation.secagg.enabled=sometimes"])
    with pytest.raises(ConfigError, match="Key 'ray_address' not in"):  # a simulation-only key
        compose_production(["federation.ray_address=head:6379"])


def test_a_key_appended_with_plus_is_refused_by_name(tmp_path: Path) -> None:
    """``+key=value`` bypasses Hydra's schema check; the dataclass then refuses the key."""
    with pytest.raises(ConfigError, match="privacy: .*'typo'"):
        settings_for(["+privacy.typo=1"], tmp_path)


def test_a_multirun_sweep_is_checked_value_by_value(capsys) -> None:
    from cesagram.cli import main

    assert main(["simulate", "-m", "privacy.epsilon=2,3,high"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "privacy.epsilon=high" in err[0]


def test_simulate_refuses_a_misspelled_key_with_one_line(capsys) -> None:
    from cesagram.cli import main

    assert main(["simulate", "privacy.epsilonn=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "epsilonn" in err[0]


def test_node_check_plans_with_the_coordinators_defaults() -> None:
    from clients.node_cli import _conf_defaults

    assert _conf_defaults() == {
        "rounds": 10, "epsilon": 8.0, "batch_size": 64, "epochs": 4.0, "validation_fraction": 0.2,
    }  # fmt: skip


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
        (["privacy.epsilon=0"], "privacy.epsilon=0.0 must be > 0"),
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
