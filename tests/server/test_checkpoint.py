"""Checkpoints: weights, history and strategy state round-trip; absent, corrupt and foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.serverapp.strategy import FedAdam

from federation.errors import CheckpointError
from federation.histograms import ScoreHistogram
from federation.history import NodeRecord, RoundRecord
from server.checkpoint import load_checkpoint, restore_recorder, restore_strategy, save_checkpoint
from server.recorder import RunRecorder


def _recorder_with_history(tmp_path: Path) -> RunRecorder:
    recorder = RunRecorder()
    recorder.rounds = [RoundRecord(round=1, participants=["a"], missed=["b"], metrics={"f05": 0.5}, eval_loss=0.3, epsilon={"a": 1.5})]
    recorder.nodes = {
        "a": NodeRecord(name="a", kind="hotline", conversations=10, epsilon=1.5, rounds=[1], declined={2: "declined: cap"}),
        "b": NodeRecord(name="b", missed=[1], failed={1: "DataError: x"}),
    }
    recorder.communication = [{"round": 1, "node": "a", "phase": "train", "sent_bytes": 10, "received_bytes": 12}]
    recorder.notes = ["a note"]
    recorder.phase_seconds = {"training": 1.5}
    recorder.last_histogram = ScoreHistogram.from_lists([0, 1, 2], [3, 0, 0])
    return recorder


def test_checkpoint_round_trip_restores_weights_history_and_strategy_state(tmp_path: Path) -> None:
    recorder = _recorder_with_history(tmp_path)
    strategy = FedAdam()
    strategy.m_t = {"0": np.full((2, 2), 0.25), "1": np.arange(3.0)}
    strategy.v_t = {"0": np.full((2, 2), 0.5), "1": np.ones(3)}
    strategy.current_arrays = {"0": np.eye(2), "1": np.zeros(3)}
    weights = [np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32), np.ones(3, dtype=np.float32)]
    save_checkpoint(tmp_path, server_round=3, run_id="run-x", weights=weights, strategy=strategy, recorder=recorder)

    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.round == 3 and checkpoint.run_id == "run-x"
    for saved, loaded in zip(weights, checkpoint.weights, strict=True):
        np.testing.assert_array_equal(saved, loaded)
    fresh = RunRecorder()
    restore_recorder(fresh, checkpoint.history)
    assert fresh.rounds == recorder.rounds and fresh.notes == recorder.notes
    assert fresh.nodes == recorder.nodes  # int round keys of declined/failed restored
    assert fresh.last_histogram == recorder.last_histogram
    assert fresh.communication == recorder.communication and fresh.phase_seconds == recorder.phase_seconds
    fresh_strategy = FedAdam()
    restore_strategy(fresh_strategy, checkpoint.strategy)
    for attribute in ("m_t", "v_t", "current_arrays"):
        for key, value in getattr(strategy, attribute).items():
            np.testing.assert_array_equal(getattr(fresh_strategy, attribute)[key], value)


def test_checkpoint_absent_corrupt_or_foreign(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path)
    np.savez(tmp_path / "checkpoint.npz", meta=np.frombuffer(json.dumps({"format": "other"}).encode(), dtype=np.uint8))
    with pytest.raises(CheckpointError, match="not a CESAGRAM-FL checkpoint"):
        load_checkpoint(tmp_path)


def test_strategy_state_of_another_strategy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="strategy"):
        restore_strategy(FedAdam(), {"3/m_t/0": np.zeros(2)})
