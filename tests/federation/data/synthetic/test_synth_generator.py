"""The synthetic federation on disk: determinism, manifest, record schema, lengths, node kinds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from federation.data.indicators import INDICATOR_CODES
from federation.data.synthetic import NODE_KINDS, SynthSettings, generate_federation

SMALL = SynthSettings(seed=3, conversations_per_node=40, test_conversations=30, min_node_conversations=10)
KINDS = ["hotline", "police", "platform"]
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("small")
    return out, generate_federation(SMALL, node_kinds=KINDS, out_dir=out)


def test_two_runs_are_byte_identical_and_another_seed_differs(small, tmp_path):
    out, _ = small
    generate_federation(SMALL, node_kinds=KINDS, out_dir=tmp_path / "again")
    assert _files(out) == _files(tmp_path / "again")
    other = SynthSettings(seed=4, conversations_per_node=40, test_conversations=30, min_node_conversations=10)
    generate_federation(other, node_kinds=KINDS, out_dir=tmp_path / "other")
    differ = [name for name, data in _files(tmp_path / "other").items() if data != _files(out)[name]]
    assert {"node-0.jsonl", "node-1.jsonl", "node-2.jsonl", "test.jsonl"} <= set(differ)


def test_output_does_not_depend_on_the_hash_seed(small, tmp_path):
    out, _ = small
    code = (
        "import sys; from pathlib import Path; "
        "from federation.data.synthetic import SynthSettings, generate_federation; "
        "generate_federation(SynthSettings(seed=3, conversations_per_node=40, test_conversations=30, "
        "min_node_conversations=10), node_kinds=['hotline', 'police', 'platform'], out_dir=Path(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "hashed")], check=True, env=env, timeout=120)
    assert _files(out) == _files(tmp_path / "hashed")


def test_manifest_counts_match_the_files(small):
    out, manifest = small
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert manifest["seed"] == SMALL.seed and manifest["settings"]["conversations_per_node"] == 40
    assert [node["kind"] for node in manifest["nodes"]] == KINDS
    assert sum(node["conversations"] for node in manifest["nodes"]) == 40 * len(KINDS)
    texts = set()
    for entry in [*manifest["nodes"], manifest["test"]]:
        records = _records(out / entry["file"])
        assert entry["conversations"] == len(records)
        assert entry["positives"] == sum(r["label"] for r in records)
        assert entry["negatives"] == sum(1 - r["label"] for r in records)
        assert entry["messages"] == sum(len(r["messages"]) for r in records)
        texts.update(m["text"] for r in records for m in r["messages"])
    assert manifest["test"]["conversations"] == SMALL.test_conversations
    assert sum(manifest["test"]["kinds"].values()) == SMALL.test_conversations
    assert manifest["distinct_texts"] == len(texts)
    assert all(node["conversations"] >= SMALL.min_node_conversations for node in manifest["nodes"])


def test_every_record_follows_the_schema(small):
    out, manifest = small
    ids = set()
    for entry in [*manifest["nodes"], manifest["test"]]:
        for record in _records(out / entry["file"]):
            assert record["id"] not in ids
            ids.add(record["id"])
            assert record["label"] in (0, 1)
            messages = record["messages"]
            assert SMALL.min_messages <= len(messages) <= SMALL.max_messages
            authors = {m["author"] for m in messages}
            assert len(authors) <= 2
            times = [m["time"] for m in messages]
            assert all(TIME.match(t) for t in times) and times == sorted(times) and len(set(times)) == len(times)
            assert all(isinstance(m["text"], str) and m["text"].strip() for m in messages)
            coded = [m for m in messages if m.get("indicators")]
            assert all(code in INDICATOR_CODES for m in coded for code in m["indicators"])
            if record["label"] == 1:
                assert record["groomer"] in authors
                assert coded and all(m["author"] == record["groomer"] for m in coded)
            else:
                assert "groomer" not in record and not coded


def test_lengths_tell_little_about_the_label_and_span_the_range(tmp_path):
    settings = SynthSettings(seed=1, conversations_per_node=150, test_conversations=0)
    manifest = generate_federation(settings, node_kinds=KINDS, out_dir=tmp_path)
    lengths = {0: [], 1: []}
    for node in manifest["nodes"]:
        for record in _records(tmp_path / node["file"]):
            lengths[record["label"]].append(len(record["messages"]))
    mean = {label: sum(values) / len(values) for label, values in lengths.items()}
    # Benign lengths follow the kinds' grooming tempos: grooming chats are somewhat longer on
    # average (slow grooming is long), never by so much that length alone gives them away.
    assert mean[0] < mean[1] < 1.3 * mean[0]
    every = lengths[0] + lengths[1]
    assert min(every) >= 6 and max(every) <= 150
    assert min(lengths[0]) <= 10 and max(lengths[1]) >= 120  # both ends of the range are used
    assert min(lengths[1]) <= 25  # fast, sextortion-style escalation exists


def test_node_kinds_differ_in_positive_rate(tmp_path):
    settings = SynthSettings(seed=2, conversations_per_node=200, test_conversations=0, label_skew=1000.0)
    manifest = generate_federation(settings, node_kinds=KINDS, out_dir=tmp_path)
    rate = {node["kind"]: node["positives"] / node["conversations"] for node in manifest["nodes"]}
    assert rate["hotline"] > rate["police"] > rate["platform"]
    assert rate["platform"] < 0.05 and rate["hotline"] > 0.25  # a moderation sample vs reported chats


def test_changing_the_test_size_leaves_node_files_unchanged(small, tmp_path):
    out, _ = small
    bigger = SynthSettings(seed=3, conversations_per_node=40, test_conversations=50, min_node_conversations=10)
    generate_federation(bigger, node_kinds=KINDS, out_dir=tmp_path)
    for name in ("node-0.jsonl", "node-1.jsonl", "node-2.jsonl"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    assert len(_records(tmp_path / "test.jsonl")) == 50


def test_a_rerun_with_fewer_nodes_removes_the_stale_node_files(tmp_path):
    generate_federation(SMALL, node_kinds=KINDS, out_dir=tmp_path)
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    manifest = generate_federation(SMALL, node_kinds=["hotline"], out_dir=tmp_path)
    assert len(manifest["nodes"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "node-0.jsonl", "notes.txt", "test.jsonl"]


def test_node_kinds_constant_matches_the_profiles():
    assert NODE_KINDS == ("hotline", "police", "platform")
