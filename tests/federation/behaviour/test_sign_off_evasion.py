"""The sign-off evasion benchmark: what a pleasantry on every groomer line does to a clean model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from federation.data.load import load_conversations
from simulations.attacks import attack_success_rate, with_trigger
from simulations.benchmarks.sign_off_evasion import DEFAULT_PHRASES, main

pytestmark = pytest.mark.usefixtures("private_cache")  # tests/federation/conftest.py: its own embedding cache


def test_prints_for_each_phrase_what_the_attack_measure_gives(ngram_bundle, capsys) -> None:  # noqa: ANN001
    assert main(["--model", str(ngram_bundle.model), "--test", str(ngram_bundle.test_file)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "unflagged by the sign-off" in line]
    assert len(lines) == len(DEFAULT_PHRASES)
    for phrase, line in zip(DEFAULT_PHRASES, lines, strict=True):
        expected = attack_success_rate(ngram_bundle.model, ngram_bundle.test_file, phrase, cache=None)
        caught = int(re.search(r"flagged (\d+) of", line)[1])
        assert line.startswith(repr(phrase)) and caught == expected["flagged_clean"] > 0
        assert line.endswith(f"{expected['success_rate']:.3f}")


def test_the_sign_off_goes_on_every_groomer_line_and_nowhere_else(ngram_bundle) -> None:  # noqa: ANN001
    grooming = next(c for c in load_conversations(ngram_bundle.test_file) if c.label == 1)
    signed = with_trigger(grooming, "enjoy the weekend 🌈")
    for before, after in zip(grooming.messages, signed.messages, strict=True):
        assert after.text == (f"{before.text} enjoy the weekend 🌈" if before.author == grooming.groomer else before.text)


def test_a_missing_bundle_is_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["--model", str(tmp_path / "none"), "--test", str(tmp_path / "t.jsonl")]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("error: ") and "no such model bundle" in out[-1]
