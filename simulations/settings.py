"""What ``cesagram simulate`` takes from the composed config besides the run settings.

The mapping to :class:`RunSettings` is :func:`conf.settings.settings_from_config`, shared
with ``cesagram server run``; here only the simulation's own parts: its attack, its Flower
runtime, and the refusal of a production federation.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from conf.settings import build, settings_from_config
from deploy.settings import RuntimeSettings
from federation.attack import AttackSettings
from federation.errors import ConfigError
from federation.runconfig import RunSettings

def attack_settings(cfg: DictConfig) -> AttackSettings:
    """The simulated attack of the composed config (``attack=none``: every node honest)."""
    attack = build(AttackSettings, "attack", cfg.attack)
    attack.attackers(int(cfg.federation.nodes))  # refuses an attack with no honest node left
    return attack


def runtime_settings(cfg: DictConfig) -> RuntimeSettings:
    """Where the virtual nodes run (``federation.ray_address``) and the start-up deadlines (``federation.startup``)."""
    return build(RuntimeSettings, "federation.startup", cfg.federation.startup, ray_address=cfg.federation.ray_address)


def run_settings(cfg: DictConfig, *, run_dir: Path, data_dir: Path, test_path: Path, ledger_dir: Path) -> RunSettings:
    """The run settings of a simulated federation (a production one is ``cesagram server run``'s)."""
    if cfg.federation.kind != "simulation":
        raise ConfigError(
            f"federation={cfg.federation.kind} is not a simulated federation; "
            "run production federations with `cesagram server run`"
        )
    return settings_from_config(cfg, run_dir=run_dir, data_dir=data_dir, test_path=test_path, ledger_dir=ledger_dir)
