"""The coordinator's checkpoint: what a resumed run needs, written after every round.

Flower keeps a ServerApp's state in memory only; a coordinator that crashes loses it. After
each round the ServerApp writes ``checkpoint.npz`` in the run folder, atomically (a reader
sees the previous round's checkpoint or this one, never a mix):

- the global weights after the round;
- the round number and the run id (the nodes' ledgers key their noise plans by it);
- the strategy's state (server-side optimiser moments of FedAdam, for instance);
- everything the report is built from so far: rounds, nodes, communication, notes,
  phase timings and the last merged score histogram.

``cesagram server resume RUN_DIR`` starts a new Flower run with the same settings, and the
ServerApp continues from the round after the checkpoint. Only aggregates are stored, as in
the report: no node's individual update, no conversation.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord
from flwr.serverapp.strategy import Strategy

from federation.errors import CheckpointError
from federation.histograms import ScoreHistogram
from federation.history import NodeRecord, RoundRecord
from federation.io import atomic_write_bytes, strict_json
from federation.wire import record_to_arrays
from server.evaluation import RoundEvaluation
from server.recorder import RunRecorder
from server.rounds import RoundCallbacks

__all__ = [
    "CHECKPOINT_FILE",
    "Checkpoint",
    "CheckpointEachRound",
    "CheckpointError",
    "load_checkpoint",
    "restore_recorder",
    "restore_strategy",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.npz"
FORMAT = "cesagram-checkpoint"
VERSION = 1
_META = "meta"
_WEIGHT = "weight/"
_STRATEGY = "strategy/"
#: Strategy attributes that carry state from round to round (Flower's FedOpt family).
_STATEFUL_ATTRIBUTES = ("current_arrays", "m_t", "v_t")




@dataclass(frozen=True)
class Checkpoint:
    """One round's checkpoint, as loaded from the run folder."""

    round: int
    run_id: str
    weights: list[np.ndarray]
    strategy: dict[str, np.ndarray] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)


# -- strategy state ----------------------------------------------------------------------------
def _strategy_chain(strategy: Strategy) -> Iterator[tuple[str, object]]:
    """The strategy and the strategies it wraps (central-DP wrappers keep theirs in ``.strategy``)."""
    depth, current = 0, strategy
    while current is not None:
        yield str(depth), current
        current = getattr(current, "strategy", None)
        depth += 1


def strategy_state(strategy: Strategy) -> dict[str, np.ndarray]:
    """Arrays that a strategy carries between rounds, as flat ``depth/attribute/key`` names."""
    state: dict[str, np.ndarray] = {}
    for depth, current in _strategy_chain(strategy):
        for attribute in _STATEFUL_ATTRIBUTES:
            value = getattr(current, attribute, None)
            if isinstance(value, dict):
                for key, array in value.items():
                    state[f"{depth}/{attribute}/{key}"] = np.asarray(array)
    return state


def restore_strategy(strategy: Strategy, state: dict[str, np.ndarray]) -> None:
    """Put the arrays of :func:`strategy_state` back on a freshly built strategy of the same kind."""
    chain = dict(_strategy_chain(strategy))
    restored: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for name, array in state.items():
        depth, attribute, key = name.split("/", 2)
        if depth not in chain or attribute not in _STATEFUL_ATTRIBUTES:
            raise CheckpointError(
                f"the checkpoint holds strategy state {name!r} that this run's strategy does not have; "
                "resume with the strategy the run started with"
            )
        restored.setdefault((depth, attribute), {})[key] = array
    for (depth, attribute), value in restored.items():
        setattr(chain[depth], attribute, value)


# -- recorder state ----------------------------------------------------------------------------
def recorder_state(recorder: RunRecorder) -> dict[str, Any]:
    """What the report is built from, as plain JSON data."""
    histogram = recorder.last_histogram
    return {
        "rounds": [record.to_dict() for record in recorder.rounds],
        "nodes": {name: dataclasses.asdict(node) for name, node in recorder.nodes.items()},
        "communication": recorder.communication,
        "notes": recorder.notes,
        "phase_seconds": recorder.phase_seconds,
        "last_histogram": list(histogram.to_lists()) if histogram is not None else None,
        "names": {str(node_id): name for node_id, name in recorder._names.items()},  # noqa: SLF001
    }


