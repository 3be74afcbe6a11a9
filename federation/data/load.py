"""One entry point for conversation files: detect the format, read it, and (strictly) load it.

The format is told by content, not by the file name: a file whose first non-blank byte is
``<`` is PAN-2012 XML, anything else is the canonical JSON Lines. Training code calls
:func:`load_conversations`, which refuses a file with any bad record: a node must not
silently train on part of its data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from federation.data.issues import ReadResult, open_data_file, read_failed
from federation.data.jsonl import read_jsonl
from federation.data.pan12 import read_pan12
from federation.data.types import Conversation
from federation.errors import DataError

logger = logging.getLogger(__name__)

Format = Literal["jsonl", "pan12"]

_BLANK = frozenset(b" \t\r\n\f\v")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_PROBE = 64 * 1024


def detect_format(path: Path) -> Format:
    """``"pan12"`` when the first non-blank byte of ``path`` is ``<`` (after any BOM), else ``"jsonl"``.

    Raises
    ------
    DataError
        When the file is missing, a directory or unreadable.
    """
    with open_data_file(path) as handle:
        try:
            start = True
            while chunk := handle.read(_PROBE):
                if start:
                    start = False
                    for bom in _BOMS:
                        if chunk.startswith(bom):
                            chunk = chunk[len(bom) :]
                            if bom != _BOMS[0]:
                                # UTF-16: drop the zero bytes of ASCII characters.
                                chunk = chunk.replace(b"\x00", b"")
                            break
                for byte in chunk:
                    if byte not in _BLANK:
                        return "pan12" if byte == ord("<") else "jsonl"
        except OSError as error:
            raise read_failed(path, error) from None
    return "jsonl"


def read_conversations(path: Path, *, predators: Path | None = None, max_issues: int = 100) -> ReadResult:
    """Read a JSONL or PAN-2012 XML file (told apart by content), reporting every bad record.

    Parameters
    ----------
    path
        The data file.
    predators
        PAN-2012 ground truth (predator author ids, one a line); only for XML files.
    max_issues
        Issues kept in the result; later ones are only counted.

    Raises
    ------
    DataError
        When a file is missing or unreadable, or ``predators`` is given for a JSONL file
        (whose labels are in the records).
    """
    if detect_format(path) == "pan12":
        return read_pan12(path, predators=predators, max_issues=max_issues)
    if predators is not None:
        raise DataError(
            f"{path}: --predators applies to PAN-2012 XML files only; this is JSONL, whose labels are in the records"
        )
    return read_jsonl(path, max_issues=max_issues)


def load_conversations(path: Path, *, predators: Path | None = None) -> list[Conversation]:
    """Every conversation of a data file, or a :class:`DataError` if any record is bad.

    The error names the first problem (``file:line: what``) and how many more there are,
    and points to ``cesagram data check``, which lists them all.

    Notes
    -----
    Strict on purpose: a node that skipped bad records would train on a different set than
    its operator checked, and its privacy accounting (one conversation is the unit) would
    count records that were never seen.
    """
    result = read_conversations(path, predators=predators, max_issues=1)
    if result.ok:
        return result.conversations
    first = result.issues[0] if result.issues else None
    more = result.total_issues - 1
    command = f"cesagram data check {path}" + (f" --predators {predators}" if predators is not None else "")
    hint = f"and {more} more problem{'s' if more != 1 else ''}; run `{command}`" if more else f"run `{command}`"
    raise DataError(f"{first} ({hint})")
