"""Label-preserving edits of a conversation, for the invariance tests.

Each takes a :class:`Script` (a rendered conversation that remembers which exchange each
message came from) and a seeded random generator, and returns the edited conversation,
or ``None`` when the edit does not apply (nothing to rename, no British spelling, ...).
None of them adds or removes a risk indicator.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from federation.data.types import Conversation, Message
from federation.behaviour.templates import Templates

__all__ = ["PERTURBATIONS", "Script", "Perturbation"]


@dataclass(frozen=True)
class Script:
    """A built conversation with where its messages came from.

    Attributes
    ----------
    conversation
        The rendered conversation.
    kinds
        Per message, the kind of exchange it came from (a stage name, ``filler``, ...).
    blocks
        Per message, the index of its exchange in the conversation.
    slots
        The slot values it was filled with.
    """

    conversation: Conversation
    kinds: tuple[str, ...]
    blocks: tuple[int, ...]
    slots: Mapping[str, str]


Perturbation = Callable[[Script, random.Random, Templates], Conversation | None]


def _words(value: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(value)}\b")


def _with_texts(conversation: Conversation, texts: list[str], authors: list[str] | None = None) -> Conversation | None:
    authors = authors if authors is not None else [m.author for m in conversation.messages]
    messages = tuple(
        replace(m, text=t, author=a) for m, t, a in zip(conversation.messages, texts, authors, strict=True)
    )
    if messages == conversation.messages:
        return None
    return replace(conversation, messages=messages)


def _other(values: tuple[str, ...], current: str, rng: random.Random) -> str:
    return rng.choice([v for v in values if v != current])


def _replacements(script: Script, rng: random.Random, templates: Templates, slots: tuple[str, ...]) -> dict[str, str]:
    """Each of ``slots``' values in ``script``, mapped to another value of the same slot."""
    return {script.slots[slot]: _other(templates.slots[slot], script.slots[slot], rng) for slot in slots}


def _replaced_texts(conversation: Conversation, mapping: Mapping[str, str]) -> list[str]:
    """The conversation's texts with every whole word of ``mapping``'s keys replaced by its value."""
    texts = []
    for message in conversation.messages:
        text = message.text
        for old, new in mapping.items():
            text = _words(old).sub(new, text)
        texts.append(text)
    return texts


def rename_authors(script: Script, rng: random.Random, templates: Templates) -> Conversation | None:
    """Other names for every speaker: their author ids and where the texts name them."""
    mapping = _replacements(script, rng, templates, ("a_name", "c_name", "p_name"))
    lowered = {old.lower(): new.lower() for old, new in mapping.items()}
    authors = [lowered.get(m.author, m.author) for m in script.conversation.messages]
    return _with_texts(script.conversation, _replaced_texts(script.conversation, mapping), authors)


def swap_apps(script: Script, rng: random.Random, templates: Templates) -> Conversation | None:
    """Another platform where the chat began and another app it moves to."""
    mapping = _replacements(script, rng, templates, ("platform", "app"))
    return _with_texts(script.conversation, _replaced_texts(script.conversation, mapping))


def _typo(word: str, rng: random.Random) -> str:
    # Swap two neighbouring letters inside the word (never the first one).
    positions = [i for i in range(1, len(word) - 1) if word[i] != word[i + 1]]
    i = rng.choice(positions)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def add_typos(script: Script, rng: random.Random, templates: Templates, *, messages: int = 3) -> Conversation | None:
    """Two neighbouring letters swapped in one word of each of a few messages."""
    texts = [m.text for m in script.conversation.messages]
    eligible = [i for i, t in enumerate(texts) if any(len(w) >= 4 and w.isalpha() for w in t.split())]
    for index in sorted(rng.sample(eligible, min(messages, len(eligible)))):
        words = texts[index].split(" ")
        candidates = [j for j, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        j = rng.choice(candidates)
        words[j] = _typo(words[j], rng)
        texts[index] = " ".join(words)
    return _with_texts(script.conversation, texts)


def add_emoji(script: Script, rng: random.Random, templates: Templates, *, messages: int = 3) -> Conversation | None:
    """An emoji at the end of a few messages."""
    texts = [m.text for m in script.conversation.messages]
    for index in sorted(rng.sample(range(len(texts)), min(messages, len(texts)))):
        texts[index] = f"{texts[index]} {rng.choice(templates.emoji)}"
    return _with_texts(script.conversation, texts)


def sign_off_every_line(script: Script, rng: random.Random, templates: Templates) -> Conversation | None:
    """One friendly sign-off appended to every message of speaker ``a``, as a habit.

    ``a`` is the adult of grooming arcs and ambiguous conversations. A groomer who signs
    each line with a pleasantry must still be caught, and an ordinary chat must not be
    flagged for it: each cue line is diluted, none is added or removed.
    """
    speaker = script.slots["a_name"].lower()
    sign_off = rng.choice(templates.sign_offs)
    texts = [f"{m.text} {sign_off}" if m.author == speaker else m.text for m in script.conversation.messages]
    return _with_texts(script.conversation, texts)


def american_spelling(script: Script, rng: random.Random, templates: Templates) -> Conversation | None:
    """British spellings (colour, mum, realise, ...) written the American way."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, templates.spelling)) + r")\b", re.IGNORECASE)

    def american(match: re.Match[str]) -> str:
        word = match[0]
        new = templates.spelling[word.lower()]
        return new.capitalize() if word[0].isupper() else new

    return _with_texts(script.conversation, [pattern.sub(american, m.text) for m in script.conversation.messages])


def swap_unrelated(script: Script, rng: random.Random, templates: Templates) -> Conversation | None:
    """Two neighbouring messages of two different everyday exchanges, in the other order."""
    pairs = [
        i
        for i in range(len(script.kinds) - 1)
        if script.kinds[i] == script.kinds[i + 1] == "filler" and script.blocks[i] != script.blocks[i + 1]
    ]
    if not pairs:
        return None
    i = rng.choice(pairs)
    messages: list[Message] = list(script.conversation.messages)
    messages[i], messages[i + 1] = messages[i + 1], messages[i]
    return replace(script.conversation, messages=tuple(messages))


#: Invariance test name -> the edit it applies.
PERTURBATIONS: dict[str, Perturbation] = {
    "rename_authors": rename_authors,
    "platform_and_app_names": swap_apps,
    "typos": add_typos,
    "emoji": add_emoji,
    "sign_off_every_line": sign_off_every_line,
    "american_spelling": american_spelling,
    "swap_unrelated_messages": swap_unrelated,
}
