"""Record-level differential privacy of a node: accounting, noise plans and the ledger.

Layers joined only at the training entry point (``federation.training``):
``accounting`` turns a history of DP-SGD steps into epsilon (Opacus RDP or PRV maths),
``plan`` fixes a run's noise multiplier from the node's budget, ``ledger`` keeps the
node's spend on disk across runs and restarts, failing closed when anything is wrong, and
``budget`` enforces the cap on one training call as a transaction on the ledger (check,
train, record once, under one lock).
"""

from federation.privacy.accounting import ACCOUNTANT, epsilon_of
from federation.privacy.budget import BudgetGrant, SpendRequest, spend_budget
from federation.privacy.ledger import (
    LedgerEntry,
    PrivacyLedger,
    format_ledger,
    ledger_lock,
    open_or_create,
)
from federation.privacy.plan import RunPlan, calibrate_noise, plan_run

__all__ = [
    "ACCOUNTANT",
    "BudgetGrant",
    "LedgerEntry",
    "PrivacyLedger",
    "RunPlan",
    "SpendRequest",
    "calibrate_noise",
    "epsilon_of",
    "format_ledger",
    "ledger_lock",
    "open_or_create",
    "plan_run",
    "spend_budget",
]
