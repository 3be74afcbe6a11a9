"""``cesagram data check``: a data file's bad records, then the summary of its valid conversations.

Prints the lines of :func:`federation.data.check.check_file`: every bad record (up to
``--max-issues``) as ``file:line: what is wrong``, then the summary. Exit status 1 when any
record is bad, 0 when the file is clean.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from federation.data.check import check_file


def check_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram data check PATH [--predators FILE] [--max-issues N]``.

    Prints the bad records, then the summary; returns 1 when any record is bad, else 0.
    A missing or unreadable file raises :class:`DataError` (one line on stderr, exit 1).

    Notes
    -----
    The output holds line numbers, key paths, types and counts only, never chat text or
    author ids, so an operator can share it when asking for help.
    """
    predators = Path(args.predators) if getattr(args, "predators", None) is not None else None
    check = check_file(Path(args.path), predators=predators, max_issues=getattr(args, "max_issues", 100))
    for line in check.lines:
        print(line)
    return 0 if check.ok else 1
