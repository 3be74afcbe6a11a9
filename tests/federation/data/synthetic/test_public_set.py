"""The server's public pretraining set shares no text with the nodes' data or the test file."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.data.chitchat import part_of
from federation.data.load import load_conversations
from federation.data.synthetic import SynthSettings, generate_federation
from federation.data.synthetic.bank import HALVES, bank_half, load_banks, parse_banks, parse_shared, split_banks
from federation.data.synthetic.public import PublicSetSettings, public_conversations
from federation.data.types import Conversation
from federation.errors import ConfigError


def _alternatives(banks: dict) -> set[str]:
    return {
        text
        for exchanges in banks.values()
        for exchange in exchanges
        for line in exchange
        for text in line.alternatives
    }


def _background_keys(conversations: list[Conversation]) -> set[str]:
    return {key for c in conversations for key in c.extra.get("synthetic", {}).get("background", [])}


def test_the_two_bank_halves_are_disjoint_cover_every_alternative_and_keep_every_line() -> None:
    private, public = bank_half("private"), bank_half("public")
    assert _alternatives(private).isdisjoint(_alternatives(public))
    assert _alternatives(private) | _alternatives(public) == _alternatives(load_banks())
    for half in (private, public):
        assert half.keys() == load_banks().keys()
        for name, exchanges in half.items():
            for exchange in exchanges:
                assert all(line.alternatives for line in exchange), name


def test_an_aligned_reply_stays_with_the_question_it_answers() -> None:
    shared = parse_shared("")
    banks = parse_banks("== smalltalk\nA: how are you? | where are you?\nB~: fine | at home\n", shared=shared)
    for half in HALVES:
        ((question, reply),) = split_banks(banks, half, shared=shared)["smalltalk"]
        assert len(question.alternatives) == len(reply.alternatives) == 1
        pairs = {"how are you?": "fine", "where are you?": "at home"}
        assert pairs[question.alternatives[0]] == reply.alternatives[0]


def test_a_line_that_cannot_be_split_is_named() -> None:
    shared = parse_shared("")
    banks = parse_banks("== smalltalk\nA: hello there\nB: hi | hey\n", shared=shared)
    with pytest.raises(ValueError, match="'hello there'"):
        split_banks(banks, "public", shared=shared)


def test_public_set_shares_no_scripted_text_and_no_real_chat_with_the_federation(tmp_path: Path) -> None:
    generate_federation(
        SynthSettings(seed=0, conversations_per_node=60, test_conversations=60),
        node_kinds=["hotline", "platform"],
        out_dir=tmp_path,
    )
    private = [c for path in sorted(tmp_path.glob("*.jsonl")) for c in load_conversations(path)]
    public = public_conversations(PublicSetSettings(conversations=120, seed=0))
    assert len(public) == 120 and 0 < sum(c.label for c in public) < 120
    # Real chit-chat: the public part of the corpus only, never the nodes', the test file's or the reserved.
    assert {part_of(key) for key in _background_keys(public)} == {"public"}
    assert {part_of(key) for key in _background_keys(private)} <= {"nodes", "test"}
    # Scripted lines: whatever text the public set writes that is not real chat, the federation never does.
    private_texts = {m.text.lower() for c in private for m in c.messages}
    scripted_public = {m.text.lower() for c in public for m in c.messages if m.indicators}
    assert scripted_public and scripted_public.isdisjoint(private_texts)
    assert (
        public_conversations(PublicSetSettings(conversations=120, seed=0)) == public
    )  # a pure function of its settings


def test_public_set_settings_refuse_bad_values_with_the_key() -> None:
    with pytest.raises(ConfigError, match="pretrain.conversations"):
        PublicSetSettings(conversations=1)
    with pytest.raises(ConfigError, match="pretrain.positive_rate"):
        PublicSetSettings(positive_rate=1.5)
