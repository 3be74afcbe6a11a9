"""The suite's templates: exchanges and slot values kept as package data (``cases/*.yaml``).

They are read and checked once per process. A template is a short exchange of
``role: text`` messages; roles are ``a`` (the first speaker: the adult of a grooming arc
or an ambiguous conversation), ``c`` (the second: the child of a grooming arc) and ``p``
(a parent who joins). ``{slot}`` names a value of ``slots.yaml``, filled once per case.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from federation.errors import ConfigError

__all__ = ["ROLES", "Exchange", "Templates", "fill", "load_templates", "templates_folder"]

ROLES = ("a", "c", "p")
#: Slot values chosen per case; ``year`` is derived from ``age``.
CHOSEN_SLOTS = ("a_name", "c_name", "p_name", "age", "adult_age", "platform", "app")
DERIVED_SLOTS = ("year",)
_SLOT = re.compile(r"\{(\w+)\}")
_LINE = re.compile(r"^(?P<role>[a-z]): (?P<text>\S.*)$")


@dataclass(frozen=True)
class Exchange:
    """A short back-and-forth: ``(role, template text)`` per message."""

    lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Templates:
    """Everything the suite is built from.

    Attributes
    ----------
    grooming
        Stage name (``contact``, ``age``, ``secrecy``, ``runaway``, ...) to its exchanges.
    arcs
        Tempo (``fast``, ``medium``, ``slow``) to its stage names in order.
    filler
        Everyday exchanges with no risk indicator.
    ordinary, ambiguous, additions
        Section name to exchanges, for ordinary conversations, ambiguous adult
        conversations and what the directional tests add to them.
    slots
        Slot name to its values.
    spelling
        British spelling to American.
    emoji
        What the emoji perturbation appends.
    sign_offs
        What the sign-off perturbation appends to every message of speaker ``a``.
    """

    grooming: Mapping[str, tuple[Exchange, ...]]
    arcs: Mapping[str, tuple[str, ...]]
    filler: tuple[Exchange, ...]
    ordinary: Mapping[str, tuple[Exchange, ...]]
    ambiguous: Mapping[str, tuple[Exchange, ...]]
    additions: Mapping[str, tuple[Exchange, ...]]
    slots: Mapping[str, tuple[str, ...]]
    spelling: Mapping[str, str]
    emoji: tuple[str, ...]
    sign_offs: tuple[str, ...]

    def lines(self) -> Iterator[tuple[str, str]]:
        """``(where, template text)`` of every message template, for the phrase-reuse check."""
        sections: dict[str, Mapping[str, tuple[Exchange, ...]]] = {
            "grooming": self.grooming,
            "filler": {"": self.filler},
            "ordinary": self.ordinary,
            "ambiguous": self.ambiguous,
            "additions": self.additions,
        }
        for section, groups in sections.items():
            for group, exchanges in groups.items():
                for index, exchange in enumerate(exchanges):
                    for role, text in exchange.lines:
                        yield f"{section}.{group}[{index}] {role}".replace(".[", "["), text
        for index, text in enumerate(self.sign_offs):
            yield f"sign_offs[{index}]", text


def templates_folder() -> Path:
    """Where the installed package keeps ``slots.yaml`` and ``exchanges.yaml``."""
    return Path(str(resources.files("federation.behaviour") / "cases"))


def fill(text: str, slots: Mapping[str, str]) -> str:
    """``text`` with every ``{slot}`` replaced by its value."""
    return _SLOT.sub(lambda match: slots[match[1]], text)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the behavioural templates ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML; fix the file or reinstall the package") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    return data


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of texts")
    return tuple(value)


def _exchanges(value: Any, where: str, known_slots: set[str]) -> tuple[Exchange, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of exchanges")
    out = []
    for index, raw in enumerate(value):
        lines = []
        for text in _strings(raw, f"{where}[{index}]"):
            match = _LINE.match(text)
            if match is None or match["role"] not in ROLES:
                raise ConfigError(f"{where}[{index}]: {text[:40]!r} is not 'ROLE: text' with a role of {', '.join(ROLES)}")
            unknown = set(_SLOT.findall(match["text"])) - known_slots
            if unknown:
                raise ConfigError(f"{where}[{index}]: unknown slots {sorted(unknown)}")
            lines.append((match["role"], match["text"]))
        out.append(Exchange(lines=tuple(lines)))
    return tuple(out)


def _groups(data: dict[str, Any], name: str, path: Path, known_slots: set[str]) -> dict[str, tuple[Exchange, ...]]:
    section = data.get(name)
    if not isinstance(section, dict) or not section:
        raise ConfigError(f"{path}: section {name!r} is missing or not a mapping")
    return {str(group): _exchanges(value, f"{path}: {name}.{group}", known_slots) for group, value in section.items()}


def _require(groups: Mapping[str, Any], names: tuple[str, ...], where: str) -> None:
    missing = [name for name in names if name not in groups]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")


@lru_cache(maxsize=4)
def load_templates(folder: Path | None = None) -> Templates:
    """Read and check the templates (default: the installed package data).

    Raises
    ------
    ConfigError
        When a file is missing or malformed: one line naming the file and the section.
    """
    folder = templates_folder() if folder is None else Path(folder)
    slots_path, exchanges_path = folder / "slots.yaml", folder / "exchanges.yaml"
    raw_slots = _read(slots_path)
    slots = {name: _strings(raw_slots.get(name), f"{slots_path}: {name}") for name in (*CHOSEN_SLOTS, "emoji", "sign_offs")}
    spelling = raw_slots.get("spelling")
    if not isinstance(spelling, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in spelling.items()):
        raise ConfigError(f"{slots_path}: spelling must map British spellings to American ones")
    known = set(CHOSEN_SLOTS) | set(DERIVED_SLOTS)
    data = _read(exchanges_path)
    grooming = _groups(data, "grooming", exchanges_path, known)
    raw_arcs = data.get("arcs")
    if not isinstance(raw_arcs, dict):
        raise ConfigError(f"{exchanges_path}: section 'arcs' is missing or not a mapping")
    arcs = {str(tempo): _strings(stages, f"{exchanges_path}: arcs.{tempo}") for tempo, stages in raw_arcs.items()}
    _require(arcs, ("fast", "medium", "slow"), f"{exchanges_path}: arcs")
    for tempo, stages in arcs.items():
        for stage in (part for entry in stages for part in entry.split("|")):
            if stage != "filler" and stage not in grooming:
                raise ConfigError(f"{exchanges_path}: arcs.{tempo} names unknown stage {stage!r}")
    templates = Templates(
        grooming=grooming,
        arcs=arcs,
        filler=_exchanges(data.get("filler"), f"{exchanges_path}: filler", known),
        ordinary=_groups(data, "ordinary", exchanges_path, known),
        ambiguous=_groups(data, "ambiguous", exchanges_path, known),
        additions=_groups(data, "additions", exchanges_path, known),
        slots={name: values for name, values in slots.items() if name in CHOSEN_SLOTS},
        spelling=dict(spelling),
        emoji=slots["emoji"],
        sign_offs=slots["sign_offs"],
    )
    _require(templates.grooming, ("secrecy", "app_move", "runaway"), f"{exchanges_path}: grooming")
    _require(templates.ordinary, ("opening", "topic", "closing"), f"{exchanges_path}: ordinary")
    _require(templates.ambiguous, ("contact", "adult_life", "status", "home", "closing"), f"{exchanges_path}: ambiguous")
    _require(templates.additions, ("child_age", "peer_age", "parent"), f"{exchanges_path}: additions")
    return templates
