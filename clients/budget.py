"""``cesagram node budget LEDGER [--set-cap EPSILON [--raise]] [--switch-accountant rdp|prv]``: a node's spend, cap and accountant, for its operator."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from federation.privacy.ledger import PrivacyLedger, format_ledger, ledger_lock

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
    Without ``--set-cap`` it is read-only: the ledger is loaded with the same strict checks
    as before training, so this is also how an operator verifies a restored ledger before
    starting the node. ``--set-cap`` changes the lifetime cap under the ledger's lock (a
    training call in progress finishes first); lowering is always allowed, raising needs
    ``--raise`` (more epsilon means less privacy for every conversation the node holds).
    A cap below what is already spent is allowed: the node then declines every round.
    ``--switch-accountant`` recomposes the whole history with the other accountant from now
    on and records the switch in the ledger (no run config can do it).
    """
    path = Path(args.ledger)
    switch = getattr(args, "switch_accountant", None)
    if args.set_cap is None and switch is None:
        print(format_ledger(PrivacyLedger.open(path)))
        return 0
    with ledger_lock(path):
        ledger = PrivacyLedger.open(path)
        if switch is not None:
            change = ledger.switch_accountant(switch)
            print(
                f"accountant of {path} switched from {change.previous} to {change.accountant}: the same history now "
                f"reads epsilon {change.spent_after:.4f} (was {change.spent_before:.4f}); the switch is recorded in the ledger"
            )
        if args.set_cap is not None:
            previous = ledger.cap
            ledger.set_cap(args.set_cap, allow_raise=args.allow_raise)
            print(f"cap of {path} changed from epsilon {previous:g} to {ledger.cap:g}")
    print(format_ledger(ledger))
    return 0
