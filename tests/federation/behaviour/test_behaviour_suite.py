"""The behavioural suite: its cases, its independence from the generator's banks, its command."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cesagram.cli import main
from federation.behaviour import (
    CAPABILITIES,
    Normaliser,
    build_cases,
    find_reuse,
    generator_phrases,
    load_templates,
    real_subset,
    run_behaviour_suite,
    run_suite,
)
from federation.behaviour import build as build_module
from federation.data.records import conversation_to_record
from federation.data.types import Conversation, Message
from federation.models.cache import EmbeddingCache, default_cache_path
from federation.scoring.model import load_scoring_model

pytestmark = pytest.mark.usefixtures("private_cache")  # tests/federation/conftest.py: its own embedding cache


def _fake_real(count: int = 40) -> list[Conversation]:
    """Stand-ins for the reserved chit-chat set (the command test reads the real one)."""
    return [
        Conversation(
            id=f"chitchat-fake-{i}",
            label=0,
            messages=tuple(Message(author=f"u{i % 2}", text=f"ordinary line {i} {j}") for j in range(8)),
        )
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def cases():  # noqa: ANN201
    return build_cases(_fake_real())


def test_every_capability_has_dozens_of_cases(cases) -> None:  # noqa: ANN001
    per_capability = Counter(case.capability for case in cases)
    per_test = Counter((case.capability, case.test) for case in cases)
    assert set(per_capability) == set(CAPABILITIES)
    assert all(count >= 48 for count in per_capability.values()), per_capability
    assert all(count >= 12 for count in per_test.values()), per_test
    assert {test for capability, test in per_test if capability == "minimum_functionality"} == {
        "grooming_fast", "grooming_medium", "grooming_slow", "ordinary_templated", "ordinary_real",
    }
    assert {test for capability, test in per_test if capability == "invariance"} == {
        "rename_authors", "platform_and_app_names", "typos", "emoji", "sign_off_every_line", "american_spelling",
        "swap_unrelated_messages",
    }
    assert {test for capability, test in per_test if capability == "directional"} == {
        "child_age", "secrecy_request", "move_to_another_app", "runaway_offer", "parent_joins", "peer_age",
    }
    assert len({case.id for case in cases}) == len(cases)
    assert per_test[("minimum_functionality", "ordinary_real")] == build_module.REAL_NEGATIVES


def test_cases_are_deterministic_and_tempos_differ(cases) -> None:  # noqa: ANN001
    again = build_cases(_fake_real())
    assert [(c.id, c.original, c.perturbed) for c in again] == [(c.id, c.original, c.perturbed) for c in cases]
    lengths = {
        tempo: np.mean([len(c.original.messages) for c in cases if c.test == f"grooming_{tempo}"])
        for tempo in ("fast", "medium", "slow")
    }
    assert lengths["fast"] < lengths["medium"] < lengths["slow"]
    # Half of the arcs end with an offer to leave home, half with a meeting request.
    runaway = load_templates().grooming["runaway"]
    offers = {fill_free(line) for exchange in runaway for role, line in exchange.lines if role == "a"}
    ending = [fill_free(c.original.messages[-2].text) for c in cases if c.test.startswith("grooming_")]
    assert 0 < sum(text in offers for text in ending) < len(ending)


def fill_free(text: str) -> str:
    """A text with slot values and placeholders blanked, to compare rendered lines with templates."""
    return re.sub(r"\{\w+\}|[A-Z][a-z]+|\d+", "_", text)


def test_real_subset_is_fixed_and_order_free() -> None:
    real = _fake_real(60)
    subset = real_subset(real)
    assert len(subset) == build_module.REAL_NEGATIVES
    assert real_subset(list(reversed(real))) == subset
    assert {c.id for c in subset} < {c.id for c in real}


def test_perturbations_change_what_they_say_and_nothing_else(cases) -> None:  # noqa: ANN001
    templates = load_templates()
    for case in cases:
        if case.capability != "invariance":
            continue
        before, after = case.original.messages, case.perturbed.messages
        assert len(before) == len(after) and before != after, case.id
        if case.test == "swap_unrelated_messages":
            changed = [i for i, (b, a) in enumerate(zip(before, after)) if b != a]
            assert len(changed) == 2 and changed[1] == changed[0] + 1, case.id
            assert Counter(before) == Counter(after)
        elif case.test == "rename_authors":
            assert set(case.original.authors).isdisjoint(case.perturbed.authors), case.id
        else:
            assert [m.author for m in before] == [m.author for m in after], case.id
        if case.test == "american_spelling":
            british = re.compile(r"\b(" + "|".join(templates.spelling) + r")\b", re.IGNORECASE)
            assert not any(british.search(m.text) for m in after), case.id
        if case.test == "emoji":
            assert sum(b.text != a.text for b, a in zip(before, after)) == 3
            assert all(a.text.startswith(b.text) for b, a in zip(before, after))
        if case.test == "sign_off_every_line":  # one pleasantry on every line of one speaker, nothing else
            endings = {a.text[len(b.text) + 1 :] for b, a in zip(before, after) if b != a}
            assert len(endings) == 1 and endings <= set(templates.sign_offs), case.id
            changed = {b.author for b, a in zip(before, after) if b != a}
            assert len(changed) == 1 and all((b.author in changed) == (b != a) for b, a in zip(before, after)), case.id
            assert all(a.text.startswith(b.text) for b, a in zip(before, after))


def test_directional_cases_only_add_messages(cases) -> None:  # noqa: ANN001
    for case in cases:
        if case.capability != "directional":
            continue
        before, after = list(case.original.messages), list(case.perturbed.messages)
        assert len(after) > len(before), case.id
        kept = iter(after)
        assert all(message in kept for message in before), f"{case.id}: the original is not kept in order"
        if case.test == "parent_joins":
            assert len(case.perturbed.authors) == 3 and len(case.original.authors) == 2


def _normaliser() -> Normaliser:
    templates = load_templates()
    _, bank_values = generator_phrases()
    own = [value for values in templates.slots.values() for value in values]
    return Normaliser([*bank_values, *own], templates.spelling)


def test_no_template_reuses_a_phrase_of_the_generator_banks() -> None:
    templates = load_templates()
    lines = list(templates.lines())
    alternatives, _ = generator_phrases()
    assert len(lines) > 300 and len(alternatives) > 1000
    reuse = sorted({str(r) for r in find_reuse(lines, alternatives, _normaliser())})
    assert not reuse, "\n".join(reuse)


def test_the_reuse_check_catches_reworded_bank_phrases() -> None:
    """Bank phrases hidden in longer lines, re-cased, in chat spelling, with other slot values, are found."""
    normalise = _normaliser()
    alternatives, _ = generator_phrases()
    # A slot glued to a possessive ("{name}'s") becomes a new word once the disguise strips
    # apostrophes ("snapchats"), which no normaliser can map back: not sampled.
    long_ones = [(bank, text) for bank, text in alternatives if len(normalise(text)) >= 4 and "}'" not in text]
    rng = random.Random(0)
    templates = load_templates()
    for bank, text in rng.sample(long_ones, 60):
        disguised = re.sub(r"\{\w+\}", lambda _: rng.choice(templates.slots["app"]), text)
        for word, chat in (("you're", "ur"), ("you", "u"), ("are", "r"), ("i'm", "im"), ("please", "pls")):
            disguised = re.sub(rf"(?<![\w']){re.escape(word)}(?![\w'])", chat, disguised)
        disguised = disguised.upper().replace("'", "").replace("?", "!!")
        line = f"well honestly, {disguised} ... ok"
        found = list(find_reuse([("planted", line)], [(bank, text)], normalise))
        assert found, f"{text!r} hidden as {line!r} was not found"
    # Short stock replies are not counted as reuse inside a longer line, only as the whole line.
    assert not list(find_reuse([("t", "ok lol see you then")], [("b", "lol ok")], normalise))
    assert list(find_reuse([("t", "Ok, I guess!")], [("b", "ok i guess")], normalise))


def test_templates_stay_non_explicit() -> None:
    banned = re.compile(r"\b(sex\w*|naked|nude\w*|undress\w*|touch\w*|bed with|kiss\w*|body)\b", re.IGNORECASE)
    offending = [(where, text) for where, text in load_templates().lines() if banned.search(text)]
    assert not offending


def test_suite_scores_through_the_analysts_path(ngram_bundle, tmp_path: Path) -> None:  # noqa: ANN001
    """The suite's scores are `cesagram score`'s, and the head-level entry point gives the same figures."""
    model = load_scoring_model(ngram_bundle.model, cache=EmbeddingCache(default_cache_path()))
    cases = build_cases(_fake_real())
    result = run_suite(model, cases)
    picked = [r for r in result.results if r.case.capability != "minimum_functionality"][::40]
    path = tmp_path / "picked.jsonl"
    conversations = {r.case.perturbed.id: r.case.perturbed for r in picked}
    path.write_text("".join(json.dumps(conversation_to_record(c)) + "\n" for c in conversations.values()))
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--model", str(ngram_bundle.model), str(path), "--out", str(out)]) == 0
    scored = {row["id"]: row for row in map(json.loads, out.read_text().splitlines())}
    for r in picked:
        assert scored[r.case.perturbed.id]["score"] == pytest.approx(r.perturbed.score, abs=1e-6)
        assert scored[r.case.perturbed.id]["alert"] == r.perturbed.warned
        assert r.perturbed.flagged == (r.perturbed.score >= model.threshold)
    for r in result.results:
        if r.case.expect == "flagged":
            assert r.passed == r.original.flagged
        elif r.case.expect == "higher":
            assert r.passed == (r.perturbed.score > r.original.score)
        elif r.case.expect == "same":
            assert r.passed == ((r.original.flagged, r.original.warned) == (r.perturbed.flagged, r.perturbed.warned))

    figures = run_behaviour_suite(
        model.head, model.encoder, spec=model.spec, threshold=model.threshold, rule=model.rule, real_negatives=_fake_real()
    )
    assert figures == result.to_dict()


class _CountingEncoder:
    """Wraps an encoder and records every text it is asked to encode."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner = inner
        self.texts: list[str] = []

    id = property(lambda self: self.inner.id)
    dim = property(lambda self: self.inner.dim)

    def encode(self, texts):  # noqa: ANN001, ANN201
        self.texts.extend(texts)
        return self.inner.encode(texts)


