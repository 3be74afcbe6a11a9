"""The flat, typed run configuration that reaches the ServerApp and every node.

Flower's run config holds flat scalars only. Hydra composes and type-checks outside the
core (``conf/schema.py`` takes its keys and defaults from the dataclasses here, and
``conf.settings.settings_from_config`` is the one mapping to :class:`RunSettings`); what
crosses into Flower is :class:`RunSettings` flattened to dotted kebab-case keys
(``train.batch-size``), and each app turns it back into the same typed object. This
module is the one place that spells out those keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError
from federation.data.synthetic.public import PublicSetSettings
from federation.models.spec import ModelSpec
from federation.training import TrainSettings

Scalar = bool | int | float | str
T = TypeVar("T")

PRIVACY_MODES = ("record", "none", "central")
STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedmedian", "fedtrimmedavg", "krum", "normbounded")
RUN_MODES = ("federated", "centralized", "local")
ACCOUNTANTS = ("rdp", "prv")  # federation.privacy.accounting.ACCOUNTANTS (not imported: it pulls in Opacus)
AUDIT_KINDS = ("off", "white", "black", "both")  # federation.privacy.audit.AUDIT_KINDS (a test checks they agree)
WHITE_KINDS = ("white", "both")  # audits that mix gradient canaries into DP-SGD
INPUT_KINDS = ("black", "both")  # audits that put canary conversations into the nodes' training data
#: Strategies whose aggregate is the plain mean of the clipped updates, the quantity central
#: DP's noise is calibrated for (FedProx only changes the nodes' local objective). Krum,
#: FedMedian and FedTrimmedAvg pick or discard updates by their values, FedAdam rescales the
#: mean per coordinate, norm-bounded FedAvg clips to a norm taken from the updates
#: themselves: one node's update then moves the result by more than the clipping norm / m.
CENTRAL_DP_STRATEGIES = ("fedavg", "fedprox")


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


def _check_positive(key: str, value: float, *, strict: bool = True) -> None:
    if (value <= 0) if strict else (value < 0):
        raise ConfigError(f"{key}={value!r} must be {'> 0' if strict else '>= 0'}")


@dataclass(frozen=True)
class PrivacySettings:
    """How a run protects the conversations.

    Notes
    -----
    ``record``: DP-SGD at each node, one conversation is the unit; ``epsilon`` is what this
    run may spend per node, ``cap`` the node's lifetime cap (in simulation the researcher is
    every node's operator; a real node takes its cap from its own node config only).
    ``central``: each node's update is clipped to ``clipping_norm`` at the node, the server
    averages them with equal weights over the planned number of nodes and adds Gaussian
    noise of ``noise_multiplier * clipping_norm`` to their sum; the unit is a whole node
    (:mod:`server.central_dp`).
    ``accountant``: ``rdp`` or ``prv``. In simulation it is the accountant the virtual
    nodes' *new* ledgers are kept by (the researcher is their operator); a node's existing
    ledger keeps its own, and a real node's ledger is set by its operator only. It is also
    the accountant of the central-DP epsilon the server reports.
    ``audit``: ``off``, ``white`` (:mod:`federation.privacy.audit`): each node mixes
    ``audit_canaries`` gradient canaries into its DP-SGD and reports the one-run lower
    bound on its epsilon; with ``mode=none`` it is the audit's control (DP-SGD's sampling
    and clipping without noise). ``black`` (:mod:`federation.privacy.input_canaries`):
    each node trains on ``audit_input_canaries`` canary conversations, each by a secret
    coin, and tests the final model's scores on them; ``both``: the two. A node's own
    policy must accept it. Unset (None), it is ``white`` under ``mode=record`` and ``off``
    otherwise, as ``conf/privacy/*.yaml`` state.

    The defaults are ``privacy=dp_sgd``, the config's default (the Hydra schema of the
    ``privacy`` group takes its keys and defaults from here).
    """

    mode: str = "record"
    epsilon: float = 8.0
    delta: float = 1e-5
    max_grad_norm: float = 0.5
    sample_rate: float | None = None
    cap: float | None = None
    noise_multiplier: float = 1.0
    clipping_norm: float = 1.0
    accountant: str = "rdp"
    audit: str | None = None
    audit_canaries: int = 1000
    audit_input_canaries: int = 100

    @property
    def simulated_cap(self) -> float:
        """The lifetime cap of the researcher's own parties (virtual nodes, baselines): ``cap``, else ``epsilon``."""
        return self.cap if self.cap is not None else self.epsilon

    def __post_init__(self) -> None:
        _check_choice("privacy.mode", self.mode, PRIVACY_MODES)
        _check_choice("privacy.accountant", self.accountant, ACCOUNTANTS)
        if self.audit is False:  # YAML 1.1 reads an unquoted off as false
            object.__setattr__(self, "audit", "off")
        if self.audit is None:  # the default: audit DP-SGD, nothing else (central DP has no canaries to hold)
            object.__setattr__(self, "audit", "white" if self.mode == "record" else "off")
        _check_choice("privacy.audit", self.audit, AUDIT_KINDS)
        if not is_integer(self.audit_canaries, numpy=False) or self.audit_canaries < 2:
            raise ConfigError(f"privacy.audit_canaries={self.audit_canaries!r} must be an integer >= 2")
        if not is_integer(self.audit_input_canaries, numpy=False) or self.audit_input_canaries < 10:
            raise ConfigError(f"privacy.audit_input_canaries={self.audit_input_canaries!r} must be an integer >= 10")
        if self.audit != "off" and self.mode == "central":
            raise ConfigError(
                f"privacy.audit={self.audit} with privacy=central: the audit tests the nodes' record-level "
                "DP-SGD, and central DP adds its noise at the server; use privacy.audit=off"
            )
        if self.mode == "record":
            _check_positive("privacy.epsilon", self.epsilon)
            if not 0 < self.delta < 1:
                raise ConfigError(f"privacy.delta={self.delta!r} must be in (0, 1), e.g. 1e-5")
            _check_positive("privacy.max_grad_norm", self.max_grad_norm)
            if self.sample_rate is not None and not 0 < self.sample_rate <= 1:
                raise ConfigError(f"privacy.sample_rate={self.sample_rate!r} must be in (0, 1] or null")
            if self.cap is not None:
                _check_positive("privacy.cap", self.cap)
        if self.mode == "central":
            _check_positive("privacy.noise_multiplier", self.noise_multiplier, strict=False)
            _check_positive("privacy.clipping_norm", self.clipping_norm)
            if not 0 < self.delta < 1:
                raise ConfigError(f"privacy.delta={self.delta!r} must be in (0, 1), e.g. 1e-5")


@dataclass(frozen=True)
class StrategySettings:
    """Which ``flwr.serverapp.strategy`` aggregates, with its own parameters."""

    name: str = "fedavg"
    fraction_train: float = 1.0
    fraction_evaluate: float = 1.0  # share of the nodes asked to evaluate each round (cross-device: a sample)
    proximal_mu: float = 0.0
    eta: float = 0.01
    eta_l: float = 0.003
    beta_1: float = 0.9
    beta_2: float = 0.99
    tau: float = 1e-3
    beta: float = 0.2
    num_malicious_nodes: int = 0
    max_update_norm: float | None = None  # normbounded: each update clipped to this; None = the round's median norm

    def __post_init__(self) -> None:
        _check_choice("strategy.name", self.name, STRATEGIES)
        if self.max_update_norm is not None:
            _check_positive("strategy.max_update_norm", self.max_update_norm)
        if not 0 < self.fraction_train <= 1:
            raise ConfigError(f"strategy.fraction_train={self.fraction_train!r} must be in (0, 1]")
        if not 0 < self.fraction_evaluate <= 1:
            raise ConfigError(f"strategy.fraction_evaluate={self.fraction_evaluate!r} must be in (0, 1]")
        _check_positive("strategy.proximal_mu", self.proximal_mu, strict=False)
        if not 0 <= self.beta < 0.5:
            raise ConfigError(f"strategy.beta={self.beta!r} must be in [0, 0.5)")


@dataclass(frozen=True)
class EvaluationSettings:
    """Validation split, histogram resolution and the early-warning rule."""

    validation_fraction: float = 0.2
    histogram_bins: int = 200
    early_k: int = 5
    early_last: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(
                f"evaluation.validation_fraction={self.validation_fraction!r} must be in (0, 1)"
            )
        if self.histogram_bins < 10:
            raise ConfigError(f"evaluation.histogram_bins={self.histogram_bins!r} must be >= 10")
        if not 1 <= self.early_k <= self.early_last:
            raise ConfigError(
                f"evaluation.early_k={self.early_k!r} must be between 1 and evaluation.early_last={self.early_last}"
            )


@dataclass(frozen=True, slots=True)
class PretrainSettings:
    """``pretrain.*``: whether and how the server pretrains the head on the public set.

    Attributes
    ----------
    enabled
        Pretrain before round 1 (a resumed run keeps its checkpoint's weights instead).
    conversations, positive_rate
        Size and share of grooming of the public set (see :mod:`federation.data.synthetic.public`).
    epochs
        Plain training passes over the public set; the best one on its held-out fifth is kept.
    learning_rate, momentum, batch_size
        Of the plain SGD (the window length is the run's ``train.train_window``).
    """

    enabled: bool = True
    conversations: int = 3000
    positive_rate: float = 0.3
    epochs: int = 20
    learning_rate: float = 0.5
    momentum: float = 0.9
    batch_size: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"pretrain.enabled must be true or false, got {self.enabled!r}")
        if not is_integer(self.epochs) or self.epochs < 1:
            raise ConfigError(f"pretrain.epochs must be a positive integer, got {self.epochs!r}")
        if not is_finite_number(self.learning_rate) or self.learning_rate <= 0:
            raise ConfigError(f"pretrain.learning_rate must be a positive number, got {self.learning_rate!r}")
        # The public set's own keys are checked once, by the public set's settings.
        PublicSetSettings(conversations=self.conversations, positive_rate=self.positive_rate)
        if not is_finite_number(self.momentum) or not 0 <= self.momentum < 1:
            raise ConfigError(f"pretrain.momentum must be a number in [0, 1), got {self.momentum!r}")
        if not is_integer(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"pretrain.batch_size must be a positive integer, got {self.batch_size!r}")


@dataclass(frozen=True)
class RunSettings:
    """Everything the ServerApp and the nodes need to know about one run."""

    run_id: str
    run_dir: str
    rounds: int
    nodes: int
    seed: int = 0
    mode: str = "federated"
    node_kinds: str = ""  # comma-separated, repeated in order over the nodes (simulation); the cycle only, so
    # that the run config, which Flower copies into every virtual node's context, stays small at 10,000 nodes
    data_dir: str = ""  # simulation: node-{i}.jsonl live here
    test_path: str = ""  # simulation: the held-out test file the server scores at the end
    ledger_dir: str = ""  # simulation: node-{i}.json privacy ledgers live here
    cache_dir: str = ""
    min_nodes: int = 0  # 0 = every node
    timeout_s: float = 3600.0
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSettings = field(default_factory=TrainSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    strategy: StrategySettings = field(default_factory=StrategySettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, RUN_MODES)
        if self.rounds < 1:
            raise ConfigError(f"rounds={self.rounds!r} must be >= 1")
        if self.nodes < 1:
            raise ConfigError(f"federation.nodes={self.nodes!r} must be >= 1")
        if self.min_nodes < 0 or self.min_nodes > self.nodes:
            raise ConfigError(
                f"federation.min_nodes={self.min_nodes!r} must be between 1 and federation.nodes={self.nodes} "
                "(or null for every node)"
            )
        if self.privacy.mode == "central" and self.strategy.name not in CENTRAL_DP_STRATEGIES:
            raise ConfigError(
                f"privacy=central with strategy={self.strategy.name}: central DP's noise is calibrated for the plain "
                f"mean of clipped updates, which {self.strategy.name} does not compute; use strategy="
                f"{' or strategy='.join(CENTRAL_DP_STRATEGIES)}"
            )
        if self.strategy.name == "krum" and self.nodes < 2 * self.strategy.num_malicious_nodes + 3:
            raise ConfigError(
                f"strategy.num_malicious_nodes={self.strategy.num_malicious_nodes} needs "
                f"federation.nodes >= {2 * self.strategy.num_malicious_nodes + 3} for Krum"
            )

    @property
    def kinds(self) -> tuple[str, ...]:
        """One kind per node: ``node_kinds`` repeated in order (empty in production)."""
        cycle = self._kind_cycle()
        return tuple(cycle[i % len(cycle)] for i in range(self.nodes)) if cycle else ()

    def kind_of(self, index: int) -> str:
        """Node ``index``'s kind ("unknown" when the run names none), without expanding every node's."""
        cycle = self._kind_cycle()
        return cycle[index % len(cycle)] if cycle and 0 <= index < self.nodes else "unknown"

    def _kind_cycle(self) -> list[str]:
        return [k for k in self.node_kinds.split(",") if k]

    def party_batch_size(self, conversations: int, *, pooled_nodes: int = 1) -> int:
        """Expected batch of a party training on ``conversations`` that pool ``pooled_nodes`` nodes' data.

        With ``privacy.sample_rate`` set (DP-SGD), that share of the conversations. With
        DP-SGD otherwise ``train.batch_size`` per pooled node: the centralized baseline
        pools every node and samples at the nodes' rate, so one pooled step stands for one
        step at every node (the same steps per epoch and the same noise multiplier). Without
        DP the batch has no privacy meaning and stays ``train.batch_size``, the plain
        training a non-private baseline should get.
        """
        if self.privacy.mode != "record":
            return self.train.batch_size
        if self.privacy.sample_rate is not None:
            return max(1, round(self.privacy.sample_rate * conversations))
        return self.train.batch_size * max(1, pooled_nodes)

    @property
    def required_nodes(self) -> int:
        """Nodes a round needs: ``min_nodes`` or, when unset, every node."""
        return self.min_nodes or self.nodes

    def to_flat(self) -> dict[str, Scalar]:
        """Flat ``{"train.batch-size": 32, ...}`` for Flower's run config (None values left out)."""
        return flatten(self)

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> RunSettings:
        """Rebuild and validate the settings from a Flower run config."""
        return unflatten(cls, flat)


def _key(name: str) -> str:
    return name.replace("_", "-")


def flatten(obj: Any, prefix: str = "") -> dict[str, Scalar]:
    """Flatten a dataclass of scalars and nested dataclasses into dotted kebab-case keys."""
    flat: dict[str, Scalar] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = prefix + _key(f.name)
        if dataclasses.is_dataclass(value):
            flat.update(flatten(value, key + "."))
        elif value is not None:
            flat[key] = value
    return flat


def _scalar_types(annotation: Any) -> tuple[type, ...]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(a for a in typing.get_args(annotation) if a is not type(None))
    return (annotation,)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        if value in choices:
            return value
        raise ConfigError(f"run config key {key!r}: {value!r} is not one of {', '.join(map(str, choices))}")
    allowed = _scalar_types(annotation)
    if bool in allowed:
        if isinstance(value, bool):
            return value
    elif int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif str in allowed and isinstance(value, str):
        return value
    names = " or ".join(t.__name__ for t in allowed)
    raise ConfigError(f"run config key {key!r}: expected {names}, got {type(value).__name__} {value!r}")


def unflatten(cls: type[T], flat: Mapping[str, Any], prefix: str = "") -> T:
    """Inverse of :func:`flatten`. A missing key is refused, never filled in from a default.

    Only an optional field may be absent: :func:`flatten` leaves out ``None`` (Flower's
    records cannot hold it). A run config that lacks a key comes from another version of
    the code, and guessing its value would silently run something else.
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = prefix + _key(f.name)
        annotation = hints[f.name]
        if dataclasses.is_dataclass(annotation):
            kwargs[f.name] = unflatten(annotation, flat, key + ".")
        elif key in flat:
            kwargs[f.name] = _coerce(key, flat[key], annotation)
        elif type(None) in typing.get_args(annotation):
            kwargs[f.name] = None
        else:
            raise ConfigError(
                f"run config lacks key {key!r}; the server and this node run different versions of cesagram-fl"
            )
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ConfigError(f"run config: {error}") from None
