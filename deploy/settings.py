"""The settings of where a run executes: the simulation's runtime, SecAgg+ and a production deployment.

Plain validated dataclasses, kept apart from the code that acts on them (the local Flower
runtime, the SecAgg+ round, ``cesagram server run``) so that the Hydra schema of the
``federation`` group (:mod:`conf.schema`) can take its keys and defaults from them without
importing that code.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deploy.flower_processes import parse_address
from federation.checks import is_number
from federation.errors import ConfigError, RuntimeFailure
from federation.runconfig import Scalar, flatten, unflatten

__all__ = ["DEPLOYMENT_PREFIX", "DeploymentSettings", "PRIVATE_RAY", "RAY_JOB_CONFIG_ENV", "RuntimeSettings", "SecAggSettings", "SimulationResources"]

DEPLOYMENT_PREFIX = "deployment."

#: Ray's own word for "start a new local instance": with it ``ray.init()`` reads neither
#: ``RAY_ADDRESS`` nor the ``ray_current_cluster`` file of Ray's temp folder.
PRIVATE_RAY = "local"
#: Ray's switch for multi-machine clusters; "0" makes a local instance bind 127.0.0.1 (its
#: name says Windows or macOS, where it is off by default; it reads it on Linux too).
RAY_CLUSTERS_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Ray's variable for a job's runtime environment, set by its job manager (``ray job submit``);
#: the one way to hand the virtual nodes' environment to workers of a cluster we did not start.
RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


@dataclass(frozen=True)
class RuntimeSettings:
    """Where the virtual nodes run, and how long each start-up step may take (``federation.*``).

    Attributes
    ----------
    ray_address
        ``HOST:PORT`` of a running Ray cluster's head (its GCS, ``ray start --head --port``);
        None starts a private local Ray instance for the run, whatever cluster this machine
        knows of.
    superlink_s
        Seconds for the local SuperLink to answer its health check.
    ray_s
        Seconds from the run's submission until the private Ray instance runs (Flower's
        simulation process starting, the ServerApp importing, ``ray.init()``).
    first_round_s
        Seconds from then until the first round is recorded.
    """

    ray_address: str | None = None
    superlink_s: float = 60.0
    ray_s: float = 180.0
    first_round_s: float = 1200.0

    def __post_init__(self) -> None:
        if self.ray_address is not None:
            if "://" in self.ray_address:
                raise ConfigError(
                    f"federation.ray_address={self.ray_address!r}: give the head's HOST:PORT (its `ray start --head "
                    "--port`), not a URL; Ray Client (ray://) is not supported"
                )
            parse_address(self.ray_address, what="federation.ray_address")
        for name in ("superlink_s", "ray_s", "first_round_s"):
            value = getattr(self, name)
            if not is_number(value) or not value > 0:
                raise ConfigError(f"federation.startup.{name}={value!r} must be a number of seconds > 0")

    @property
    def private_ray(self) -> bool:
        return self.ray_address is None

    def ray_environment(self, node_env: Mapping[str, str]) -> dict[str, str]:
        """What Flower's ``ray.init()`` must find in its environment.

        Notes
        -----
        Workers of a private instance inherit the SuperLink's environment, ``node_env``
        included. Workers of an existing cluster are started by its own raylets, so the
        virtual nodes' environment (their policy, never the run config's) travels as the
        job's runtime environment instead.

        A private instance serves this machine only, so it binds loopback: Ray takes the
        node's address from the host's route unless clusters are off
        (``ray._private.services.get_node_ip_address``), and then uses ``127.0.0.1``.
        """
        if self.ray_address is None:
            return {"RAY_ADDRESS": PRIVATE_RAY, RAY_CLUSTERS_ENV: "0"}
        job = {"runtime_env": {"env_vars": {k: str(v) for k, v in node_env.items() if k != "PYTHONPATH"}}}
        return {"RAY_ADDRESS": self.ray_address, RAY_JOB_CONFIG_ENV: json.dumps(job)}

    def check_cluster(self, timeout_s: float = 5.0) -> None:
        """A one-line error now if ``ray_address`` does not answer, instead of a wait inside Ray."""
        if self.ray_address is None:
            return
        host, port = parse_address(self.ray_address, what="federation.ray_address")
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return
        except OSError as error:
            reason = "no answer" if isinstance(error, TimeoutError) else (error.strerror or str(error))
            raise RuntimeFailure(
                f"federation.ray_address={self.ray_address}: no Ray head answers there ({reason}); start one with "
                f"`ray start --head --port={port}` or drop federation.ray_address for a private local Ray"
            ) from None


@dataclass(frozen=True)
class SimulationResources:
    """Virtual nodes and what each may use."""

    num_supernodes: int
    num_cpus: int = 1
    num_gpus: float = 0.0

    def federation_config(self) -> str:
        return (
            f"num-supernodes={self.num_supernodes} "
            f"client-resources-num-cpus={self.num_cpus} "
            f"client-resources-num-gpus={self.num_gpus}"
        )


@dataclass(frozen=True)
class SecAggSettings:
    """SecAgg+ parameters (see ``flwr.server.workflow.SecAggPlusWorkflow``).

    ``num_shares`` and ``reconstruction_threshold`` are fractions: of the nodes sampled in
    a round, and of ``num_shares``. More shares tolerate more dropouts at more cost; a
    higher threshold resists more colluding nodes but fewer dropouts. Each weight is
    clipped to ``[-clipping_range, clipping_range]`` and quantized into
    ``quantization_range`` levels before masking; ``max_weight`` bounds the examples a
    node may weigh its update with.
    """

    enabled: bool = False
    num_shares: float = 1.0
    reconstruction_threshold: float = 0.67
    clipping_range: float = 8.0
    quantization_range: int = 4194304
    max_weight: float = 1000.0

    def __post_init__(self) -> None:
        if not 0 < self.num_shares <= 1:
            raise ConfigError(f"federation.secagg.num_shares={self.num_shares!r} must be a fraction in (0, 1]")
        if not 0 < self.reconstruction_threshold <= 1:
            raise ConfigError(
                f"federation.secagg.reconstruction_threshold={self.reconstruction_threshold!r} must be in (0, 1]"
            )
        if self.clipping_range <= 0:
            raise ConfigError(f"federation.secagg.clipping_range={self.clipping_range!r} must be > 0")
        if self.quantization_range < 2 or self.quantization_range >= 2**32:
            raise ConfigError(f"federation.secagg.quantization_range={self.quantization_range!r} must be in [2, 2**32)")
        if self.max_weight <= 0:
            raise ConfigError(f"federation.secagg.max_weight={self.max_weight!r} must be > 0")

    def quantization_step(self) -> float:
        """Width of one quantization level of a weight (the rounding error is at most this)."""
        return 2.0 * self.clipping_range / self.quantization_range


@dataclass(frozen=True)
class DeploymentSettings:
    """The production part of a run's settings (flat keys ``deployment.*`` in the run config).

    Notes
    -----
    ``tls`` is true only when ``cesagram server run`` verified the SuperLink's certificate
    against ``root_certificates`` before submitting; ``node_authentication`` states that the
    SuperLink was started by ``cesagram server start`` (which always enables SuperNode
    authentication). Both are written into the report's protections.
    """

    superlink: str
    root_certificates: str
    tls: bool = True
    node_authentication: bool = True
    wait_for_nodes_s: float = 600.0
    resume: bool = False
    secagg: SecAggSettings = field(default_factory=SecAggSettings)

    def __post_init__(self) -> None:
        if self.wait_for_nodes_s <= 0:
            raise ConfigError(f"federation.wait_for_nodes_s={self.wait_for_nodes_s!r} must be > 0 (seconds)")

    def to_flat(self) -> dict[str, Scalar]:
        return flatten(self, DEPLOYMENT_PREFIX)

    @classmethod
    def from_run_config(cls, flat: Mapping[str, Any]) -> DeploymentSettings | None:
        """The deployment settings of a production run; None for a simulated run."""
        if f"{DEPLOYMENT_PREFIX}superlink" not in flat:
            return None
        return unflatten(cls, flat, DEPLOYMENT_PREFIX)
