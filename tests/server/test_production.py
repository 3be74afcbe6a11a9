"""The production run's settings: the deployment keys in the flat run config, composition, what SecAgg+ and production refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.runconfig import RunSettings
from server.production import DeploymentSettings, compose_production, production_settings
from server.secagg import SecAggSettings


def test_deployment_settings_round_trip_through_the_flat_run_config() -> None:
    deployment = DeploymentSettings(
        superlink="sl.example.org:9092", root_certificates="/c/ca.crt", wait_for_nodes_s=30.0, secagg=SecAggSettings(enabled=True)
    )
    flat = deployment.to_flat()
    assert all(key.startswith("deployment.") for key in flat)
    assert all(isinstance(value, (bool, int, float, str)) for value in flat.values())
    assert DeploymentSettings.from_run_config({**flat, "rounds": 3}) == deployment
    assert DeploymentSettings.from_run_config({"rounds": 3}) is None


def test_production_composition(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    cfg = compose_production(
        ["experiment=pilot_secagg", "model=ngram", f"federation.root_certificates={ca}", "federation.superlink=sl:9092"]
    )
    run, deployment = production_settings(cfg, run_dir=tmp_path / "run")
    assert deployment.secagg.enabled and deployment.superlink == "sl:9092"
    assert deployment.root_certificates == str(ca.resolve())
    assert run.nodes == 3 and run.required_nodes == 3 and run.model.name == "ngram"
    assert RunSettings.from_flat({**run.to_flat(), **deployment.to_flat()}) == run


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy=krum"], "needs each node's update"),
        (["federation.min_nodes=2"], "at least 3 nodes"),
        (["privacy=central"], "not available with SecAgg"),
    ],
)
def test_secagg_refuses_what_it_cannot_serve(tmp_path: Path, overrides: list[str], message: str) -> None:
    cfg = compose_production(
        ["experiment=pilot_secagg", f"federation.root_certificates={tmp_path}/ca.crt", "federation.nodes=5", *overrides]
    )
    with pytest.raises(ConfigError, match=message):
        production_settings(cfg, run_dir=tmp_path)


def test_production_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="federation.root_certificates"):
        production_settings(compose_production([]), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="federation.superlink"):
        production_settings(
            compose_production([f"federation.root_certificates={tmp_path}/ca", "federation.superlink=nope"]), run_dir=tmp_path
        )
    with pytest.raises(ConfigError, match="federation="):
        compose_production(["federation=simulation"])
    with pytest.raises(ConfigError, match="choose one of"):
        compose_production(["experiment=nope"])


def test_a_production_run_cannot_ask_nodes_to_attack(tmp_path: Path) -> None:
    base = [f"federation.root_certificates={tmp_path}/ca.crt", "federation.superlink=sl:9092"]
    for kind in ("scaled", "nan"):  # nan: refused before Hydra would read it as a float
        with pytest.raises(ConfigError, match=f"attack={kind} simulates misbehaving nodes in `cesagram simulate` only"):
            production_settings(compose_production([*base, f"attack={kind}"]), run_dir=tmp_path)
    cfg = compose_production([*base, "attack.kind=scaled"])  # set as a value, past the override check
    with pytest.raises(ConfigError, match="attack=scaled simulates"):
        production_settings(cfg, run_dir=tmp_path)
