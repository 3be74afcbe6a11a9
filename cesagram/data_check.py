"""``cesagram data check``: a data file's bad records, then the summary of its valid conversations.

Lists every bad record (up to ``--max-issues``) as ``file:line: what is wrong``, then the
summary of :func:`federation.data.check.summarize`. Exit status 1 when any record is bad,
0 when the file is clean.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from federation.data.check import FORMAT_NAMES, summarize
from federation.data.load import detect_format, read_conversations
from federation.data.pan12 import read_predators
from federation.errors import ConfigError


def check_command(args: argparse.Namespace) -> int:
    """Handler of ``cesagram data check PATH [--predators FILE] [--max-issues N]``.

    Prints the bad records, then the summary; returns 1 when any record is bad, else 0.
    A missing or unreadable file raises :class:`DataError` (one line on stderr, exit 1).

    Notes
    -----
    The output holds line numbers, key paths, types and counts only, never chat text or
    author ids, so an operator can share it when asking for help.
    """
    path = Path(args.path)
    predators = Path(args.predators) if getattr(args, "predators", None) is not None else None
    max_issues = getattr(args, "max_issues", 100)
    if isinstance(max_issues, bool) or not isinstance(max_issues, int) or max_issues < 0:
        raise ConfigError(f"--max-issues: expected an integer of 0 or more, got {max_issues!r}")

    data_format = detect_format(path)
    result = read_conversations(path, predators=predators, max_issues=max_issues)
    for issue in result.issues:
        print(issue)
    if result.more_issues:
        print(f"... and {result.more_issues} more")

    summary = summarize(result.conversations)
    scope = " (valid records only)" if not result.ok else ""
    print(f"{path}: {FORMAT_NAMES[data_format]}{scope}")
    print(summary.format())
    if data_format == "pan12":
        if predators is None:
            print("  note: no --predators file given, so every label is 0; pass the PAN-2012 ground-truth file")
        else:
            listed = read_predators(predators)
            present = {a for c in result.conversations if c.label == 1 for a in c.authors if a in listed}
            print(f"  predators: {len(listed)} listed, {len(present)} of them take part in this file")

    if not result.ok:
        count = result.total_issues
        print(f"{path}: {count} problem{'s' if count != 1 else ''}; fix {'them' if count != 1 else 'it'} "
              "and run the check again")
        return 1
    print(f"{path}: ok")
    return 0
