"""Central DP: equal weights, Poisson node sampling, all-or-nothing rounds, and the epsilon the report states."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.metadata import Metadata
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM
from flwr.supercore.task_identity import TaskIdentity
from opacus.accountants import PRVAccountant, RDPAccountant

from federation.errors import ConfigError
from federation.history import RunHistory
from federation.report import privacy_section
from federation.runconfig import PrivacySettings, RunSettings, StrategySettings
from federation.wire import ConfigKeys, arrays_to_record, record_to_arrays
from server.central_dp import CentralDP
from server.strategies import build_strategy

DIM = 4


@pytest.fixture(autouse=True)
def server_identity(monkeypatch):
    """Flower's Message() needs the ServerApp's run and node id, which a real ServerApp process sets."""
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


class FakeGrid:
    """The one Grid method FedAvg's sampling calls: the connected node ids."""

    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self) -> list[int]:
        return self.nodes


def reply(node_id: int, weights: np.ndarray, examples: int) -> Message:
    metadata = Metadata(
        run_id=1, message_id=f"r{node_id}", src_node_id=node_id, dst_node_id=0, reply_to_message_id="m", group_id="1",
        created_at=0.0, ttl=60, message_type="train",
    )  # fmt: skip
    content = RecordDict(
        {
            ConfigKeys.ARRAYS_RECORD: arrays_to_record([np.asarray(weights, dtype=np.float64)]),
            ConfigKeys.METRICS_RECORD: MetricRecord({ConfigKeys.NUM_EXAMPLES: examples}),
        }
    )
    return Message(content, metadata=metadata)


def central(*, nodes: int, rate: float = 1.0, noise: float = 0.0, clip: float = 10.0) -> CentralDP:
    inner = FedAvg(fraction_train=1.0, min_train_nodes=1, min_available_nodes=1)
    return CentralDP(inner, noise_multiplier=noise, clipping_norm=clip, sample_rate=rate, population=nodes)


def one_round(strategy: CentralDP, nodes: int, updates: dict[int, tuple[np.ndarray, int]], base: np.ndarray):
    sent = list(strategy.configure_train(1, arrays_to_record([base]), ConfigRecord(), FakeGrid(nodes)))
    replies = [reply(m.metadata.dst_node_id, base + updates[m.metadata.dst_node_id][0], updates[m.metadata.dst_node_id][1]) for m in sent if m.metadata.dst_node_id in updates]  # fmt: skip
    arrays, _ = strategy.aggregate_train(1, replies)
    return sent, (None if arrays is None else record_to_arrays(arrays)[0])


def test_a_node_with_ten_times_the_data_does_not_dominate_the_mean() -> None:
    base = np.zeros(DIM)
    big, small = np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])
    strategy = central(nodes=2)
    sent, result = one_round(strategy, 2, {1: (big, 1000), 2: (small, 100)}, base)
    assert len(sent) == 2 and all(m.content.config_records["config"][KEY_CLIPPING_NORM] == 10.0 for m in sent)
    assert np.allclose(result, [0.5, 0.5, 0, 0])  # FedAvg by examples would give 0.909 / 0.091
    weighted, _ = FedAvg().aggregate_train(1, [reply(1, big, 1000), reply(2, small, 100)])
    assert record_to_arrays(weighted)[0][0] == pytest.approx(1000 / 1100)  # what the old wrapper averaged


def test_the_noise_is_z_c_over_the_expected_nodes_whatever_the_data_sizes() -> None:
    nodes, noise, clip = 4, 2.0, 0.5
    strategy = central(nodes=nodes, noise=noise, clip=clip)
    base = np.zeros(200_000)
    updates = {i: (np.zeros_like(base), 10 ** i) for i in range(1, nodes + 1)}  # examples 10 .. 10000
    _, result = one_round(strategy, nodes, updates, base)
    assert np.std(result) == pytest.approx(noise * clip / nodes, rel=0.02)


def test_updates_are_clipped_again_at_the_server() -> None:
    strategy = central(nodes=2, clip=1.0)
    _, result = one_round(strategy, 2, {1: (np.array([100.0, 0, 0, 0]), 1), 2: (np.zeros(DIM), 1)}, np.zeros(DIM))
    assert np.allclose(result, [0.5, 0, 0, 0])  # the 100 was clipped to the norm 1 before averaging


def test_nodes_are_poisson_sampled_and_the_sum_is_divided_by_the_expected_count() -> None:
    nodes, rate = 400, 0.25
    strategy = central(nodes=nodes, rate=rate)
    base = np.zeros(DIM)
    updates = {i: (np.array([1.0, 0, 0, 0]), 1) for i in range(1, nodes + 1)}
    sent, result = one_round(strategy, nodes, updates, base)
    assert abs(len(sent) - rate * nodes) < 5 * np.sqrt(nodes * rate * (1 - rate))  # Binomial(400, 0.25)
    assert result[0] == pytest.approx(len(sent) / (rate * nodes))  # fixed denominator q N, not the count
    again = {m.metadata.dst_node_id for m in strategy.configure_train(2, arrays_to_record([base]), ConfigRecord(), FakeGrid(nodes))}
    assert again != {m.metadata.dst_node_id for m in sent}  # a fresh draw each round