def _node_record(data: dict[str, Any]) -> NodeRecord:
    known = {f.name for f in dataclasses.fields(NodeRecord)}
    values = {key: value for key, value in data.items() if key in known}
    for key in ("declined", "failed", "rejected"):
        values[key] = {int(r): str(reason) for r, reason in values.get(key, {}).items()}
    return NodeRecord(**values)


def restore_recorder(recorder: RunRecorder, history: dict[str, Any]) -> None:
    """Load :func:`recorder_state` back into a fresh recorder (the run's report continues)."""
    try:
        recorder.rounds = [RoundRecord.from_dict(record) for record in history["rounds"]]
        recorder.nodes = {name: _node_record(node) for name, node in history["nodes"].items()}
        recorder.communication = list(history["communication"])
        recorder.notes = list(history["notes"])
        recorder.phase_seconds = {k: float(v) for k, v in history["phase_seconds"].items()}
        hist = history.get("last_histogram")
        recorder.last_histogram = ScoreHistogram.from_lists(hist[0], hist[1]) if hist else None
        recorder._names = {int(k): str(v) for k, v in history.get("names", {}).items()}  # noqa: SLF001
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise CheckpointError(f"the checkpoint's run history is incomplete ({error}); it cannot be resumed") from None


# -- file --------------------------------------------------------------------------------------
def save_checkpoint(
    run_dir: Path,
    *,
    server_round: int,
    run_id: str,
    weights: Sequence[np.ndarray],
    strategy: Strategy,
    recorder: RunRecorder,
) -> Path:
    """Write the checkpoint of ``server_round`` into ``run_dir`` atomically; return its path.

    Notes
    -----
    One file, replaced by an atomic rename: a crash while writing leaves the previous
    round's checkpoint intact. Holds aggregates only (global weights, strategy state,
    the report's material), never a node's own update.
    """
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "round": int(server_round),
        "run_id": run_id,
        "weights": len(weights),
        "history": strict_json(recorder_state(recorder)),
    }
    arrays: dict[str, np.ndarray] = {_META: np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    for index, array in enumerate(weights):
        arrays[f"{_WEIGHT}{index}"] = np.asarray(array)
    for name, array in strategy_state(strategy).items():
        arrays[f"{_STRATEGY}{name}"] = array
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = Path(run_dir) / CHECKPOINT_FILE
    atomic_write_bytes(path, buffer.getvalue())
    log.info("checkpoint of round %d written to %s", server_round, path)
    return path


@dataclass(frozen=True)
class CheckpointEachRound(RoundCallbacks):
    """The round loop's callback that writes the checkpoint when a round ends (after the recorder closed it)."""

    run_dir: Path
    run_id: str
    strategy: Strategy
    recorder: RunRecorder

    def on_round_end(self, server_round: int, evaluation: RoundEvaluation, arrays: ArrayRecord) -> None:
        save_checkpoint(
            self.run_dir,
            server_round=server_round,
            run_id=self.run_id,
            weights=record_to_arrays(arrays),
            strategy=self.strategy,
            recorder=self.recorder,
        )


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The run folder's checkpoint, or None when the run has none yet.

    Raises
    ------
    CheckpointError
        If the file is there but unreadable, corrupt or of another format.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(bytes(archive[_META]).decode("utf-8"))
            if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                raise CheckpointError(f"{path}: not a CESAGRAM-FL checkpoint of version {VERSION}")
            weights = [np.array(archive[f"{_WEIGHT}{i}"]) for i in range(int(meta["weights"]))]
            strategy = {
                name[len(_STRATEGY) :]: np.array(archive[name]) for name in archive.files if name.startswith(_STRATEGY)
            }
        server_round = int(meta["round"])
        run_id = str(meta["run_id"])
        history = dict(meta["history"])
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError) as error:
        raise CheckpointError(
            f"{path}: the checkpoint is unreadable or corrupt ({type(error).__name__}); "
            "restore it from a backup or start the run again"
        ) from None
    if server_round < 1 or not run_id:
        raise CheckpointError(f"{path}: round {server_round} / run id {run_id!r} are invalid")
    return Checkpoint(round=server_round, run_id=run_id, weights=weights, strategy=strategy, history=history)