def test_no_text_is_encoded_twice(ngram_bundle) -> None:  # noqa: ANN001
    model = load_scoring_model(ngram_bundle.model, cache=None)
    encoder = _CountingEncoder(model.encoder)
    run_behaviour_suite(model.head, encoder, spec=model.spec, threshold=model.threshold, rule=model.rule, real_negatives=_fake_real())
    assert encoder.texts and len(encoder.texts) == len(set(encoder.texts))


def test_command_prints_rates_and_a_failing_example_and_writes_json(ngram_bundle, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "behaviour.json"
    assert main(["evaluate", "--model", str(ngram_bundle.model), "--behaviour", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    assert set(CAPABILITIES) <= set(figures["capabilities"])
    for name in CAPABILITIES:
        counts = figures["capabilities"][name]
        assert isinstance(counts["cases"], int) and counts["cases"] >= 48
        assert 0 <= counts["passed"] <= counts["cases"]
        assert len(counts["failed"]) == counts["cases"] - counts["passed"]
        assert set(counts["failed_scores"]) == set(counts["failed"])
        words = name.replace("_", " ")
        assert f"{words}: {counts['passed']}/{counts['cases']} passed" in printed
        if counts["failed"]:
            shown = printed.split(f"failing example of {words} (")[1].splitlines()[1].strip()
            assert shown.split(": ")[0] in counts["failed"]
        else:
            assert f"no failing example of {words}" in printed
    # The real reserved chats are part of the suite when chitchat-dataset is installed (a dependency).
    assert figures["capabilities"]["minimum_functionality"]["tests"]["ordinary_real"]["cases"] == build_module.REAL_NEGATIVES
    assert "chitchat-" not in printed.split("failing example")[0]


def test_missing_bundle_is_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["evaluate", "--model", str(tmp_path / "nowhere"), "--behaviour"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nowhere" in err[0]


@pytest.mark.parametrize("where", ["missing/dir/out.json", "."])
def test_bad_out_path_is_one_line_before_scoring(ngram_bundle, tmp_path: Path, capsys, where: str) -> None:  # noqa: ANN001
    target = tmp_path / where
    assert main(["evaluate", "--model", str(ngram_bundle.model), "--behaviour", "--out", str(target)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and str(target) in err[0]
    assert "passed" not in captured.out


def test_behaviour_takes_no_input_and_evaluate_needs_one(ngram_bundle, capsys) -> None:  # noqa: ANN001
    assert main(["evaluate", "--model", str(ngram_bundle.model), "--behaviour", str(ngram_bundle.test_file)]) == 2
    assert "no INPUT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--model", str(ngram_bundle.model)])
    assert stop.value.code == 2
    assert "--behaviour" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        (lambda text: text.replace('"c: oh thanks, took me ages"', '"child oh thanks"'), "grooming.contact[0]"),
        (lambda text: text.replace("{c_name}, your", "{kid}, your"), "unknown slots"),
        (lambda text: text.replace("arcs:\n", "arcs:\n  broken: [nowhere]\n"), "unknown stage 'nowhere'"),
        (lambda text: text + "\n  - [unclosed\n", "not valid YAML"),
    ],
)
def test_broken_templates_are_one_line_errors(tmp_path: Path, broken, named: str) -> None:  # noqa: ANN001
    from federation.behaviour.templates import templates_folder
    from federation.errors import ConfigError

    source = templates_folder()
    (tmp_path / "slots.yaml").write_text((source / "slots.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "exchanges.yaml").write_text(broken((source / "exchanges.yaml").read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_templates(tmp_path)
    message = str(error.value)
    assert "\n" not in message and "exchanges.yaml" in message and named in message


def test_without_the_chitchat_corpus_the_real_test_is_skipped_and_said(ngram_bundle, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    from federation.data import chitchat
    from federation.errors import DataError

    def missing(conversations=None):  # noqa: ANN001, ANN202
        raise DataError("the real benign chats are missing: the package chitchat-dataset is not installed")

    monkeypatch.setattr(chitchat, "real_negative_set", missing)
    out = tmp_path / "behaviour.json"
    assert main(["evaluate", "--model", str(ngram_bundle.model), "--behaviour", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert "ordinary_real" not in figures["capabilities"]["minimum_functionality"]["tests"]
    assert figures["skipped"] and figures["skipped"][0].startswith("ordinary_real: ")
    assert "skipped: ordinary_real" in capsys.readouterr().out
