"""Parse the paraphrase banks of :mod:`.phrases` into exchanges the dialogue engine plays.

An exchange is a short scripted back-and-forth (a question, a reply, maybe a follow-up);
each of its lines offers several alternative phrasings. The parser checks what a typo in
the banks could break: unknown indicator codes, codes on lines that may not carry them,
unknown roles, shared sets used before they are defined, and slots with no values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from federation.data.indicators import INDICATOR_CODES
from federation.data.synthetic.phrases import ALL_BANKS, SHARED, SLOTS

__all__ = ["Exchange", "Line", "load_banks"]

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
