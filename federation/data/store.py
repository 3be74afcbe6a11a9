"""A sharded store: the conversations of very many small nodes in one file, indexed by node.

A cross-device federation has thousands of nodes holding a few conversations each; one
file per node would be ten thousand files, and loading them all would hold every node's
data in memory at once. The store keeps them in one JSON Lines file, node after node, with
a fixed-width index (``index.npy``: byte offset, byte length and conversation count per
node) that is memory-mapped, so a virtual node reads its own slice and nothing else: the
memory of a reader does not grow with the number of nodes.

The writer streams node by node and makes the store appear whole or not at all: the data
and the index are written under temporary names and renamed, and the manifest, written
last, is what marks a folder as a complete store. Records are the canonical JSON Lines
(:mod:`federation.data.jsonl`) and are read by the same parser, so a store refuses what a
node file would.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from federation.checks import is_integer
from federation.data.issues import IssueCollector, open_data_file, read_failed
from federation.data.jsonl import read_records
from federation.data.records import conversation_to_record
from federation.data.types import Conversation
from federation.errors import DataError
from federation.io import atomic_write_json

__all__ = ["STORE_INDEX", "STORE_MANIFEST", "NodeStore", "StoreWriter", "is_store", "remove_store"]

STORE_MANIFEST = "store.json"
STORE_DATA = "conversations.jsonl"
STORE_INDEX = "index.npy"
STORE_VERSION = 1
#: Columns of the index: where a node's lines start, how many bytes they take, how many conversations.
_OFFSET, _LENGTH, _COUNT = 0, 1, 2


def remove_store(folder: Path) -> None:
    """Delete a store's files from ``folder`` (its manifest first: a reader never sees half of one)."""
    for name in (STORE_MANIFEST, STORE_INDEX, STORE_DATA):
        (Path(folder) / name).unlink(missing_ok=True)


def is_store(folder: Path) -> bool:
    """Whether ``folder`` holds a complete sharded store (its manifest is written last)."""
    return (Path(folder) / STORE_MANIFEST).is_file()


