"""Parse the paraphrase banks of :mod:`.phrases` into exchanges the dialogue engine plays.

An exchange is a short scripted back-and-forth (a question, a reply, maybe a follow-up);
each of its lines offers several alternative phrasings. The parser checks what a typo in
the banks could break: unknown indicator codes, codes on lines that may not carry them,
unknown roles, shared sets used before they are defined, and slots with no values.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from federation.data.indicators import INDICATOR_CODES
from federation.data.synthetic.phrases import ALL_BANKS, SHARED, SLOTS

__all__ = ["HALVES", "Banks", "Exchange", "Half", "Line", "load_banks", "split_banks"]

_LINE = re.compile(r"^(?P<role>[A-Z])(?P<flags>[?~]*)(?:\[(?P<codes>[a-z_,]+)\])?:\s*(?P<alts>\S.*)$")
_SHARED = re.compile(r"^@(?P<name>\w+)\s*=\s*(?P<alts>\S.*)$")
_SLOT = re.compile(r"\{(\w+)\}")

#: Roles each family of banks may use; only the first role of ``grooming`` carries codes.
_ROLES = {
    "grooming": ("G", "C"),
    "benign": ("A", "B"),
    "context": ("A", "B"),
    "smalltalk": ("A", "B"),
    "support": ("A", "B"),
    "open": ("A", "B"),
    "close": ("A", "B"),
}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an exchange: who says it, which indicators it carries, how it can be phrased.

    ``optional`` lines are kept half of the time; an ``aligned`` line takes the
    alternative at the same position as the line before it (a reply that fits the
    question actually asked).
    """

    role: str
    alternatives: tuple[str, ...]
    codes: tuple[str, ...] = ()
    optional: bool = False
    aligned: bool = False


Exchange = tuple[Line, ...]
Banks = dict[str, tuple[Exchange, ...]]
#: The two disjoint halves of every line's alternatives: the nodes' (and the test file's)
#: synthetic data is written from ``private``, the server's public pretraining set from
#: ``public`` (see :func:`split_banks`).
Half = Literal["private", "public"]
HALVES: tuple[Half, ...] = ("private", "public")


def _split(alts: str, *, shared: dict[str, tuple[str, ...]], where: str) -> tuple[str, ...]:
    out: list[str] = []
    for alt in (part.strip() for part in alts.split("|")):
        if not alt:
            raise ValueError(f"{where}: empty alternative")
        if alt.startswith("@"):
            if alt[1:] not in shared:
                raise ValueError(f"{where}: unknown shared set {alt!r}")
            out.extend(shared[alt[1:]])
        else:
            if "@" in alt:
                raise ValueError(f"{where}: a shared set must be a whole alternative, not part of {alt!r}")
            for slot in _SLOT.findall(alt):
                if slot not in SLOTS:
                    raise ValueError(f"{where}: unknown slot {{{slot}}}")
            out.append(alt)
    return tuple(dict.fromkeys(out))


