"""``cesagram score`` as a person runs it: a progress bar on stderr while a file's texts are encoded.

The bar shows only when stderr is a terminal (a pipe or a log file gets no bar and no
extra line); ``--follow`` scores message by message and has none.
"""

from __future__ import annotations

import argparse

from cesagram.console import Bars


def score_command(args: argparse.Namespace) -> int:
    """Run :func:`cesagram.evaluate.score_command` under a progress bar."""
    from cesagram.evaluate import score_command as score

    if args.follow:
        return score(args)
    with Bars(plain=False) as bars:
        return score(args, encode_progress=bars.tracker("encoding texts", unit="texts") if bars.live else None)
