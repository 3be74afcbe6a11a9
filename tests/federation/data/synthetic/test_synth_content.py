"""Phrase banks and surface style: valid annotations, non-explicit content, bounded variants."""

from __future__ import annotations

import random
import re

import pytest

from federation.data.indicators import INDICATOR_CODES
from federation.data.synthetic.bank import load_banks, parse_banks, parse_shared
from federation.data.synthetic.phrases import SLOTS
from federation.data.synthetic.style import PERSONAS, VARIANT_KINDS, persona_weights, surface, variant

# Not exhaustive: a tripwire for anything explicit slipping into the banks or the styling.
DENYLIST = (
    "sex", "sexy", "nude", "nudes", "naked", "porn", "explicit", "undress", "underwear",
    "lingerie", "bra", "breast", "boobs", "kiss", "bed", "bedroom", "shower", "body", "touch",
)
_WORD = re.compile(r"[a-z]+")


def _all_alternatives() -> list[str]:
    banks = load_banks().values()
    texts = [alt for exchanges in banks for exchange in exchanges for line in exchange for alt in line.alternatives]
    return texts + [value for values in SLOTS.values() for value in values]


def test_banks_cover_every_stage_and_every_indicator_code():
    banks = load_banks()
    stages = {name.split(":", 1)[1] for name in banks if name.startswith("grooming:")}
    assert stages == set(INDICATOR_CODES)
    coded = {code for name, exchanges in banks.items() for ex in exchanges for line in ex for code in line.codes}
    assert coded == set(INDICATOR_CODES)
    for name, exchanges in banks.items():
        if not name.startswith("grooming:"):
            assert not any(line.codes for ex in exchanges for line in ex), name
        else:  # every stage exchange opens with the groomer's annotated line
            assert all(ex[0].role == "G" and ex[0].codes for ex in exchanges), name


def test_no_explicit_vocabulary_in_any_bank_or_its_styled_variants():
    for text in _all_alternatives():
        for kind in VARIANT_KINDS:
            words = set(_WORD.findall(variant(text, kind).lower()))
            assert not words & set(DENYLIST), (text, kind)


def test_each_phrase_has_a_bounded_pool_of_surface_variants():
    rng = random.Random(0)
    cum = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    seen = {surface("are you going to the park tomorrow?", cum_weights=cum, rng=rng) for _ in range(500)}
    assert 4 <= len(seen) <= len(VARIANT_KINDS)
    assert variant("you're really good at this", "slang") == "ur rly good at this"
    assert variant("hello there friend", "typo") == variant("hello there friend", "typo")  # pure
    assert all(variant("ok", kind) for kind in VARIANT_KINDS)


def test_formality_shifts_weight_to_the_canonical_form():
    plain, formal = persona_weights("teen"), persona_weights("teen", formality=0.5)
    assert formal[0] > plain[0] and sum(formal) == pytest.approx(sum(plain))
    assert set(PERSONAS) >= {"teen", "adult", "parent", "gamer"}
    with pytest.raises(ValueError, match="unknown persona"):
        persona_weights("robot")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("== grooming:flattery\nG[charm]: hi", "unknown indicator codes"),
        ("== benign:friends\nA[gift]: hi", "only the groomer's lines"),
        ("== grooming:gift\nC[gift]: hi", "only the groomer's lines"),
        ("== benign:friends\nG: hi", "role 'G'"),
        ("== benign:friends\nA: hi | yo\nB~: hey", "aligned line"),
        ("== benign:friends\nA: @nope", "unknown shared set"),
        ("== benign:friends\nA: lol @ok", "whole alternative"),
        ("== benign:friends\nA: at {nowhere}", "unknown slot"),
        ("A: hi", "inside a '== bank'"),
    ],
)
def test_bank_typos_are_caught_at_parse_time(text, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        parse_banks(text, shared=parse_shared("@ok = ok | sure"))
