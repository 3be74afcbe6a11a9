"""Put a simulated federation's data on disk: synthetic, an existing JSONL federation, or PAN-2012."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from federation.data.load import load_conversations
from federation.data.partition import dirichlet_partition
from federation.data.records import write_jsonl
from federation.data.store import NodeStore, is_store
from federation.data.synthetic import SynthSettings, generate_federation
from federation.errors import ConfigError, DataError
from simulations.compose import compose
from conf.settings import node_kinds

log = logging.getLogger(__name__)


def synth_settings(cfg: DictConfig) -> SynthSettings:
    """The generator's settings from the data and federation groups."""
    return SynthSettings(
        seed=int(cfg.data.seed),
        conversations_per_node=int(cfg.data.conversations_per_node),
        test_conversations=int(cfg.data.test_conversations),
        size_skew=float(cfg.federation.size_skew),
        label_skew=float(cfg.federation.label_skew),
        size_distribution=str(cfg.data.size_distribution),
        min_node_conversations=int(cfg.data.min_node_conversations),
        max_node_conversations=int(cfg.data.max_node_conversations),
        size_exponent=float(cfg.data.size_exponent),
    )


def prepare_data(cfg: DictConfig, run_dir: Path) -> tuple[Path, Path]:
    """Write or locate the nodes' data; return (folder with node-{i}.jsonl or a store, test file)."""
    kind = cfg.data.kind
    nodes = int(cfg.federation.nodes)
    if kind == "synthetic":
        out = run_dir / "data"
        generate_federation(synth_settings(cfg), node_kinds=node_kinds(cfg), out_dir=out, layout=str(cfg.data.layout))
        return out, out / "test.jsonl"
    if kind == "jsonl":
        folder = Path(str(cfg.data.dir))
        store = is_store(folder)
        missing = [] if store else [f"node-{i}.jsonl" for i in range(nodes) if not (folder / f"node-{i}.jsonl").is_file()]
        if not (folder / "test.jsonl").is_file():
            missing.append("test.jsonl")
        if missing:
            holds = "a node store" if store else "one file per node"
            raise DataError(f"{folder}: missing {', '.join(missing)} (data.dir must hold {holds} and test.jsonl)")
        if store and (held := NodeStore(folder).nodes) < nodes:
            raise DataError(f"{folder}: the store holds {held} nodes, fewer than federation.nodes={nodes}")
        return folder, folder / "test.jsonl"
    if kind == "pan12":
        out = run_dir / "data"
        train = load_conversations(Path(str(cfg.data.train_xml)), predators=Path(str(cfg.data.train_predators)))
        test = load_conversations(Path(str(cfg.data.test_xml)), predators=Path(str(cfg.data.test_predators)))
        labels = np.array([c.label for c in train], dtype=np.int64)
        parts = dirichlet_partition(
            labels, num_parts=nodes, alpha=float(cfg.federation.label_skew), rng=np.random.default_rng(int(cfg.seed))
        )
        for i, indices in enumerate(parts):
            write_jsonl(out / f"node-{i}.jsonl", [train[j] for j in indices])
        write_jsonl(out / "test.jsonl", test)
        return out, out / "test.jsonl"
    raise ConfigError(f"data.kind={kind!r} is not allowed; choose one of: synthetic, jsonl, pan12")


def synth_command(args: argparse.Namespace) -> int:
    """``cesagram data synth OUT_DIR [overrides]``: write a synthetic federation and its manifest."""
    cfg = compose(list(args.overrides))
    manifest = generate_federation(
        synth_settings(cfg), node_kinds=node_kinds(cfg), out_dir=Path(args.out_dir), layout=str(cfg.data.layout)
    )
    for kind, entry in manifest["nodes_by_kind"].items() if not manifest["nodes"] else ():
        print(
            f"{kind}: {entry['nodes']} nodes in the store, {entry['conversations']} conversations "
            f"({entry['smallest']} to {entry['largest']} per node), {entry['positives']} grooming"
        )
    for node in manifest["nodes"]:
        print(
            f"{node['file']}: {node['kind']}, {node['conversations']} conversations, {node['positives']} grooming "
            f"({node['prevalence']:.1%}), {node['real_chats']} real chats"
        )
    test = manifest["test"]
    print(
        f"{test['file']}: held-out test, {test['conversations']} conversations, {test['positives']} grooming "
        f"(prevalence {test['prevalence']:.1%}), {test['real_chats']} real chats"
    )
    print(f"manifest: {Path(args.out_dir) / 'manifest.json'}")
    return 0
