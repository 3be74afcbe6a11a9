"""Score histograms released under DP: Gaussian noise on the counts, charged to the node's ledger.

Adding or removing one conversation changes exactly one bin of one class's histogram by 1,
so the concatenated histograms have L2 sensitivity 1, and Gaussian noise of standard
deviation ``sigma`` on every bin is the Gaussian mechanism with noise multiplier ``sigma``.
Its Rényi DP (``alpha / (2 sigma**2)``) is exactly that of one DP-SGD step at sample rate
1, which is how the release enters the ledger: one step ``(sigma, 1.0, 1)`` under the run
key ``<run>/evaluate``, composed with every training step by the ledger's accountant and
checked against the same cap. The release is one call of the same ledger transaction as a
training call (:func:`federation.privacy.budget.spend_budget`, at the node's fixed noise):
refused before any noise is drawn when it would pass the cap, and recorded before the
noised counts are returned. Rounding and clipping at 0 are post-processing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from federation.privacy.budget import SpendRequest, spend_budget


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

    ``call`` is the evaluation's number in the run (1-based) and ``planned_calls`` the
    releases the run plans (its plan's target; a resumed run may release more).

    Raises
    ------
    PrivacyBudgetExceeded
        The release would take the node past ``min(cap, ledger cap)``: nothing recorded.
    LedgerError
        A missing, corrupt or inconsistent ledger (fail closed).
    """
    if not sigma > 0:
        raise ValueError("sigma must be > 0")
    request = SpendRequest(
        ledger_path=Path(ledger_path),
        run_id=evaluation_key(run_id, sigma),
        round=call,
        planned_rounds=max(call, planned_calls, 1),
        run_epsilon=0.0,  # unused: the noise is the node's own, not calibrated
        cap=cap,
        delta=delta,
        noise_multiplier=float(sigma),
        what=f"a noised histogram (sigma {sigma:g})",
    )
    with spend_budget(request, sample_rate=1.0, steps=1) as grant:
        rng = np.random.default_rng(secrets.randbits(128))
        noised = [
            np.clip(np.rint(np.asarray(c, dtype=float) + rng.normal(0.0, sigma, len(c))), 0, None).astype(int).tolist()
            for c in counts
        ]
        entry = grant.record(1)
    return noised, entry.epsilon_after
