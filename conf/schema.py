"""Hydra structured configs: the schema every config of ``conf/`` composes against.

A wrong key or a wrong type fails at composition, with Hydra's message naming the key
(``privacy.epsilonn=3``: "Key 'epsilonn' not in 'PrivacyConfig'"), before any work starts.
The keys, types and defaults of a group come from the dataclass the code builds from it
(:class:`ModelSpec`, :class:`TrainSettings`, :class:`PrivacySettings`, ...): :func:`config_of`
derives the schema from that dataclass, so each default is written once, there. The YAML
files under ``conf/`` may restate a value (with its comment); ``tests/simulations`` checks
that the default options restate the dataclass defaults unchanged. Keys with no dataclass
behind them (the root's ``rounds``, the data sources, the simulated federation's layout)
are declared here, once.

Registered in Hydra's ``ConfigStore`` when ``conf`` is imported, which Hydra does before it
reads any of the YAML files; ``config.yaml`` and each option with a schema of its own list
their schema first in their defaults list (Hydra's "extending a structured config").
"""

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

from deploy.settings import DeploymentSettings, RuntimeSettings, SimulationResources
from federation.attack import AttackSettings
from federation.data.synthetic import SynthSettings
from federation.models.spec import ModelSpec
from federation.privacy.node_policy import DERIVED_FIELDS, NodePolicy
from federation.runconfig import EvaluationSettings, PretrainSettings, PrivacySettings, RunSettings, StrategySettings
from federation.training import TrainSettings

#: The model group's ``_target_`` (the YAML files name the class they describe).
MODEL_TARGET = f"{ModelSpec.__module__}.{ModelSpec.__qualname__}"


