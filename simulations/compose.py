"""Compose the project's Hydra config outside ``@hydra.main`` (for commands other than simulate)."""

from __future__ import annotations

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.errors import HydraException
from omegaconf import DictConfig

from federation.errors import ConfigError
from simulations.settings import check_group_overrides, hydra_overrides


def compose(overrides: list[str]) -> DictConfig:
    """The root config with ``overrides`` applied; bad overrides become one-line ConfigErrors."""
    check_group_overrides(overrides)
    try:
        with initialize_config_module(config_module="conf", version_base="1.3"):
            return hydra_compose(config_name="config", overrides=hydra_overrides(overrides))
    except HydraException as error:
        raise ConfigError(str(error).splitlines()[0]) from None