def test_a_round_with_fewer_replies_than_sampled_nodes_is_not_aggregated() -> None:
    strategy = central(nodes=3, noise=1.0)
    base = np.zeros(DIM)
    updates = {1: (np.ones(DIM), 1), 2: (np.ones(DIM), 1)}  # node 3 was sampled but does not answer
    sent, result = one_round(strategy, 3, updates, base)
    assert len(sent) == 3 and result is None
    (note,) = strategy.pop_notes()
    assert "2 of the 3 sampled nodes" in note and "not aggregated" in note and "\n" not in note
    assert strategy.pop_notes() == []


@pytest.mark.parametrize("name", ["krum", "fedmedian", "fedtrimmedavg", "fedadam", "normbounded"])
def test_central_dp_refuses_the_strategies_its_noise_is_not_calibrated_for(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RunSettings(run_id="r", run_dir="/x", rounds=1, nodes=5, privacy=PrivacySettings(mode="central"),
                    strategy=StrategySettings(name=name))  # fmt: skip
    message = str(caught.value)
    assert f"privacy=central with strategy={name}" in message and "fedavg" in message and "\n" not in message


@pytest.mark.parametrize("name", ["fedavg", "fedprox"])
def test_fedavg_and_fedprox_get_the_central_wrapper(name: str) -> None:
    run = RunSettings(run_id="r", run_dir="/x", rounds=1, nodes=5, privacy=PrivacySettings(mode="central"),
                      strategy=StrategySettings(name=name, fraction_train=0.4))  # fmt: skip
    strategy = build_strategy(run)
    assert isinstance(strategy, CentralDP)
    assert strategy.sample_rate == 0.4 and strategy.population == 5 and strategy.strategy.fraction_train == 1.0


def _opacus(accountant_class, noise: float, rate: float, steps: int, delta: float) -> float:
    accountant = accountant_class()
    for _ in range(steps):
        accountant.step(noise_multiplier=noise, sample_rate=rate)
    return accountant.get_epsilon(delta=delta)


@pytest.mark.parametrize(("accountant", "opacus"), [("rdp", RDPAccountant), ("prv", PRVAccountant)])
def test_the_reported_client_level_epsilon_is_opacus_on_the_mechanism_that_ran(accountant, opacus) -> None:
    noise, rate, rounds, delta = 1.3, 0.4, 12, 1e-4
    run = RunSettings(
        run_id="r", run_dir="/x", rounds=rounds, nodes=10,
        privacy=PrivacySettings(mode="central", noise_multiplier=noise, delta=delta, accountant=accountant),
        strategy=StrategySettings(fraction_train=rate),
    )  # fmt: skip
    history = RunHistory(rounds=[{"round": r} for r in range(1, rounds + 1)])
    history.notes.append("round 3: central DP: 3 of the 4 sampled nodes sent an update; the round was not aggregated")
    section = privacy_section(run, history)["central"]
    expected = _opacus(opacus, noise, rate, rounds, delta)
    assert section["epsilon"] == pytest.approx(expected, rel=1e-6)
    assert section["accountant"] == accountant and section["unit"] == "node" and section["sample_rate"] == rate
    assert section["skipped_rounds"] == 1 and "Poisson" in section["sampling"]
    full = privacy_section(RunSettings(**{**run.__dict__, "strategy": StrategySettings(fraction_train=1.0)}), history)
    assert full["central"]["epsilon"] > section["epsilon"]  # sampling amplifies: every node every round costs more


@pytest.mark.parametrize("privacy", ["record", "central"])
def test_a_cross_device_round_asks_a_sample_of_the_nodes_to_evaluate(privacy: str) -> None:
    run = RunSettings(
        run_id="r",
        run_dir="/x",
        rounds=1,
        nodes=2000,
        strategy=StrategySettings(fraction_train=0.1, fraction_evaluate=0.05),
        privacy=PrivacySettings(mode=privacy),
    )
    strategy = build_strategy(run)
    arrays = arrays_to_record([np.zeros(DIM, dtype=np.float32)])
    evaluated = list(strategy.configure_evaluate(1, arrays, ConfigRecord(), FakeGrid(2000)))
    assert len({m.metadata.dst_node_id for m in evaluated}) == len(evaluated) == 100
    trained = list(strategy.configure_train(1, arrays, ConfigRecord(), FakeGrid(2000)))
    if privacy == "central":
        assert 120 <= len(trained) <= 280  # Poisson sampling at q = 0.1: 200 expected, sd 13
    else:
        assert len(trained) == 200  # Flower's own fixed-size sample
    with pytest.raises(ConfigError, match="fraction_evaluate"):
        StrategySettings(fraction_evaluate=0.0)
