"""Flower strategies from the run's settings: the aggregation rule, wrapped for central DP when asked.

Every strategy comes from ``flwr.serverapp.strategy``; this module maps settings to
constructor arguments, so that "every node trains every round" holds with few nodes
(Flower's defaults sample 2 of 3), and builds norm-bounded FedAvg from Flower's
server-side clipping wrapper.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    Strategy,
)

from federation.runconfig import CENTRAL_DP_STRATEGIES, RunSettings
from federation.wire import l2_norm, record_to_arrays
from server.central_dp import CentralDP


class NormBoundedFedAvg(DifferentialPrivacyServerSideFixedClipping):
    """FedAvg of updates clipped to a norm: Flower's server-side fixed clipping, without noise.

    Norm bounding (Sun et al., "Can you really backdoor federated learning?", 2019) caps
    what any one node can move the model by. With ``max_update_norm=None`` each round's
    norm is the median of its updates' norms: no constant to tune, and while most nodes
    are honest the bound is an honest node's norm.
    """

    def __init__(self, strategy: FedAvg, *, max_update_norm: float | None, num_sampled_clients: int) -> None:
        super().__init__(
            strategy, noise_multiplier=0.0, clipping_norm=max_update_norm or 1.0, num_sampled_clients=num_sampled_clients
        )
        self.max_update_norm = max_update_norm

    def __repr__(self) -> str:
        return "Norm-bounded FedAvg (server-side clipping, no noise)"

    def __getattr__(self, name: str) -> Any:
        """The wrapped FedAvg's settings (``min_train_nodes``, ...) read through the wrapper."""
        if name == "strategy":
            raise AttributeError(name)
        return getattr(self.strategy, name)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        if self.max_update_norm is None and replies:
            current = self.current_arrays.to_numpy_ndarrays()
            norms = []
            for reply in replies:
                for record in reply.content.array_records.values():
                    update = [a - c for a, c in zip(record_to_arrays(record), current, strict=True)]
                    norms.append(l2_norm(update))
            self.clipping_norm = max(float(np.median(norms)), 1e-12)
        return super().aggregate_train(server_round, replies)

    def _add_noise_to_aggregated_arrays(self, aggregated_arrays: ArrayRecord) -> ArrayRecord:
        return aggregated_arrays  # no noise: this is a robustness bound, not a privacy mechanism


def build_strategy(run: RunSettings) -> Strategy:
    """The aggregation strategy of ``run``, wrapped in central DP when ``privacy.mode=central``.

    Under central DP the wrapped FedAvg (or FedProx) addresses every connected node and
    :class:`server.central_dp.CentralDP` samples them with ``strategy.fraction_train``;
    any other strategy is refused (``RunSettings`` already refuses it at config time).
    """
    settings = run.strategy
    required = run.required_nodes
    central = run.privacy.mode == "central"
    if central and settings.name not in CENTRAL_DP_STRATEGIES:
        raise ValueError(f"central DP is calibrated for {', '.join(CENTRAL_DP_STRATEGIES)} only, not {settings.name}")
    common: dict[str, Any] = {
        "fraction_train": 1.0 if central else settings.fraction_train,
        "fraction_evaluate": settings.fraction_evaluate,
        "min_train_nodes": required if central else max(1, int(settings.fraction_train * required)),
        "min_evaluate_nodes": max(1, int(settings.fraction_evaluate * required)),
        "min_available_nodes": required,
    }
    name = settings.name
    strategy: Strategy
    if name == "fedavg":
        strategy = FedAvg(**common)
    elif name == "fedprox":
        strategy = FedProx(**common, proximal_mu=settings.proximal_mu)
    elif name == "fedadam":
        strategy = FedAdam(
            **common,
            eta=settings.eta,
            eta_l=settings.eta_l,
            beta_1=settings.beta_1,
            beta_2=settings.beta_2,
            tau=settings.tau,
        )
    elif name == "fedmedian":
        strategy = FedMedian(**common)
    elif name == "fedtrimmedavg":
        strategy = FedTrimmedAvg(**common, beta=settings.beta)
    elif name == "normbounded":
        strategy = NormBoundedFedAvg(
            FedAvg(**common), max_update_norm=settings.max_update_norm, num_sampled_clients=common["min_train_nodes"]
        )
    else:  # krum: RunSettings validated the name
        strategy = Krum(**common, num_malicious_nodes=settings.num_malicious_nodes)
    if central:
        assert isinstance(strategy, FedAvg)  # fedavg or fedprox, checked above
        strategy = CentralDP(
            strategy,
            noise_multiplier=run.privacy.noise_multiplier,
            clipping_norm=run.privacy.clipping_norm,
            sample_rate=settings.fraction_train,
            population=run.nodes,
        )
    return strategy
