"""A simulated node's conversations, wherever the simulation keeps them: a file per node or a store.

Every reader of a simulated federation (the virtual node, the encoder that runs ahead, the
baselines, benchmarks) asks here, so that ``node-{i}.jsonl`` files and a sharded store
(:mod:`federation.data.store`) serve the same code.
"""

from __future__ import annotations

from pathlib import Path

from federation.data.load import load_conversations
from federation.data.store import STORE_INDEX, STORE_MANIFEST, NodeStore, is_store
from federation.errors import DataError
from federation.data.types import Conversation

__all__ = ["node_file", "read_simulated_node", "source_stamp"]


def node_file(data_dir: Path, index: int) -> Path:
    """Where node ``index``'s data lives: its own file, or the store's manifest.

    A folder with a store's index but no manifest is a store being (re)written, or one whose
    writer died: its node files, if any, are not read in its place.
    """
    folder = Path(data_dir)
    if is_store(folder):
        return folder / STORE_MANIFEST
    if (folder / STORE_INDEX).exists():
        raise DataError(f"{folder}: a node store without its {STORE_MANIFEST} (incomplete); write the store again")
    return folder / f"node-{index}.jsonl"


def read_simulated_node(data_dir: Path, index: int) -> list[Conversation]:
    """Node ``index``'s conversations, strictly (a bad record is a one-line ``DataError``)."""
    path = node_file(data_dir, index)
    return NodeStore(path.parent).read(index) if path.name == STORE_MANIFEST else load_conversations(path)


def source_stamp(path: Path) -> int:
    """A number that changes when the data at ``path`` (a node file or a store's manifest) is rewritten."""
    return Path(path).stat().st_mtime_ns