class StoreWriter:
    """Writes a store node by node in bounded memory; on error nothing of it is left behind.

    Use as a context manager; :meth:`add` appends the next node (node ``i`` is the ``i``-th
    call; a node with no conversation is refused, as an empty node file is). ``extra`` goes
    into the manifest. A store already in the folder stays readable until the new one is
    complete, and stays as it was if the writer fails.
    """

    def __init__(self, folder: Path, *, extra: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.extra = dict(extra or {})
        self._rows: list[tuple[int, int, int]] = []
        self._offset = 0
        self._data_tmp = self.folder / f".{STORE_DATA}.tmp"
        self._handle: io.BufferedWriter | None = None

    def __enter__(self) -> StoreWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._handle = open(self._data_tmp, "wb")  # noqa: SIM115 - closed in __exit__
        return self

    def add(self, conversations: Sequence[Conversation]) -> int:
        """Append the next node's conversations; return its index."""
        assert self._handle is not None, "use StoreWriter as a context manager"
        if not conversations:
            raise DataError(f"{self.folder}: node {len(self._rows)} has no conversations; a store holds none empty")
        data = "".join(
            json.dumps(conversation_to_record(c), ensure_ascii=False, allow_nan=False) + "\n" for c in conversations
        ).encode("utf-8")
        self._handle.write(data)
        self._rows.append((self._offset, len(data), len(conversations)))
        self._offset += len(data)
        return len(self._rows) - 1

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        if exc_type is not None:
            self._data_tmp.unlink(missing_ok=True)
            return
        index = np.asarray(self._rows, dtype=np.int64).reshape(len(self._rows), 3)
        index_tmp = self.folder / f".{STORE_INDEX}.tmp"
        with open(index_tmp, "wb") as out:
            np.save(out, index)
        (self.folder / STORE_MANIFEST).unlink(missing_ok=True)  # no store from here until the new manifest
        os.replace(self._data_tmp, self.folder / STORE_DATA)
        os.replace(index_tmp, self.folder / STORE_INDEX)
        atomic_write_json(
            self.folder / STORE_MANIFEST,
            {
                "store": "cesagram-fl sharded node store",
                "version": STORE_VERSION,
                "nodes": len(self._rows),
                "conversations": int(index[:, _COUNT].sum()) if len(index) else 0,
                "data_bytes": self._offset,
                **self.extra,
            },
        )


def _contiguous(index: np.ndarray, data_bytes: int) -> bool:
    """Whether the slices tile the data file in node order: no node can read another's bytes."""
    offsets, lengths, counts = index[:, _OFFSET], index[:, _LENGTH], index[:, _COUNT]
    if not len(index):
        return data_bytes == 0
    return bool(
        offsets[0] == 0
        and (lengths >= 0).all()
        and (counts >= 1).all()
        and (offsets[1:] == offsets[:-1] + lengths[:-1]).all()
        and offsets[-1] + lengths[-1] == data_bytes
    )


class NodeStore:
    """Read access to a store: its manifest, and one node's conversations at a time.

    Opening reads the manifest and memory-maps the index; :meth:`read` reads only the
    bytes of one node. Every problem is a one-line :class:`DataError` naming the store.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        manifest_path = self.folder / STORE_MANIFEST
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            self.nodes, data_bytes = self.manifest["nodes"], self.manifest["data_bytes"]
        except FileNotFoundError:
            raise DataError(f"{self.folder}: not a node store (no {STORE_MANIFEST}); write it again") from None
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"{manifest_path}: unreadable store manifest; write the store again") from None
        if not (is_integer(self.nodes, numpy=False) and is_integer(data_bytes, numpy=False)) or min(self.nodes, data_bytes) < 0:
            raise DataError(f"{manifest_path}: nodes and data_bytes must be whole numbers >= 0; write the store again")
        index_path = self.folder / STORE_INDEX
        try:
            self.index = np.load(index_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            raise DataError(f"{index_path}: missing or unreadable store index; write the store again") from None
        if self.index.dtype != np.int64:
            raise DataError(f"{index_path}: index of {self.index.dtype}, not int64; write the store again")
        if self.index.shape != (self.nodes, 3):
            raise DataError(
                f"{index_path}: index of shape {self.index.shape} does not match the manifest's {self.nodes} nodes; "
                "write the store again"
            )
        if not _contiguous(self.index, data_bytes):
            raise DataError(f"{index_path}: node slices overlap, leave gaps or run past the data; write the store again")
        self.data_path = self.folder / STORE_DATA
        try:
            size = self.data_path.stat().st_size
        except OSError:
            raise DataError(f"{self.data_path}: the store's data file is missing; write the store again") from None
        if size != data_bytes:
            raise DataError(
                f"{self.data_path}: {size} bytes where the manifest says {data_bytes} (truncated or changed); "
                "write the store again"
            )

    def count(self, node: int) -> int:
        """How many conversations node ``node`` holds (from the index alone)."""
        return int(self.index[self._checked(node), _COUNT])

    def read(self, node: int) -> list[Conversation]:
        """Node ``node``'s conversations, strictly: any bad record is a :class:`DataError`."""
        row = self.index[self._checked(node)]
        offset, length, count = int(row[_OFFSET]), int(row[_LENGTH]), int(row[_COUNT])
        with open_data_file(self.data_path, what="store data file") as handle:
            try:
                handle.seek(offset)
                data = handle.read(length)
            except OSError as error:
                raise read_failed(self.data_path, error, what="store data file") from None
        collector = IssueCollector(f"{self.data_path} (node {node})", max_issues=1)
        conversations = read_records(io.BytesIO(data), collector)
        if collector.issues:
            raise DataError(f"{collector.issues[0]}; write the store again")
        if len(conversations) != count:
            raise DataError(
                f"{collector.path}: {len(conversations)} conversations where the index says {count}; write the store again"
            )
        return conversations

    def _checked(self, node: int) -> int:
        if not 0 <= int(node) < self.nodes:
            raise DataError(f"{self.folder}: node {node} is not in this store of {self.nodes} nodes")
        return int(node)
