"""Secure aggregation for the training half of a round, with Flower's SecAgg+ as it ships.

In flwr 1.42 SecAgg+ exists only on the legacy workflow path: ``SecAggPlusWorkflow`` runs
over a ``LegacyContext`` (legacy strategy, client manager, parameters in
``context.state``). :class:`SecAggTrainStep` builds that context for one round, lets the
workflow run its four stages (setup, share keys, collect masked vectors, unmask) and hands
the unmasked weighted average back to our round loop, which evaluates, records and
checkpoints as in any other run. The server never holds a single node's update: it sums
masked, quantized vectors and removes the masks with the nodes' key shares.

Nodes that drop out after sharing keys are tolerated as long as at least the
reconstruction threshold of each node's neighbours answer; below that the round has no
aggregate and the global model stays as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.server import LegacyContext, ServerConfig
from flwr.server.client_manager import SimpleClientManager
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key
from flwr.serverapp import Grid

from deploy.settings import SecAggSettings
from federation.errors import ConfigError
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays
from server.rounds import TrainOutcome
from server.validation import aggregate_problem

__all__ = ["SecAggSettings", "SecAggTrainStep", "TappedGrid"]

log = logging.getLogger(__name__)

#: Aggregation rules SecAgg+ can serve: it yields the weighted mean of the updates only.
SECAGG_STRATEGIES = ("fedavg", "fedprox")


def check_secagg_compatible(*, strategy: str, privacy_mode: str, required_nodes: int) -> None:
    """Refuse, with one line, combinations SecAgg+ cannot serve or would make pointless."""
    if strategy not in SECAGG_STRATEGIES:
        raise ConfigError(
            f"strategy.name={strategy!r} needs each node's update, which SecAgg+ hides; "
            f"with federation.secagg.enabled=true choose one of: {', '.join(SECAGG_STRATEGIES)}"
        )
    if privacy_mode == "central":
        raise ConfigError(
            "privacy.mode='central' (client-side clipping wrapper) is not available with SecAgg+ in this version; "
            "use privacy=dp_sgd (record-level DP at each node) or turn federation.secagg.enabled off"
        )
    if required_nodes < 3:
        raise ConfigError(
            f"federation.secagg.enabled=true needs at least 3 nodes per round (federation.min_nodes, now "
            f"{required_nodes}): with two, each node could subtract its own update from the sum"
        )


class TappedGrid:
    """A Grid that remembers each ``send_and_receive`` call (for the report's per-node record)."""

    def __init__(self, grid: Grid) -> None:
        self._grid = grid
        self.calls: list[tuple[list[Message], list[Message]]] = []

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        sent = list(messages)
        replies = list(self._grid.send_and_receive(messages=sent, timeout=timeout))
        self.calls.append((sent, replies))
        return replies

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


class SecAggTrainStep:
    """The training half of one round through ``SecAggPlusWorkflow`` (a ``TrainStep``)."""

    def __init__(self, grid: Grid, settings: SecAggSettings, *, required_nodes: int, timeout_s: float) -> None:
        self.grid = grid
        self.settings = settings
        self.required_nodes = required_nodes
        self.timeout_s = timeout_s

    def _context(self, grid: TappedGrid, server_round: int, arrays: ArrayRecord, node_ids: list[int]) -> LegacyContext:
        manager = SimpleClientManager()
        for node_id in node_ids:
            manager.register(GridClientProxy(node_id=node_id, grid=grid, run_id=self.grid.run.run_id))  # type: ignore[arg-type]
        strategy = LegacyFedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=self.required_nodes,
            min_evaluate_clients=self.required_nodes,
            min_available_clients=self.required_nodes,
            on_fit_config_fn=lambda r: {ConfigKeys.SERVER_ROUND: int(r)},
            accept_failures=True,
        )
        base = Context(run_id=self.grid.run.run_id, node_id=0, node_config={}, state=RecordDict(), run_config={})
        context = LegacyContext(base, config=ServerConfig(num_rounds=server_round), strategy=strategy, client_manager=manager)
        context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
            {Key.CURRENT_ROUND: server_round, Key.START_TIME: time.time()}
        )
        context.state.array_records[MAIN_PARAMS_RECORD] = arrays
        return context

    def __call__(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> TrainOutcome:
        """Run SecAgg+ for ``server_round``; return what each node answered and the aggregate."""
        del config  # the legacy path carries only the round number (on_fit_config_fn)
        tapped = TappedGrid(self.grid)
        node_ids = list(self.grid.get_node_ids())
        context = self._context(tapped, server_round, arrays, node_ids)
        workflow = SecAggPlusWorkflow(
            num_shares=float(self.settings.num_shares),
            reconstruction_threshold=float(self.settings.reconstruction_threshold),
            max_weight=self.settings.max_weight,
            clipping_range=self.settings.clipping_range,
            quantization_range=int(self.settings.quantization_range),
            timeout=self.timeout_s,
        )
        workflow(tapped, context)  # type: ignore[arg-type]
        aggregated = context.state.array_records[MAIN_PARAMS_RECORD]
        outcome = self._outcome(tapped)
        problem = aggregate_problem(aggregated) if aggregated is not arrays else None
        if problem:
            # No single update can be checked under SecAgg+; an aggregate that is not finite is refused whole.
            outcome.notes.append(f"round {server_round}: secure aggregate refused ({problem}); the global model is unchanged")
        elif aggregated is not arrays:
            outcome.arrays = arrays_to_record(record_to_arrays(aggregated))
        else:
            outcome.notes.append(
                f"round {server_round}: secure aggregation stopped (too few nodes answered to remove the masks); "
                "the global model is unchanged"
            )
        return outcome

    @staticmethod
    def _outcome(tapped: TappedGrid) -> TrainOutcome:
        """Per node: the message that carried its training and its answer (or its error)."""
        if not tapped.calls:
            return TrainOutcome(sent=[], replies=[])
        setup_sent = tapped.calls[0][0]
        training = tapped.calls[2] if len(tapped.calls) > 2 else ([], [])
        trained_sent = {m.metadata.dst_node_id: m for m in training[0]}
        sent = [trained_sent.get(m.metadata.dst_node_id, m) for m in setup_sent]
        replies = list(training[1])
        answered = {r.metadata.src_node_id for r in replies}
        for _, stage_replies in tapped.calls[:2]:  # nodes that failed before training
            for reply in stage_replies:
                if reply.has_error() and reply.metadata.src_node_id not in answered:
                    replies.append(reply)
                    answered.add(reply.metadata.src_node_id)
        return TrainOutcome(sent=sent, replies=replies)
