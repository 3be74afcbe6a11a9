"""Central DP over whole nodes, with the epsilon the report states true of what ran.

Flower's ``DifferentialPrivacyClientSideFixedClipping`` adds noise of standard deviation
``z * C / m`` to whatever its wrapped strategy returns. That is the Gaussian mechanism on
the *mean* of ``m`` clipped updates only if the mean has equal weights of ``1/m`` and
exactly ``m`` terms: FedAvg weights nodes by their examples (a node holding most of the
data then moves the mean by up to ``C``, not ``C / m``), and a round with fewer replies
divides by fewer. Flower's own accounted mode checks for equal weights but does not make
them, and it accounts without node sampling.

:class:`CentralDP` keeps Flower's wrapper (the clipping norm sent to the nodes, their
``fixedclipping_mod``, the evaluate half) and makes the release one step of the
*sampled Gaussian mechanism* whose epsilon Opacus's accountants compute:

- each connected node is sampled independently with probability ``q`` (Poisson, from
  OS entropy), ``q = strategy.fraction_train``;
- the new model is ``global + (sum of clipped updates) / (q * N) + N(0, (z C / (q N))^2)``
  with ``N`` the federation's planned nodes: equal weights whatever a node's data size,
  a fixed denominator, so the noise on the sum is ``z * C`` for any number of terms and
  one node moves the sum by at most ``C`` (add/remove one node);
- a round in which a sampled node's update is missing (declined, failed, refused by the
  update check) is not aggregated: the global model stays as it was and a note says so.

Every round counts as one step at ``(z, q)``, skipped or not (a skipped round releases
less, never more), so the run's client-level epsilon is ``epsilon_of([(z, q, rounds)])``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg

from federation.privacy.accounting import central_epsilon
from federation.wire import l2_norm, record_to_arrays

__all__ = ["CentralDP", "central_epsilon"]


class CentralDP(DifferentialPrivacyClientSideFixedClipping):
    """Client-side fixed clipping with Poisson node sampling, equal weights and all-or-nothing rounds.

    Parameters
    ----------
    strategy
        FedAvg or FedProx built to address every connected node (``fraction_train=1``);
        this wrapper does the sampling.
    noise_multiplier, clipping_norm
        ``z`` and ``C``: each update is clipped to ``C`` (at the node, and again here), the
        sum gets Gaussian noise of standard deviation ``z * C``.
    sample_rate
        ``q``: the probability each node is asked to train in a round.
    population
        ``N``: the federation's planned nodes; ``q * N`` divides the sum.
    """

    def __init__(
        self,
        strategy: FedAvg,
        *,
        noise_multiplier: float,
        clipping_norm: float,
        sample_rate: float,
        population: int,
    ) -> None:
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
        if population < 1:
            raise ValueError(f"population must be >= 1, got {population!r}")
        super().__init__(
            strategy, noise_multiplier, clipping_norm, num_sampled_clients=max(1, round(sample_rate * population))
        )
        self.sample_rate = float(sample_rate)
        self.population = int(population)
        self.expected_nodes = self.sample_rate * self.population
        self.current_arrays = ArrayRecord()
        self._sampled: dict[int, set[int]] = {}
        self._notes: list[str] = []
        self._rng = np.random.default_rng(secrets.randbits(128))

    def __repr__(self) -> str:
        return "Central DP (client-side fixed clipping, Poisson node sampling, equal weights)"

    def pop_notes(self) -> list[str]:
        """Notes for the report since the last call (skipped rounds)."""
        notes, self._notes = self._notes, []
        return notes

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Ask each connected node with probability ``q``; remember whom, to require all of them."""
        self.current_arrays = arrays
        messages = list(super().configure_train(server_round, arrays, config, grid))
        if self.sample_rate < 1.0:
            keep = self._rng.random(len(messages)) < self.sample_rate
            messages = [message for message, kept in zip(messages, keep, strict=True) if kept]
        self._sampled[server_round] = {message.metadata.dst_node_id for message in messages}
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The noised equal-weight mean of every sampled node's clipped update, or nothing."""
        replies = [reply for reply in replies if not reply.has_error()]
        sampled = self._sampled.pop(server_round, None)
        answered = {reply.metadata.src_node_id for reply in replies}
        if sampled is None or not sampled <= answered:
            asked = len(sampled) if sampled is not None else "?"
            self._notes.append(
                f"round {server_round}: central DP: {len(answered & (sampled or set()))} of the {asked} sampled nodes "
                "sent an update; the round was not aggregated (the noise is calibrated for the updates of every "
                "sampled node) and the global model is unchanged; the round still counts in the epsilon"
            )
            return None, None
        current = self.current_arrays.to_numpy_ndarrays()
        total = [np.zeros_like(array, dtype=np.float64) for array in current]
        for reply in replies:
            if reply.metadata.src_node_id not in sampled:
                continue
            for record in reply.content.array_records.values():
                update = [np.asarray(a, dtype=np.float64) - b for a, b in zip(record_to_arrays(record), current, strict=True)]
                norm = l2_norm(update)
                scale = min(1.0, self.clipping_norm / norm) if norm > 0 else 1.0  # the node clipped; this is a guard
                for index, step in enumerate(update):
                    total[index] += step * scale
        std = self.noise_multiplier * self.clipping_norm
        aggregated = [
            (base + (step + self._rng.normal(0.0, std, size=step.shape)) / self.expected_nodes).astype(base.dtype)
            for base, step in zip(current, total, strict=True)
        ]
        keys = list(self.current_arrays.keys())
        return ArrayRecord({key: Array(np.asarray(value)) for key, value in zip(keys, aggregated, strict=True)}), None
