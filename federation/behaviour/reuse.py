"""Does a behavioural template reuse a phrase of the synthetic generator's banks?

A suite that replays the generator's own phrasing measures memory of the generator, not
behaviour. Both sides are compared in a normal form that defeats the cheap ways of
rewording a phrase while keeping it: case, punctuation and apostrophes dropped, chat
spellings read as words (``u`` = ``you``, ``r`` = ``are``, ``im`` = ``i m``, ...),
British and American spellings merged, numbers and every slot value of either side (app
and game names, people's names, places, ages, ``{slot}`` placeholders) turned into one
token ``x``. A template line reuses a bank alternative when, in that form, it equals an
alternative of :data:`MIN_EQUAL_WORDS` words or more, or contains one of
:data:`MIN_CONTAINED_WORDS` words or more as a run of whole words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

__all__ = ["MIN_CONTAINED_WORDS", "MIN_EQUAL_WORDS", "Reuse", "Normaliser", "find_reuse"]

#: A template line may not equal a bank alternative of this many words or more.
MIN_EQUAL_WORDS = 3
#: A template line may not contain a bank alternative of this many words or more.
MIN_CONTAINED_WORDS = 4

_CHAT = {
    "u": "you", "ya": "you", "r": "are", "your": "ur", "youre": "ur", "ure": "ur", "yr": "ur", "im": "i am", "ive": "i have",
    "id": "i would", "youd": "you would", "youll": "you will", "youve": "you have", "ill": "i will", "pls": "please", "plz": "please", "thx": "thanks", "ty": "thanks",
    "gonna": "going to", "wanna": "want to", "cuz": "because", "coz": "because", "bc": "because",
    "dont": "do not", "doesnt": "does not", "didnt": "did not", "cant": "can not", "cannot": "can not",
    "wont": "will not", "isnt": "is not", "arent": "are not", "wasnt": "was not", "whats": "what is",
    "thats": "that is", "its": "it is", "lets": "let us", "theyre": "they are", "were": "we are",
    "pic": "photo", "pics": "photos", "picture": "photo", "pix": "photos",
}
_SLOT = re.compile(r"\{\w+\}")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Reuse:
    """A template line that reuses a bank alternative."""

    where: str
    line: str
    bank: str
    alternative: str

    def __str__(self) -> str:
        return f"{self.where}: {self.line!r} reuses {self.alternative!r} of bank {self.bank}"


class Normaliser:
    """The normal form both sides are compared in.

    Parameters
    ----------
    slot_values
        Every value a slot can take on either side (turned into ``x``).
    spelling
        British spelling to American (merged to the American form).
    """

    def __init__(self, slot_values: Iterable[str], spelling: Mapping[str, str]) -> None:
        self._spelling = {k.lower(): v.lower() for k, v in spelling.items()}
        values = sorted({self._words_of(v) for v in slot_values if v.strip()}, key=len, reverse=True)
        self._values = [tuple(v.split()) for v in values if v]

    def _words_of(self, text: str) -> str:
        text = _SLOT.sub(" x ", text.lower()).replace("'", "").replace("\u2019", "")
        words = []
        for word in _WORD.findall(text):
            word = "x" if word.isdigit() else self._spelling.get(word, word)
            words.extend(_CHAT.get(word, word).split())
        # "ur" is written for both "your" and "you're": read all three as one word.
        return " ".join(words).replace("you are", "ur")

    def __call__(self, text: str) -> tuple[str, ...]:
        words = self._words_of(text).split()
        out: list[str] = []
        i = 0
        while i < len(words):
            for value in self._values:
                if tuple(words[i : i + len(value)]) == value:
                    out.append("x")
                    i += len(value)
                    break
            else:
                out.append(words[i])
                i += 1
        return tuple(out)


def _contains(line: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(line[i : i + n] == phrase for i in range(len(line) - n + 1))


def find_reuse(
    lines: Iterable[tuple[str, str]],
    banks: Iterable[tuple[str, str]],
    normalise: Normaliser,
) -> Iterator[Reuse]:
    """Every ``(where, line)`` of ``lines`` that reuses an alternative of ``banks``.

    Parameters
    ----------
    lines
        ``(where, template text)`` pairs.
    banks
        ``(bank name, alternative)`` pairs.
    normalise
        The normal form (see the module's docstring).
    """
    phrases = [(bank, text, normalise(text)) for bank, text in banks]
    phrases = [(bank, text, words) for bank, text, words in phrases if len(words) >= MIN_EQUAL_WORDS]
    for where, line in lines:
        words = normalise(line)
        for bank, text, phrase in phrases:
            if words == phrase or (len(phrase) >= MIN_CONTAINED_WORDS and _contains(words, phrase)):
                yield Reuse(where=where, line=line, bank=bank, alternative=text)


def generator_phrases() -> tuple[list[tuple[str, str]], list[str]]:
    """The synthetic generator's bank alternatives ``(bank, text)`` and its slot values."""
    from federation.data.synthetic.bank import load_banks
    from federation.data.synthetic.phrases import SLOTS

    alternatives = [
        (name, alternative)
        for name, exchanges in load_banks().items()
        for exchange in exchanges
        for line in exchange
        for alternative in line.alternatives
    ]
    return alternatives, [value for values in SLOTS.values() for value in values]
