"""A simulated node's conversations, wherever the simulation keeps them: a file per node or a store.

Every reader of a simulated federation (the virtual node, the encoder that runs ahead, the
baselines, benchmarks) asks here, so that ``node-{i}.jsonl`` files and a sharded store
(:mod:`federation.data.store`) serve the same code.
"""

from __future__ import annotations

from pathlib import Path

from federation.data.load import load_conversations
from federation.data.store import STORE_MANIFEST, NodeStore, is_store
from federation.data.types import Conversation

__all__ = ["node_file", "read_simulated_node", "source_stamp"]


def node_file(data_dir: Path, index: int) -> Path:
    """Where node ``index``'s data lives: its own file, or the store's manifest."""
    folder = Path(data_dir)
    return folder / STORE_MANIFEST if is_store(folder) else folder / f"node-{index}.jsonl"


def read_simulated_node(data_dir: Path, index: int) -> list[Conversation]:
    """Node ``index``'s conversations, strictly (a bad record is a one-line ``DataError``)."""
    folder = Path(data_dir)
    if is_store(folder):
        return NodeStore(folder).read(index)
    return load_conversations(folder / f"node-{index}.jsonl")


def source_stamp(path: Path) -> int:
    """A number that changes when the data at ``path`` (a node file or a store's manifest) is rewritten."""
    return Path(path).stat().st_mtime_ns
