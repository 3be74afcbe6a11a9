"""Flower strategies from the run's settings: the aggregation rule, wrapped for central DP when asked.

Every strategy comes from ``flwr.serverapp.strategy``; this module only maps settings to
constructor arguments, so that "every node trains every round" holds with few nodes
(Flower's defaults sample 2 of 3).
"""

from __future__ import annotations

from typing import Any

from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    Strategy,
)

from federation.runconfig import RunSettings


def build_strategy(run: RunSettings) -> Strategy:
    """The aggregation strategy of ``run``, wrapped in central DP when ``privacy.mode=central``."""
    settings = run.strategy
    required = run.required_nodes
    common: dict[str, Any] = {
        "fraction_train": settings.fraction_train,
        "fraction_evaluate": 1.0,
        "min_train_nodes": max(1, int(settings.fraction_train * required)),
        "min_evaluate_nodes": required,
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
    else:  # krum: RunSettings validated the name
        strategy = Krum(**common, num_malicious_nodes=settings.num_malicious_nodes)
    if run.privacy.mode == "central":
        strategy = DifferentialPrivacyClientSideFixedClipping(
            strategy,
            noise_multiplier=run.privacy.noise_multiplier,
            clipping_norm=run.privacy.clipping_norm,
            num_sampled_clients=max(1, int(settings.fraction_train * required)),
        )
    return strategy
