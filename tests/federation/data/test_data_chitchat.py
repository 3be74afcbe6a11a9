"""The chitchat corpus: reading it, its reserved quarter, and that training data never holds it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from federation.data import chitchat
from federation.data.chitchat import (
    background_pool,
    chitchat_key,
    is_reserved,
    load_chitchat,
    part_of,
    read_chitchat,
    real_negative_set,
)
from federation.data.synthetic import SynthSettings, generate_federation
from federation.errors import DataError


def _turn(sender: str, *texts: str, minute: int = 38) -> list[dict]:
    return [{"text": t, "timestamp": f"2018-05-02T19:{minute:02d}:15Z", "sender": sender} for t in texts]


def test_reads_turns_in_order_with_pseudonyms_and_times_and_drops_empty_messages(tmp_path):
    path = tmp_path / "dataset.json"
    data = {"k1": {"messages": [_turn("alice-uuid", "Hello", "  "), _turn("bob-uuid", "hi there", minute=39)]}}
    path.write_text(json.dumps(data), encoding="utf-8")
    [conversation] = read_chitchat(path)
    assert conversation.id == "chitchat-k1" and conversation.label == 0 and chitchat_key(conversation) == "k1"
    assert [m.text for m in conversation.messages] == ["Hello", "hi there"]
    assert [m.time for m in conversation.messages] == ["19:38", "19:39"]
    alice = "u" + hashlib.sha256(b"alice-uuid").hexdigest()[:8]
    assert conversation.messages[0].author == alice and conversation.messages[1].author != alice
    assert "alice" not in json.dumps([m.author for m in conversation.messages])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object of conversations"),
        ('{"k9": {"turns": []}}', "conversation 'k9': expected an object with a list \"messages\""),
        ('{"k9": {"messages": [{"text": "x"}]}}', "conversation 'k9': messages[0] is not a list"),
        ('{"k9": {"messages": [[{"text": 3, "sender": "s"}]]}}', "messages[0][0] needs string"),
    ],
)
def test_a_broken_corpus_file_is_one_line_naming_where(tmp_path, content, expected):
    path = tmp_path / "dataset.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=None) as error:
        read_chitchat(path)
    assert expected in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_missing_file_or_package_says_how_to_fix_it(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="cannot read the chitchat corpus"):
        read_chitchat(tmp_path / "absent.json")
    monkeypatch.setattr(chitchat.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="pip install chitchat-dataset"):
        chitchat.dataset_path()


def test_the_reserved_quarter_follows_the_sha256_rule_and_gives_835_evaluation_chats():
    corpus = load_chitchat()
    assert len(corpus) == 7168
    for conversation in corpus[:200]:
        key = chitchat_key(conversation)
        assert is_reserved(key) == (hashlib.sha256(key.encode()).hexdigest()[0] in "0123")
    reserved = [c for c in corpus if is_reserved(chitchat_key(c))]
    assert 0.22 < len(reserved) / len(corpus) < 0.28
    evaluation = real_negative_set()
    assert len(evaluation) == 835
    assert all(len(c.messages) >= 6 and len(c.authors) >= 2 and c.label == 0 for c in evaluation)
    pools = {part: background_pool(part) for part in ("nodes", "test", "public")}
    for part, pool in pools.items():
        assert {part_of(chitchat_key(c)) for c in pool} == {part}
    assert {part: len(pool) for part, pool in pools.items()} == {"nodes": 1687, "test": 372, "public": 436}


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_synthetic_federations_never_contain_a_reserved_conversation(tmp_path):
    settings = SynthSettings(seed=5, conversations_per_node=150, test_conversations=150, min_node_conversations=20)
    manifest = generate_federation(settings, node_kinds=["hotline", "police", "platform"], out_dir=tmp_path)
    corpus = load_chitchat()
    texts_by_part: dict[str, set[str]] = {"reserved": set(), "test": set(), "public": set(), "nodes": set()}
    for conversation in corpus:
        texts_by_part[part_of(chitchat_key(conversation))].update(m.text for m in conversation.messages)
    # Sentences of six words or more that only reserved chats hold (short ones like "nice one"
    # may be scripted lines too).
    reserved_only = {
        t for t in texts_by_part["reserved"] - texts_by_part["test"] - texts_by_part["public"] - texts_by_part["nodes"]
        if len(t.split()) >= 6
    }
    assert len(reserved_only) > 10_000
    for entry in [*manifest["nodes"], manifest["test"]]:
        part = "test" if entry["name"] == "test" else "nodes"
        records = _records(tmp_path / entry["file"])
        keys = [key for r in records for key in r["synthetic"]["background"]]
        assert keys and {part_of(key) for key in keys} == {part}  # the test file's real language is never trained on
        texts = {m["text"] for r in records for m in r["messages"]}
        assert not texts & reserved_only
        real = [r for r in records if r["synthetic"]["scenario"] == "real_chat"]
        assert real and all(r["label"] == 0 for r in real)
    grooming = [r for r in _records(tmp_path / "node-0.jsonl") if r["label"] == 1]
    woven = [r for r in grooming if r["synthetic"]["background"]]
    assert len(woven) > 0.8 * len(grooming)  # woven into real chats too (a short fast one may be all script)
