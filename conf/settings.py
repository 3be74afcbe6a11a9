"""Hydra's composed config -> the typed, flat :class:`RunSettings` that Flower carries.

One composition (:func:`compose`) and one mapping (:func:`settings_from_config`) for every
command: ``cesagram simulate`` (and the baselines and benchmarks), ``cesagram server run``
and ``cesagram node check``. Hydra composes and type-checks against :mod:`conf.schema`;
the dataclasses check the values; no ``DictConfig`` goes further than this module's callers.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

import conf
from conf.schema import MODEL_TARGET
from federation.errors import ConfigError
from federation.models.spec import ModelSpec
from federation.runconfig import EvaluationSettings, PretrainSettings, PrivacySettings, RunSettings, StrategySettings
from federation.training import TrainSettings

T = TypeVar("T")

CONF_DIR = Path(conf.__file__).resolve().parent
GROUPS = ("data", "model", "privacy", "strategy", "federation", "attack", "experiment")
#: Option names Hydra's override grammar reads as floats (``attack=nan``): quoted before Hydra parses them.
_FLOAT_WORDS = ("nan", "inf", "-inf", "+inf")
#: Production runs reject these run-config privacy keys: a real node sets its own cap.
_NODE_OWN_PRIVACY = ("cap",)


# -- composition -------------------------------------------------------------------------------
def group_options(group: str) -> list[str]:
    """The config names available in a Hydra group (conf/<group>/*.yaml)."""
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def _split(override: str) -> tuple[str, str, str]:
    key, sep, value = override.partition("=")
    return key.lstrip("+~"), sep, value


def check_group_overrides(overrides: Sequence[str]) -> None:
    """Refuse ``group=unknown`` before Hydra does, with one line naming the allowed values."""
    for override in overrides:
        key, sep, value = _split(override)
        if sep and key in GROUPS and value not in ("null", ""):
            options = group_options(key)
            for choice in value.split(","):  # --multirun sweeps: a,b,c
                if choice not in options:
                    raise ConfigError(f"{key}={choice!r} is not allowed; choose one of: {', '.join(options)}")


def hydra_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides with group options that Hydra would read as numbers quoted (``attack=nan``)."""
    quoted = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+~") in GROUPS and any(v.lower() in _FLOAT_WORDS for v in value.split(",")):
            override = key + "=" + ",".join(f"'{v}'" if v.lower() in _FLOAT_WORDS else v for v in value.split(","))
        quoted.append(override)
    return quoted


def composition_error(error: Exception) -> ConfigError:
    """Hydra's composition error as one line: what failed and OmegaConf's reason, which name the key."""
    texts = [str(error), str(error.__cause__ or "")]
    lines: list[str] = []
    for text in texts:
        for line in text.splitlines():
            line = line.strip().rstrip(":.")
            # indented lines are OmegaConf's details; "+key" would not help: the schema has no such key
            if line and line not in lines and not line.startswith(("full_key", "object_type", "reference_type", "To append")):
                lines.append(line)
    message = ": ".join(lines) or type(error).__name__
    keys = [line.split(":", 1)[1].strip() for text in texts for line in text.splitlines() if "full_key:" in line]
    if keys and keys[0] not in message:
        message += f" (key {keys[0]})"
    return ConfigError(message)


def compose(overrides: Sequence[str], *, return_hydra_config: bool = False) -> DictConfig:
    """The root config with ``overrides`` applied; a bad option, key or type is one ConfigError line."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException

    check_group_overrides(overrides)
    try:
        with initialize_config_module(config_module="conf", version_base="1.3"):
            return hydra_compose(
                config_name="config", overrides=hydra_overrides(overrides), return_hydra_config=return_hydra_config
            )
    except HydraException as error:
        raise composition_error(error) from None


def _sweep_choices(overrides: Sequence[str]) -> Iterator[list[str]]:
    """The single-job override lists that together use every value of a ``--multirun`` sweep once."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as error:
        raise composition_error(error) from None
    choices = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
        for o in parsed
    ]
    first = [options[0] for options in choices]
    yield first
    for i, options in enumerate(choices):
        for option in options[1:]:
            yield [*first[:i], option, *first[i + 1 :]]


def check_overrides(arguments: Sequence[str]) -> None:
    """Compose what ``cesagram simulate ARGS`` will compose, so that a bad key or type is one line, not Hydra's report.

    ``arguments`` are the command line after ``simulate``; the overrides among them are
    composed once per value of each sweep. Hydra's own settings (``hydra.*``) are Hydra's.
    """
    overrides = [a for a in arguments if ("=" in a or a.startswith("~")) and not a.startswith("-")]
    overrides = [o for o in overrides if not _split(o)[0].startswith(("hydra.", "hydra/"))]
    check_group_overrides(overrides)
    for single in _sweep_choices(overrides):
        compose(single)


# -- the mapping -------------------------------------------------------------------------------
def plain(cfg: Any) -> dict[str, Any]:
    """The composed config (or one of its sections) as plain data, interpolations resolved."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def build(cls: type[T], section: str, values: Any, **fixed: Any) -> T:
    """Dataclass ``cls`` from a config section (a key appended with ``+`` is refused here, by name)."""
    items = plain(values) if isinstance(values, DictConfig) else dict(values or {})
    try:
        return cls(**{**items, **fixed})
    except TypeError as error:
        raise ConfigError(f"{section}: {error}".replace("__init__() ", "")) from None


def new_run_id() -> str:
    """A run id that sorts by time and never repeats (ledgers key their plans by it)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def node_kinds(cfg: DictConfig) -> list[str]:
    """One kind per node of a simulated federation, ``federation.kinds`` repeated in order."""
    kinds = list(cfg.federation.kinds)
    if not kinds:
        raise ConfigError("federation.kinds is empty; give at least one of hotline, police, platform")
    return [kinds[i % len(kinds)] for i in range(int(cfg.federation.nodes))]


def model_spec(cfg: DictConfig) -> ModelSpec:
    """The ``model`` group as a :class:`ModelSpec`."""
    values = plain(cfg.model)
    target = values.pop("_target_", MODEL_TARGET)
    if target != MODEL_TARGET:
        raise ConfigError(f"model: _target_ must be {MODEL_TARGET}")
    return build(ModelSpec, "model", values)


def _test_path(cfg: DictConfig, given: Path | None) -> str:
    if given is not None:
        return str(given)
    path = cfg.federation.get("test_path")
    if not path:
        return ""
    if not Path(str(path)).expanduser().is_file():
        raise ConfigError(f"federation.test_path={path!r} is not a file; give the coordinator's labelled test set or null")
    return str(Path(str(path)).expanduser().resolve())


def settings_from_config(
    cfg: DictConfig,
    *,
    run_dir: Path,
    data_dir: Path | None = None,
    test_path: Path | None = None,
    ledger_dir: Path | None = None,
) -> RunSettings:
    """Validate the composed config and map it to the run's settings (simulated or production).

    Notes
    -----
    A simulated federation (``federation.kind=simulation``) names its node kinds, and the
    caller gives where its data, test file and ledgers are. A production one takes its test
    file from ``federation.test_path`` and nothing about a node's cap, data or ledger: each
    node takes those from its own ``--node-config``; ``privacy.epsilon`` is what this run
    asks each node to spend at most.
    """
    federation = cfg.federation
    production = federation.kind == "production"
    privacy = {k: v for k, v in plain(cfg.privacy).items() if not (production and k in _NODE_OWN_PRIVACY)}
    min_nodes = federation.min_nodes
    run = RunSettings(
        run_id=new_run_id(),
        run_dir=str(run_dir),
        rounds=cfg.rounds,
        nodes=federation.nodes,
        seed=cfg.seed,
        mode=cfg.mode,
        node_kinds="" if production else ",".join(node_kinds(cfg)[: len(cfg.federation.kinds)]),  # the cycle
        data_dir=str(data_dir or ""),
        test_path=_test_path(cfg, test_path),
        ledger_dir=str(ledger_dir or ""),
        cache_dir=str(cfg.cache_dir or ""),
        min_nodes=min_nodes if min_nodes is not None else 0,
        timeout_s=cfg.timeout_s,
        model=model_spec(cfg),
        train=build(TrainSettings, "train", cfg.train, seed=cfg.seed),
        privacy=build(PrivacySettings, "privacy", privacy),
        strategy=build(StrategySettings, "strategy", cfg.strategy),
        evaluation=build(EvaluationSettings, "evaluation", cfg.evaluation),
        pretrain=build(PretrainSettings, "pretrain", cfg.pretrain),
    )
    if production and run.mode != "federated":
        raise ConfigError(f"mode={run.mode!r}: production runs are federated; baselines run with `cesagram simulate`")
    return run


def default_settings() -> RunSettings:
    """The settings a coordinator's ``cesagram server run`` gets with no overrides (for planning at a node)."""
    return settings_from_config(compose(["federation=production"]), run_dir=Path("."))
