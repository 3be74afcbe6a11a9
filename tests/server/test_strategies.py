"""Norm-bounded FedAvg: a huge update moves the model no more than an honest one."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Message, MetricRecord, RecordDict
from flwr.app.metadata import Metadata
from flwr.serverapp.strategy import FedAvg

from federation.runconfig import RunSettings, StrategySettings
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays
from server.strategies import NormBoundedFedAvg, build_strategy

GLOBAL = [np.zeros(4, dtype=np.float32)]


def reply(update: list[float], node_id: int) -> Message:
    metadata = Metadata(
        run_id=1, message_id=f"r{node_id}", src_node_id=node_id, dst_node_id=1, reply_to_message_id="m", group_id="1",
        created_at=0.0, ttl=60, message_type="train",
    )  # fmt: skip
    content = RecordDict(
        {
            ConfigKeys.ARRAYS_RECORD: arrays_to_record([np.asarray(update, dtype=np.float32)]),
            ConfigKeys.METRICS_RECORD: MetricRecord({ConfigKeys.NUM_EXAMPLES: 10}),
        }
    )
    return Message(content, metadata=metadata)


def aggregate(strategy: NormBoundedFedAvg, replies: list[Message]) -> np.ndarray:
    strategy.current_arrays = arrays_to_record(GLOBAL)
    arrays, _ = strategy.aggregate_train(1, replies)
    return record_to_arrays(arrays)[0]


def test_the_median_norm_bounds_an_outsized_update() -> None:
    strategy = NormBoundedFedAvg(FedAvg(), max_update_norm=None, num_sampled_clients=3)
    honest = [reply([1.0, 0, 0, 0], 1), reply([0, 1.0, 0, 0], 2)]
    result = aggregate(strategy, [*honest, reply([0, 0, 1000.0, 0], 3)])
    assert strategy.clipping_norm == pytest.approx(1.0)  # the median of 1, 1, 1000
    assert np.allclose(result, [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-6)  # no noise is added


def test_a_fixed_norm_and_the_settings_mapping() -> None:
    strategy = NormBoundedFedAvg(FedAvg(), max_update_norm=0.5, num_sampled_clients=2)
    result = aggregate(strategy, [reply([2.0, 0, 0, 0], 1), reply([0, 0.1, 0, 0], 2)])
    assert np.allclose(result, [0.25, 0.05, 0, 0], atol=1e-6)
    built = build_strategy(RunSettings(run_id="r", run_dir="/x", rounds=1, nodes=5, strategy=StrategySettings(name="normbounded")))
    assert isinstance(built, NormBoundedFedAvg) and built.min_train_nodes == 5 and built.max_update_norm is None
