"""Hydra's composed config -> the typed, flat :class:`RunSettings` that Flower carries.

Hydra composes and validates here, in the entry point; no ``DictConfig`` goes further.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from federation.attack import AttackSettings
from federation.errors import ConfigError
from federation.models.spec import ModelSpec
from federation.runconfig import EvaluationSettings, PrivacySettings, RunSettings, StrategySettings
from federation.training import TrainSettings
from simulations.flower_runtime import RuntimeSettings

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("data", "model", "privacy", "strategy", "federation", "attack", "experiment")


def group_options(group: str) -> list[str]:
    """The config names available in a Hydra group (conf/<group>/*.yaml)."""
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def check_group_overrides(overrides: list[str]) -> None:
    """Refuse ``group=unknown`` before Hydra does, with one line naming the allowed values."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if sep and key in GROUPS and value not in ("null", ""):
            options = group_options(key)
            for choice in value.split(","):  # --multirun sweeps: a,b,c
                if choice not in options:
                    raise ConfigError(f"{key}={choice!r} is not allowed; choose one of: {', '.join(options)}")


#: Option names Hydra's override grammar reads as floats (``attack=nan``): quoted before Hydra parses them.
_FLOAT_WORDS = ("nan", "inf", "-inf", "+inf")


def hydra_overrides(overrides: list[str]) -> list[str]:
    """The overrides with group options that Hydra would read as numbers quoted (``attack=nan``)."""
    quoted = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+~") in GROUPS and any(v.lower() in _FLOAT_WORDS for v in value.split(",")):
            override = key + "=" + ",".join(f"'{v}'" if v.lower() in _FLOAT_WORDS else v for v in value.split(","))
        quoted.append(override)
    return quoted


def _build(cls: type, section: str, values: Any) -> Any:
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{section}: {error}".replace("__init__() ", "")) from None


def attack_settings(cfg: DictConfig) -> AttackSettings:
    """The simulated attack of the composed config (``attack=none``: every node honest)."""
    attack = _build(AttackSettings, "attack", plain(cfg.attack)) if cfg.get("attack") is not None else AttackSettings()
    attack.attackers(int(cfg.federation.nodes))  # refuses an attack with no honest node left
    return attack


def runtime_settings(cfg: DictConfig) -> RuntimeSettings:
    """Where the virtual nodes run (``federation.ray_address``) and the start-up deadlines (``federation.startup``)."""
    federation = cfg.federation
    startup = plain(federation.startup) if federation.get("startup") is not None else {}
    address = federation.get("ray_address")
    return _build(RuntimeSettings, "federation.startup", {**startup, "ray_address": str(address) if address else None})


def new_run_id() -> str:
    """A run id that sorts by time and never repeats (ledgers key their plans by it)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain data (for the report)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def node_kinds(cfg: DictConfig) -> list[str]:
    """One kind per node, the configured list repeated in order."""
    kinds = list(cfg.federation.kinds)
    if not kinds:
        raise ConfigError("federation.kinds is empty; give at least one of hotline, police, platform")
    return [kinds[i % len(kinds)] for i in range(int(cfg.federation.nodes))]


def run_settings(cfg: DictConfig, *, run_dir: Path, data_dir: Path, test_path: Path, ledger_dir: Path) -> RunSettings:
    """Validate the composed config and flatten it into the run's settings."""
    if cfg.federation.get("kind", "simulation") != "simulation":
        raise ConfigError(
            f"federation={cfg.federation.kind} is not a simulated federation; "
            "run production federations with `cesagram server run`"
        )
    try:
        model = instantiate(cfg.model)
    except Exception as error:  # noqa: BLE001 - Hydra wraps the dataclass's ConfigError
        cause = error.__cause__ if isinstance(error.__cause__, ConfigError) else error
        raise ConfigError(f"model: {cause}") from None
    if not isinstance(model, ModelSpec):
        raise ConfigError("model: _target_ must be federation.models.spec.ModelSpec")
    federation = cfg.federation
    min_nodes = federation.get("min_nodes")
    return RunSettings(
        run_id=new_run_id(),
        run_dir=str(run_dir),
        rounds=int(cfg.rounds),
        nodes=int(federation.nodes),
        seed=int(cfg.seed),
        mode=str(cfg.mode),
        node_kinds=",".join(node_kinds(cfg)),
        data_dir=str(data_dir),
        test_path=str(test_path),
        ledger_dir=str(ledger_dir),
        cache_dir=str(cfg.cache_dir or ""),
        min_nodes=int(min_nodes) if min_nodes is not None else 0,
        timeout_s=float(cfg.timeout_s),
        model=model,
        train=_build(TrainSettings, "train", {**plain(cfg.train), "seed": int(cfg.seed)}),
        privacy=_build(PrivacySettings, "privacy", {k: v for k, v in plain(cfg.privacy).items() if k != "ledger_dir"}),
        strategy=_build(StrategySettings, "strategy", plain(cfg.strategy)),
        evaluation=_build(EvaluationSettings, "evaluation", plain(cfg.evaluation)),
    )
