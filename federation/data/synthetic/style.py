"""Surface style: slang, typos, emoji and stretched words, per persona and node kind.

Each phrase has a small, fixed pool of surface variants (canonical, casual, slang, two
typos, emoji, slang with emoji, stretched), each a pure function of the phrase text. A persona
only changes how often each variant is picked. So the language looks varied, yet the
number of distinct message texts stays bounded (at most ``len(VARIANT_KINDS)`` per
phrase), which matters because the downstream encoder caches embeddings by exact text.
Randomness inside a variant (which word gets the typo, which emoji) comes from a CRC of
the phrase, never from ``hash()``, so it does not depend on ``PYTHONHASHSEED``.
"""

from __future__ import annotations

import bisect
import random
import re
import zlib
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["PERSONAS", "VARIANT_KINDS", "persona_weights", "surface", "variant"]

VARIANT_KINDS: tuple[str, ...] = ("canonical", "casual", "slang", "typo", "typo2", "emoji", "slang_emoji", "stretch")

#: How often each persona writes each variant kind (same order as ``VARIANT_KINDS``).
PERSONAS: dict[str, tuple[float, ...]] = {
    "teen": (0.06, 0.30, 0.28, 0.05, 0.05, 0.10, 0.11, 0.05),
    "gamer": (0.05, 0.36, 0.32, 0.06, 0.06, 0.05, 0.06, 0.04),
    "adult": (0.42, 0.33, 0.03, 0.05, 0.05, 0.10, 0.00, 0.02),
    "parent": (0.45, 0.28, 0.00, 0.05, 0.05, 0.17, 0.00, 0.00),
}

_SLANG: tuple[tuple[str, str], ...] = (
    ("i don't know", "idk"),
    ("oh my god", "omg"),
    ("to be honest", "tbh"),
    ("going to", "gonna"),
    ("want to", "wanna"),
    ("got to", "gotta"),
    ("see you", "cya"),
    ("you're", "ur"),
    ("your", "ur"),
    ("you", "u"),
    ("are", "r"),
    ("really", "rly"),
    ("okay", "ok"),
    ("because", "cuz"),
    ("please", "pls"),
    ("tonight", "tonite"),
    ("tomorrow", "tmrw"),
    ("thanks", "thx"),
    ("people", "ppl"),
    ("probably", "prob"),
    ("before", "b4"),
    ("something", "smth"),
    ("message", "msg"),
    ("picture", "pic"),
    ("right now", "rn"),
    ("be right back", "brb"),
    ("what", "wat"),
)
_SLANG_RE = [(re.compile(rf"\b{re.escape(word)}\b"), short) for word, short in _SLANG]
_CASUAL_RE = [(re.compile(r"\bi'm\b"), "im"), (re.compile(r"\bdon't\b"), "dont"), (re.compile(r"\bit's\b"), "its")]
_EMOJI_ASK = ("🤔", "👀", "🙂", "😅")
_EMOJI_ANY = ("😂", "😊", "😅", "🙂", "😄", "👍", "🙈", "😭", "✨", "💯")
_VOWELS = "aeiouy"


def _seeded(text: str, salt: str) -> random.Random:
    return random.Random(zlib.crc32(f"{salt}\x00{text}".encode("utf-8")))


def _casual(text: str) -> str:
    out = text.lower().rstrip(".")
    for pattern, short in _CASUAL_RE:
        out = pattern.sub(short, out)
    return out


def _slang(text: str) -> str:
    out = text.lower()
    for pattern, short in _SLANG_RE:
        out = pattern.sub(short, out)
    return _casual(out).rstrip("!").rstrip(",")


def _typo(text: str, salt: str) -> str:
    words = text.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    if not candidates:
        return text
    rng = _seeded(text, salt)
    i = rng.choice(candidates)
    word = words[i]
    j = rng.randrange(1, len(word) - 1)
    operation = rng.randrange(3)
    if operation == 0:
        word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    elif operation == 1:
        word = word[:j] + word[j + 1 :]
    else:
        word = word[:j] + word[j] + word[j:]
    words[i] = word
    return " ".join(words)


def _emoji(text: str, salt: str) -> str:
    pool = _EMOJI_ASK if text.endswith("?") else _EMOJI_ANY
    return f"{text} {_seeded(text, salt).choice(pool)}"


def _stretch(text: str) -> str:
    words = text.split(" ")
    for i, word in enumerate(words):
        if word.isalpha() and word[-1] in _VOWELS:
            words[i] = word + word[-1] * 2
            return " ".join(words)
    return text.rstrip("!?.") + ("??" if text.endswith("?") else "!!")


@lru_cache(maxsize=65536)
def variant(text: str, kind: str) -> str:
    """The ``kind`` surface variant of a phrase; a pure, cached function of its arguments.

    Parameters
    ----------
    text
        The canonical phrase, slots already filled.
    kind
        One of :data:`VARIANT_KINDS`.

    Returns
    -------
    str
        The phrase as that style would type it (never empty).
    """
    if kind == "canonical":
        return text
    if kind == "casual":
        return _casual(text)
    if kind == "slang":
        return _slang(text)
    if kind in ("typo", "typo2"):
        return _typo(_casual(text), kind)
    if kind == "emoji":
        return _emoji(_casual(text), "emoji")
    if kind == "slang_emoji":
        return _emoji(_slang(text), "slang_emoji")
    if kind == "stretch":
        return _stretch(_casual(text))
    raise ValueError(f"unknown variant kind {kind!r}; use one of {VARIANT_KINDS}")


def persona_weights(persona: str, *, formality: float = 0.0) -> tuple[float, ...]:
    """Variant weights of ``persona``, shifted towards the canonical form by ``formality``.

    ``formality`` models transcription: police case files are often re-typed or exported
    in a cleaner form than a teenager's phone screen.
    """
    if persona not in PERSONAS:
        raise ValueError(f"unknown persona {persona!r}; use one of {sorted(PERSONAS)}")
    weights = [w * (1.0 - formality) for w in PERSONAS[persona]]
    weights[0] += formality
    return tuple(weights)


def surface(text: str, *, cum_weights: Sequence[float], rng: random.Random) -> str:
    """Pick one surface variant of ``text``; ``cum_weights`` are cumulative variant weights.

    Cumulative weights (``itertools.accumulate(persona_weights(...))``) are computed once
    per speaker rather than once per message: this runs for every message generated.
    """
    kind = VARIANT_KINDS[bisect.bisect(cum_weights, rng.random() * cum_weights[-1])]
    return variant(text, kind)
