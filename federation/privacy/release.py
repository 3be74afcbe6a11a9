"""Score histograms released under DP: Gaussian noise on the counts, charged to the node's ledger.

Adding or removing one conversation changes exactly one bin of one class's histogram by 1,
so the concatenated histograms have L2 sensitivity 1, and Gaussian noise of standard
deviation ``sigma`` on every bin is the Gaussian mechanism with noise multiplier ``sigma``.
Its Rényi DP (``alpha / (2 sigma**2)``) is exactly that of one DP-SGD step at sample rate
1, which is how the release enters the ledger: one step ``(sigma, 1.0, 1)`` under the run
key ``<run>/evaluate``, composed with every training step by the ledger's accountant and
checked against the same cap. Rounding and clipping at 0 are post-processing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from federation.errors import LedgerError, PrivacyBudgetExceeded
from federation.privacy.accounting import epsilon_of
from federation.privacy.budget import CAP_SLACK
from federation.privacy.ledger import PrivacyLedger, ledger_lock, utc_now
from federation.privacy.plan import RunPlan


def evaluation_key(run_id: str, sigma: float) -> str:
    """The ledger's run key of a run's histogram releases at noise ``sigma``."""
    return f"{run_id}/evaluate@{sigma:g}"


def release_histograms(
    ledger_path: Path,
    *,
    run_id: str,
    call: int,
    counts: Sequence[Sequence[int]],
    sigma: float,
    cap: float,
    delta: float,
    planned_calls: int,
) -> tuple[list[list[int]], float]:
    """Noised histograms and the node's epsilon after charging them; nothing changes if over the cap.

    Raises
    ------
    PrivacyBudgetExceeded
        The release would take the node past ``min(cap, ledger cap)``: nothing recorded.
    LedgerError
        A missing, corrupt or inconsistent ledger (fail closed).
    """
    if not sigma > 0:
        raise ValueError("sigma must be > 0")
    path = Path(ledger_path)
    step = (float(sigma), 1.0, 1)
    with ledger_lock(path):
        ledger = PrivacyLedger.open(path)
        if ledger.delta != delta:
            raise LedgerError(f"privacy ledger {path} was kept at delta {ledger.delta:g}, not {delta:g}")
        effective = min(float(cap), ledger.cap)
        needed = epsilon_of([*ledger.history, step], delta=delta, accountant=ledger.accountant)
        if needed > effective + CAP_SLACK:
            raise PrivacyBudgetExceeded(
                f"privacy budget exceeded: a noised histogram (sigma {sigma:g}) would take the node from epsilon "
                f"{ledger.spent:.4f} to {needed:.4f}, past its cap {effective:.4f}; nothing was sent or recorded"
            )
        key = evaluation_key(run_id, sigma)
        plan = None
        if key not in ledger.runs:
            target = epsilon_of(
                [*ledger.history, *([step] * max(1, planned_calls))], delta=delta, accountant=ledger.accountant
            )
            plan = RunPlan(noise_multiplier=float(sigma), sample_rate=1.0, planned_steps=max(1, planned_calls),
                           target_epsilon=target, created=utc_now())  # fmt: skip
        rng = np.random.default_rng(secrets.randbits(128))
        noised = [
            np.clip(np.rint(np.asarray(c, dtype=float) + rng.normal(0.0, sigma, len(c))), 0, None).astype(int).tolist()
            for c in counts
        ]
        entry = ledger.record(run_id=key, round=call, steps=1, noise_multiplier=float(sigma), sample_rate=1.0, plan=plan)
    return noised, entry.epsilon_after
