"""The sharded node store: one data file and an index by node, read one node at a time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from federation.data.nodes import node_file, read_simulated_node
from federation.data.partition import power_law_sizes
from federation.data.records import write_jsonl
from federation.data.store import STORE_MANIFEST, NodeStore, StoreWriter, is_store
from federation.data.synthetic import SynthSettings, generate_federation
from federation.data.types import Conversation, Message
from federation.errors import ConfigError, DataError


def _conversation(node: int, index: int, label: int = 0) -> Conversation:
    messages = tuple(Message(author=f"a{j % 2}", text=f"node {node} chat {index} line {j}") for j in range(3))
    return Conversation(id=f"n{node}-{index}", label=label, messages=messages)


def _store(folder: Path, sizes: list[int]) -> list[list[Conversation]]:
    nodes = [[_conversation(n, i, label=i % 2) for i in range(size)] for n, size in enumerate(sizes)]
    with StoreWriter(folder) as writer:
        for conversations in nodes:
            writer.add(conversations)
    return nodes


def test_each_node_reads_back_its_own_conversations_and_nothing_else(tmp_path: Path) -> None:
    nodes = _store(tmp_path, [3, 1, 20, 2])
    store = NodeStore(tmp_path)
    assert is_store(tmp_path) and store.nodes == 4
    assert store.manifest["conversations"] == 26
    for index, expected in enumerate(nodes):
        assert store.count(index) == len(expected)
        assert store.read(index) == expected
        assert read_simulated_node(tmp_path, index) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conversations.jsonl", "index.npy", STORE_MANIFEST]


def test_a_node_outside_the_store_and_a_damaged_store_are_one_line_errors(tmp_path: Path) -> None:
    _store(tmp_path, [2, 2])
    with pytest.raises(DataError, match=r"node 2 is not in this store of 2 nodes"):
        NodeStore(tmp_path).read(2)
    data = tmp_path / "conversations.jsonl"
    data.write_bytes(data.read_bytes()[:-10])  # truncated
    with pytest.raises(DataError, match="truncated or changed") as caught:
        NodeStore(tmp_path)
    assert "\n" not in str(caught.value)
    (tmp_path / STORE_MANIFEST).unlink()
    with pytest.raises(DataError, match="not a node store"):
        NodeStore(tmp_path)


def test_a_bad_record_in_a_node_slice_names_the_node_and_line_never_its_text(tmp_path: Path) -> None:
    _store(tmp_path, [2, 2])
    data = tmp_path / "conversations.jsonl"
    raw = data.read_bytes()
    lines = raw.splitlines(keepends=True)
    broken = json.loads(lines[3])
    broken["label"] = 7  # node 1's second record; same byte length keeps the index valid
    replaced = json.dumps(broken, ensure_ascii=False).encode() + b"\n"
    assert len(replaced) == len(lines[3])
    data.write_bytes(b"".join([*lines[:3], replaced]))
    assert NodeStore(tmp_path).read(0)  # the other node is unaffected
    with pytest.raises(DataError) as caught:
        NodeStore(tmp_path).read(1)
    message = str(caught.value)
    assert "(node 1):2: label: expected 0 or 1" in message and "chat" not in message


def test_a_writer_that_fails_leaves_the_old_store_as_it_was(tmp_path: Path) -> None:
    old = _store(tmp_path, [1, 2])
    with pytest.raises(RuntimeError), StoreWriter(tmp_path) as writer:
        writer.add([_conversation(5, 0)])
        raise RuntimeError("the generator broke")
    assert NodeStore(tmp_path).read(1) == old[1]
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    with pytest.raises(DataError, match="node 0 has no conversations"), StoreWriter(tmp_path) as writer:
        writer.add([])
    (tmp_path / STORE_MANIFEST).unlink()  # a writer killed between its renames
    write_jsonl(tmp_path / "node-0.jsonl", [_conversation(9, 0)])
    with pytest.raises(DataError, match="without its store.json"):
        read_simulated_node(tmp_path, 0)  # the stale node file is not read in the store's place


def _rewrite_index(folder: Path, index: np.ndarray) -> None:
    with open(folder / "index.npy", "wb") as out:
        np.save(out, index)


def test_an_index_whose_slices_do_not_tile_the_data_is_refused(tmp_path: Path) -> None:
    _store(tmp_path, [2, 3, 1])
    good = np.load(tmp_path / "index.npy")
    reads_past = good.copy()
    reads_past[0, 1] = -1  # would read to the end: every later node's chats
    other_node = good.copy()
    other_node[0] = good[1]  # node 0 pointing at node 1's slice
    for index in (reads_past, other_node):
        _rewrite_index(tmp_path, index)
        with pytest.raises(DataError, match="overlap, leave gaps or run past"):
            NodeStore(tmp_path)
    _rewrite_index(tmp_path, good.astype(np.int32))
    with pytest.raises(DataError, match="not int64"):
        NodeStore(tmp_path)
    (tmp_path / "index.npy").write_bytes(b"")
    with pytest.raises(DataError, match="unreadable store index"):
        NodeStore(tmp_path)
    manifest = json.loads((tmp_path / STORE_MANIFEST).read_text())
    for bad in (3.7, True, "3"):
        (tmp_path / STORE_MANIFEST).write_text(json.dumps({**manifest, "nodes": bad}))
        with pytest.raises(DataError, match="whole numbers"):
            NodeStore(tmp_path)
    (tmp_path / STORE_MANIFEST).write_text(json.dumps(manifest).replace(f'"nodes": {manifest["nodes"]}', '"nodes": Infinity'))
    with pytest.raises(DataError, match="whole numbers"):
        NodeStore(tmp_path)


def test_power_law_sizes_are_bounded_heavy_tailed_and_prefix_stable() -> None:
    sizes = power_law_sizes(20_000, low=1, high=20, exponent=1.5, rng=np.random.default_rng(0))
    assert sizes.min() == 1 and sizes.max() == 20
    assert np.mean(sizes == 1) > 0.4 and np.mean(sizes >= 10) < 0.15  # most devices hold one chat
    prefix = power_law_sizes(1_000, low=1, high=20, exponent=1.5, rng=np.random.default_rng(0))
    assert np.array_equal(prefix, sizes[:1_000])
    with pytest.raises(ConfigError, match="high"):
        power_law_sizes(5, low=3, high=2, exponent=1.5, rng=np.random.default_rng(0))


def test_sharded_synthetic_federation_has_small_mixed_nodes_in_one_store(tmp_path: Path) -> None:
    settings = SynthSettings(
        seed=3, size_distribution="power_law", min_node_conversations=1, max_node_conversations=20, test_conversations=20
    )
    kinds = ["platform", "hotline", "police"] * 100
    manifest = generate_federation(settings, node_kinds=kinds, out_dir=tmp_path, layout="sharded")
    store = NodeStore(tmp_path)
    assert store.nodes == 300 and not list(tmp_path.glob("node-*.jsonl"))
    counts = [store.count(i) for i in range(300)]
    assert 1 == min(counts) and max(counts) <= 20
    by_kind = manifest["nodes_by_kind"]
    assert sum(entry["nodes"] for entry in by_kind.values()) == 300
    assert sum(entry["conversations"] for entry in by_kind.values()) == sum(counts) == store.manifest["conversations"]
    singles = [store.read(i)[0].label for i in range(300) if counts[i] == 1]
    assert 0 in singles  # a device with one chat holds one class, never forced to hold both
    assert node_file(tmp_path, 7) == tmp_path / STORE_MANIFEST


def test_files_written_over_a_store_are_read_as_files(tmp_path: Path) -> None:
    _store(tmp_path, [2])
    write_jsonl(tmp_path / "node-0.jsonl", [_conversation(9, 0)])
    settings = SynthSettings(conversations_per_node=20, test_conversations=5)
    generate_federation(settings, node_kinds=["hotline"], out_dir=tmp_path, layout="files")
    assert not is_store(tmp_path)
    assert node_file(tmp_path, 0) == tmp_path / "node-0.jsonl"
    assert len(read_simulated_node(tmp_path, 0)) == 20


def test_size_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="size_distribution"):
        SynthSettings(size_distribution="zipf")
    with pytest.raises(ConfigError, match="max_node_conversations"):
        SynthSettings(size_distribution="power_law", min_node_conversations=5, max_node_conversations=2)
    with pytest.raises(ConfigError, match="layout"):
        generate_federation(SynthSettings(), node_kinds=["hotline"], out_dir=Path("/nonexistent"), layout="tar")
