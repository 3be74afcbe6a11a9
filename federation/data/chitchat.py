"""Real benign chats: the chitchat-dataset corpus (PyPI ``chitchat-dataset``, MIT licence).

University students chatting with strangers, 7,168 conversations. Its ``dataset.json``
maps a conversation key (a UUID string) to ``{"messages": [[turn], ...]}``, each turn a
list of ``{"text", "timestamp", "sender"}`` messages of one sender. Read here as our
:class:`Conversation` with label 0: every message in order, empty ones dropped, each sender
a pseudonym ``u`` + 8 hex digits of its SHA-256, times as ``HH:MM``.

The corpus is split by key once, for every use in the project:

* **reserved**: keys whose SHA-256 hex digest (of the key's UTF-8 text, before any prefix
  of ours) starts with ``0``-``3``, about a quarter. They measure false alarms on real
  language and nothing else: no training, pretraining, calibration or threshold choice
  may read them. :func:`real_negative_set` is the evaluation set drawn from them.
* **background**: every other usable conversation, the source of real language for the
  synthetic federations (:mod:`federation.data.synthetic`): digests starting with ``4``
  or ``5`` for the held-out synthetic test file, ``6`` or ``7`` for the server's public
  pretraining set, the rest (``8``-``f``) for the nodes. The test file's real language was
  never trained on, and the public set's is not the nodes'.

A conversation is *usable* with at least two authors and six non-empty messages.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from federation.data.types import Conversation, Message
from federation.errors import DataError

__all__ = [
    "ID_PREFIX",
    "MIN_MESSAGES",
    "background_pool",
    "chitchat_key",
    "dataset_path",
    "is_reserved",
    "load_chitchat",
    "part_of",
    "read_chitchat",
    "real_negative_set",
]

logger = logging.getLogger(__name__)

PACKAGE = "chitchat_dataset"
ID_PREFIX = "chitchat-"
MIN_MESSAGES = 6
Part = Literal["reserved", "test", "public", "nodes"]
_PART_OF_DIGIT: dict[str, Part] = (
    {digit: "reserved" for digit in "0123"} | {"4": "test", "5": "test"} | {"6": "public", "7": "public"}
)


def part_of(key: str) -> Part:
    """Which part of the corpus the conversation ``key`` (as in ``dataset.json``) belongs to."""
    return _PART_OF_DIGIT.get(hashlib.sha256(key.encode("utf-8")).hexdigest()[0], "nodes")


def is_reserved(key: str) -> bool:
    """Whether the conversation ``key`` belongs to the reserved quarter (evaluation only)."""
    return part_of(key) == "reserved"


def chitchat_key(conversation: Conversation) -> str:
    """The ``dataset.json`` key of a conversation read by :func:`read_chitchat`."""
    if not conversation.id.startswith(ID_PREFIX):
        raise ValueError(f"conversation {conversation.id!r} does not come from chitchat-dataset")
    return conversation.id[len(ID_PREFIX) :]


def dataset_path() -> Path:
    """Where the installed ``chitchat-dataset`` package keeps ``dataset.json``.

    Raises
    ------
    DataError
        When the package is not installed (it is a dependency of the project).
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the real benign chats are missing: the package chitchat-dataset is not installed; "
            "run `pip install chitchat-dataset==0.9.0` (bash scripts/setup.sh does)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "dataset.json"


def _pseudonym(sender: str) -> str:
    return "u" + hashlib.sha256(sender.encode("utf-8")).hexdigest()[:8]


def _clock(timestamp: Any) -> str | None:
    # "2018-05-02T19:38:15Z" -> "19:38"; anything else is left without a time.
    if isinstance(timestamp, str) and len(timestamp) >= 16 and timestamp[10] == "T":
        hours, minutes = timestamp[11:13], timestamp[14:16]
        if hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60:
            return f"{hours}:{minutes}"
    return None


def _messages(path: Path, key: str, record: Any) -> tuple[Message, ...]:
    where = f"{path}: conversation {key!r}"
    turns = record.get("messages") if isinstance(record, Mapping) else None
    if not isinstance(turns, list):
        raise DataError(f"{where}: expected an object with a list \"messages\"")
    messages = []
    for t, turn in enumerate(turns):
        if not isinstance(turn, list):
            raise DataError(f"{where}: messages[{t}] is not a list of messages")
        for m, raw in enumerate(turn):
            text, sender = (raw.get("text"), raw.get("sender")) if isinstance(raw, Mapping) else (None, None)
            if not isinstance(text, str) or not isinstance(sender, str):
                raise DataError(f"{where}: messages[{t}][{m}] needs string \"text\" and \"sender\"")
            if text.strip():
                messages.append(Message(author=_pseudonym(sender), text=text, time=_clock(raw.get("timestamp"))))
    return tuple(messages)


def read_chitchat(path: Path, *, part: Part | None = None) -> list[Conversation]:
    """Every conversation of a chitchat ``dataset.json`` (of one ``part`` only, if given), in file order.

    Ids are ``chitchat-<key>``. Reading one part converts only its conversations (a
    quarter of the corpus for the reserved set: a second of CPU saved in every run).

    Raises
    ------
    DataError
        When the file is missing, not JSON, or a record has another shape (naming the key).
    """
    try:
        data = json.loads(Path(path).read_bytes())
    except OSError as error:
        raise DataError(f"{path}: cannot read the chitchat corpus ({error.strerror or error})") from None
    except ValueError as error:
        raise DataError(f"{path}: the chitchat corpus is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object of conversations keyed by id")
    return [
        Conversation(id=f"{ID_PREFIX}{key}", label=0, messages=_messages(path, key, record), extra={})
        for key, record in data.items()
        if part is None or part_of(key) == part
    ]


@lru_cache(maxsize=4)
def load_chitchat(part: Part | None = None) -> tuple[Conversation, ...]:
    """The installed corpus (or one part of it), read once per process."""
    return tuple(read_chitchat(dataset_path(), part=part))


def _usable(conversation: Conversation) -> bool:
    return len(conversation.messages) >= MIN_MESSAGES and len(conversation.authors) >= 2


def _part(conversations: Iterable[Conversation] | None, part: Part) -> list[Conversation]:
    if conversations is None:
        return [c for c in load_chitchat(part) if _usable(c)]  # already this part only
    return [c for c in conversations if part_of(chitchat_key(c)) == part and _usable(c)]


def real_negative_set(conversations: Iterable[Conversation] | None = None) -> list[Conversation]:
    """The reserved conversations with two or more authors and six or more messages (835).

    For measuring false alarms only: never train, pretrain, calibrate or pick a threshold on them.
    """
    return _part(conversations, "reserved")


def background_pool(
    part: Literal["nodes", "test", "public"], conversations: Iterable[Conversation] | None = None
) -> list[Conversation]:
    """Usable conversations outside the reserved quarter: ``nodes``, ``test`` or ``public`` (counts in the README)."""
    return _part(conversations, part)