def _config_type(annotation: Any) -> Any:
    """The type OmegaConf checks for a field of this annotation (it knows no Literal, tuple or ``X | None``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str  # the dataclass checks the choice, with a line that lists the allowed values
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        inner = _config_type(args[0]) if len(args) == 1 else Any
        return Optional[inner] if type(None) in typing.get_args(annotation) else inner
    if origin in (tuple, list):
        return List[_config_type(typing.get_args(annotation)[0])]
    if dataclasses.is_dataclass(annotation):
        return config_of(annotation)
    return annotation


def _config_field(source: dataclasses.Field, kind: Any, *, optional: bool) -> Any:
    if optional:
        return field(default=None)
    if source.default is not dataclasses.MISSING:
        value = source.default
    elif source.default_factory is not dataclasses.MISSING:
        value = source.default_factory()
    else:
        return field(default=MISSING)
    if dataclasses.is_dataclass(value):
        return field(default_factory=kind)
    if isinstance(value, (tuple, list)):
        return field(default_factory=functools.partial(list, value))
    return field(default=value)


@functools.cache
def config_of(
    cls: type, *, name: str | None = None, exclude: tuple[str, ...] = (), optional: bool = False
) -> type:
    """The structured config of dataclass ``cls``: its fields, types and defaults, less ``exclude``.

    ``optional`` makes every key optional with no value (None: "not set here, the code's
    own default applies"), for a group that states only what differs from its dataclass.
    """
    hints = typing.get_type_hints(cls)
    fields = []
    for source in dataclasses.fields(cls):
        if source.name in exclude:
            continue
        kind = _config_type(hints[source.name])
        if optional:
            kind = Optional[kind]
        fields.append((source.name, kind, _config_field(source, kind, optional=optional)))
    return dataclasses.make_dataclass(name or f"{cls.__name__}Config", fields)


def default_of(cls: type, key: str) -> Any:
    """The default of field ``key`` of dataclass ``cls`` (to reuse it in a schema that adds keys)."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == key)


# -- the groups with one schema for every option -----------------------------------------------
ModelConfig = dataclasses.make_dataclass(
    "ModelConfig",
    [("_target_", str, field(default=MODEL_TARGET))],
    bases=(config_of(ModelSpec, name="ModelSpecConfig"),),
)
PrivacyConfig = config_of(PrivacySettings, name="PrivacyConfig")
StrategyConfig = config_of(StrategySettings, name="StrategyConfig")
AttackConfig = config_of(AttackSettings, name="AttackConfig")
#: ``train.seed`` is the run's ``seed``; ``proximal_mu`` is FedProx's ``strategy.proximal_mu``.
TrainConfig = config_of(TrainSettings, name="TrainConfig", exclude=("proximal_mu", "seed"))
EvaluationConfig = config_of(EvaluationSettings, name="EvaluationConfig")
PretrainConfig = config_of(PretrainSettings, name="PretrainConfig")


# -- data: one schema per source ---------------------------------------------------------------
@dataclass
class SyntheticDataConfig:
    """``data=synthetic``: a synthetic federation written into the run folder."""

    kind: str = "synthetic"
    seed: int = II("seed")
    conversations_per_node: int = 2000  # SynthSettings' own default (220) serves quick library calls
    test_conversations: int = 1000
    layout: str = "files"  # files: node-{i}.jsonl; sharded: one store indexed by node (thousands of small nodes)
    size_distribution: str = default_of(SynthSettings, "size_distribution")
    min_node_conversations: int = default_of(SynthSettings, "min_node_conversations")
    max_node_conversations: int = default_of(SynthSettings, "max_node_conversations")
    size_exponent: float = default_of(SynthSettings, "size_exponent")


@dataclass
class SynthesisKeys:
    """The synthetic source's sizes and layout, unused by the other sources: an experiment sized
    for synthetic data (``experiment=quick``, ``experiment=cross_device``) still composes with them."""

    conversations_per_node: Optional[int] = None
    test_conversations: Optional[int] = None
    layout: Optional[str] = None
    size_distribution: Optional[str] = None
    min_node_conversations: Optional[int] = None
    max_node_conversations: Optional[int] = None
    size_exponent: Optional[float] = None


@dataclass
class JsonlDataConfig(SynthesisKeys):
    """``data=jsonl``: ``dir/node-{i}.jsonl`` (or a sharded store) and ``dir/test.jsonl``."""

    kind: str = "jsonl"
    dir: str = MISSING


@dataclass
class Pan12DataConfig(SynthesisKeys):
    """``data=pan12``: the PAN-2012 corpus split across the simulated nodes."""

    kind: str = "pan12"
    train_xml: str = MISSING
    train_predators: str = MISSING
    test_xml: str = MISSING
    test_predators: str = MISSING


# -- federation: simulated or real -------------------------------------------------------------
StartupConfig = config_of(RuntimeSettings, name="StartupConfig", exclude=("ray_address",))
#: The virtual nodes' policy states only what differs from a real node's (``NodePolicy``'s) defaults.
VirtualNodePolicyConfig = config_of(NodePolicy, name="VirtualNodePolicyConfig", exclude=DERIVED_FIELDS, optional=True)


@dataclass
class SimulationFederationConfig:
    """``federation=simulation``: virtual nodes under Flower's simulation runtime."""

    kind: str = "simulation"
    nodes: int = 5
    kinds: List[str] = field(default_factory=lambda: ["hotline", "hotline", "police", "police", "platform"])
    min_nodes: Optional[int] = None
    size_skew: float = default_of(SynthSettings, "size_skew")
    label_skew: float = default_of(SynthSettings, "label_skew")
    num_cpus: int = default_of(SimulationResources, "num_cpus")
    num_gpus: float = default_of(SimulationResources, "num_gpus")
    ray_address: Optional[str] = default_of(RuntimeSettings, "ray_address")
    startup: StartupConfig = field(default_factory=StartupConfig)  # type: ignore[valid-type]
    ledger_dir: Optional[str] = None
    node_policy: VirtualNodePolicyConfig = field(default_factory=VirtualNodePolicyConfig)  # type: ignore[valid-type]


#: ``federation=production``: the SuperLink, its CA and SecAgg+ (``DeploymentSettings``), and the nodes expected.
ProductionFederationConfig = dataclasses.make_dataclass(
    "ProductionFederationConfig",
    [
        ("kind", str, field(default="production")),
        ("nodes", int, field(default=MISSING)),
        ("min_nodes", Optional[int], field(default=None)),
        ("test_path", Optional[str], field(default=None)),
    ],
    bases=(config_of(DeploymentSettings, name="DeploymentConfig", exclude=("tls", "resume")),),
)


# -- the root ----------------------------------------------------------------------------------
@dataclass
class RootConfig:
    """``conf/config.yaml``: one field per group, and the run's own keys."""

    data: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)  # type: ignore[valid-type]
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)  # type: ignore[valid-type]
    strategy: StrategyConfig = field(default_factory=StrategyConfig)  # type: ignore[valid-type]
    federation: Any = MISSING
    attack: AttackConfig = field(default_factory=AttackConfig)  # type: ignore[valid-type]
    mode: str = default_of(RunSettings, "mode")
    seed: int = default_of(RunSettings, "seed")
    rounds: int = 10
    timeout_s: float = default_of(RunSettings, "timeout_s")
    compare_baselines: bool = True
    cache_dir: Optional[str] = None
    train: TrainConfig = field(default_factory=TrainConfig)  # type: ignore[valid-type]
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)  # type: ignore[valid-type]
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # type: ignore[valid-type]


#: Options with a schema of their own: ``conf/<group>/<option>.yaml`` lists ``<option>_schema`` first.
OPTION_SCHEMAS: dict[tuple[str, str], type] = {
    ("data", "synthetic"): SyntheticDataConfig,
    ("data", "jsonl"): JsonlDataConfig,
    ("data", "pan12"): Pan12DataConfig,
    ("federation", "simulation"): SimulationFederationConfig,
    ("federation", "production"): ProductionFederationConfig,
}
ROOT_SCHEMA = "config_schema"


def register() -> None:
    """Store the schemas in Hydra's ConfigStore (again: storing is idempotent)."""
    store = ConfigStore.instance()
    store.store(name=ROOT_SCHEMA, node=RootConfig)
    for (group, option), node in OPTION_SCHEMAS.items():
        store.store(group=group, name=f"{option}_schema", node=node)


register()