def parse_shared(text: str) -> dict[str, tuple[str, ...]]:
    """Shared alternative sets (``@name = alt | alt``); a set may use sets defined above it."""
    shared: dict[str, tuple[str, ...]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SHARED.match(line)
        if match is None:
            raise ValueError(f"shared sets, line {number}: expected '@name = alt | alt'")
        shared[match["name"]] = _split(match["alts"], shared=shared, where=f"shared set @{match['name']}")
    return shared


def parse_banks(text: str, *, shared: dict[str, tuple[str, ...]]) -> dict[str, tuple[Exchange, ...]]:
    """Parse ``== name`` sections of exchanges separated by blank lines."""
    banks: dict[str, list[Exchange]] = {}
    name: str | None = None
    current: list[Line] = []

    def flush() -> None:
        if current:
            banks[name].append(tuple(current))  # type: ignore[index]
            current.clear()

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if not line:
            flush()
            continue
        if line.startswith("=="):
            flush()
            name = line[2:].strip()
            family = name.split(":")[0]
            if family not in _ROLES or name in banks:
                raise ValueError(f"bank line {number}: bad or repeated bank name {name!r}")
            banks[name] = []
            continue
        where = f"bank {name}, line {number}"
        match = _LINE.match(line)
        if name is None or match is None:
            raise ValueError(f"{where}: expected 'ROLE[codes]: alt | alt' inside a '== bank'")
        roles = _ROLES[name.split(":")[0]]
        if match["role"] not in roles:
            raise ValueError(f"{where}: role {match['role']!r} is not one of {roles}")
        codes = tuple(match["codes"].split(",")) if match["codes"] else ()
        if codes and (not name.startswith("grooming:") or match["role"] != roles[0]):
            raise ValueError(f"{where}: only the groomer's lines in grooming banks carry indicator codes")
        unknown = [code for code in codes if code not in INDICATOR_CODES]
        if unknown:
            raise ValueError(f"{where}: unknown indicator codes {unknown}")
        alternatives = _split(match["alts"], shared=shared, where=where)
        aligned = "~" in match["flags"]
        if aligned and (not current or len(current[-1].alternatives) != len(alternatives)):
            raise ValueError(f"{where}: an aligned line ('~') needs as many distinct alternatives as the line before")
        current.append(
            Line(
                role=match["role"],
                alternatives=alternatives,
                codes=codes,
                optional="?" in match["flags"],
                aligned=aligned,
            )
        )
    flush()
    empty = [bank for bank, exchanges in banks.items() if not exchanges]
    if empty:
        raise ValueError(f"banks with no exchanges: {empty}")
    return {bank: tuple(exchanges) for bank, exchanges in banks.items()}


@lru_cache(maxsize=1)
def load_banks() -> dict[str, tuple[Exchange, ...]]:
    """Every bank of :mod:`.phrases`, parsed once per process.

    Returns
    -------
    dict
        Bank name (``grooming:flattery``, ``benign:marketplace``, ``smalltalk``,
        ``open``, ``close``) to its exchanges. Treat it as read-only: it is cached.
    """
    shared = parse_shared(SHARED)
    banks: dict[str, tuple[Exchange, ...]] = {}
    for text in ALL_BANKS:
        for name, exchanges in parse_banks(text, shared=shared).items():
            if name in banks:
                raise ValueError(f"bank {name!r} is defined twice")
            banks[name] = exchanges
    return banks


def _hashed_half(text: str) -> Half:
    return HALVES[hashlib.sha256(text.encode("utf-8")).digest()[0] & 1]


class _Sides:
    """Texts that must be on the same half (a question and its aligned reply), and their half."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._half: dict[str, Half] = {}

    def _root(self, text: str) -> str:
        while self._parent.get(text, text) != text:
            text = self._parent[text]
        return text

    def tie(self, first: str, second: str) -> None:
        a, b = self._root(first), self._root(second)
        if a != b:
            self._parent[b] = a

    def get(self, text: str) -> Half | None:
        return self._half.get(self._root(text))

    def balance(self, texts: Sequence[str]) -> None:
        """Give each text of ``texts`` not yet placed the half that has fewer of them so far."""
        for text in texts:
            if self.get(text) is None:
                counts = {half: sum(self.get(t) == half for t in texts) for half in HALVES}
                even = counts["private"] == counts["public"]
                self._half[self._root(text)] = _hashed_half(text) if even else min(HALVES, key=counts.__getitem__)


def _side_of_texts(banks: Banks, shared: Mapping[str, Sequence[str]]) -> _Sides:
    """One half per distinct alternative text, such that every line keeps some of each.

    A text is on one half wherever it occurs, so the halves are disjoint as texts, not
    only as positions. An aligned reply (``~``) is tied to the alternative it answers;
    each shared set is split evenly first, then each line's own texts even it out.
    """
    sides = _Sides()
    lines: list[Line] = []
    for exchanges in banks.values():
        for exchange in exchanges:
            for before, line in zip((None, *exchange), exchange):
                if line.aligned and before is not None:
                    for question, reply in zip(before.alternatives, line.alternatives, strict=True):
                        sides.tie(question, reply)
                else:
                    lines.append(line)
    for texts in shared.values():
        sides.balance(texts)
    for line in lines:
        sides.balance(line.alternatives)
    unsplit = sorted({" | ".join(line.alternatives) for line in lines if len({sides.get(t) for t in line.alternatives}) < 2})
    if unsplit:
        raise ValueError(
            f"{len(unsplit)} bank lines cannot be split into a public and a private half (give each another "
            f"alternative of its own): {'; '.join(repr(line) for line in unsplit)}"
        )
    return sides


def split_banks(banks: Banks, half: Half, *, shared: Mapping[str, Sequence[str]]) -> Banks:
    """The ``half`` of every line's alternatives (see :data:`Half`); the other half is disjoint.

    Raises
    ------
    ValueError
        When a line cannot be split (one alternative, or only alternatives tied to the
        same half elsewhere): the message names each such line.
    """
    side = _side_of_texts(banks, shared)
    out: Banks = {}
    for name, exchanges in banks.items():
        split: list[Exchange] = []
        for exchange in exchanges:
            lines: list[Line] = []
            keep: list[int] = []
            for line in exchange:
                if not line.aligned:
                    keep = [i for i, text in enumerate(line.alternatives) if side.get(text) == half]
                kept = tuple(line.alternatives[i] for i in keep)
                lines.append(replace(line, alternatives=kept))
            split.append(tuple(lines))
        out[name] = tuple(split)
    return out


@lru_cache(maxsize=2)
def bank_half(half: Half) -> Banks:
    """:func:`load_banks`'s ``half``, computed once per process. Treat it as read-only."""
    return split_banks(load_banks(), half, shared=parse_shared(SHARED))
