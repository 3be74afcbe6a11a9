"""``cesagram node budget LEDGER``: what a node's privacy ledger has spent, for its operator."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from federation.privacy.ledger import PrivacyLedger, format_ledger

logger = logging.getLogger(__name__)


def budget_command(args: argparse.Namespace) -> int:
    """Print the ledger's total epsilon (with delta and accountant), cap, remaining and runs.

    Returns
    -------
    int
        0. A missing, corrupt or inconsistent ledger raises
        :class:`~federation.errors.LedgerError`, which the CLI prints as one line and
        turns into exit status 3.

    Notes
    -----
    Read-only: the ledger is loaded with the same strict checks as before training, so
    this is also how an operator verifies a restored ledger before starting the node.
    """
    ledger = PrivacyLedger.open(Path(args.ledger))
    print(format_ledger(ledger))
    return 0
