"""Epsilon of a history of DP-SGD steps: the pure-maths layer under the ledger.

Two accountants, both Opacus's own maths:

- ``rdp``: Rényi DP (``opacus.accountants.analysis.rdp``, the orders of
  :class:`opacus.accountants.RDPAccountant`); fast and always defined, a little loose.
- ``prv``: numerical composition of privacy loss random variables (Gopi et al. 2021,
  :class:`opacus.accountants.PRVAccountant`), whose *upper* bound is reported (estimate
  plus its error bound ``PRV_EPS_ERROR``, at ``delta - delta/1000``); 5 to 7% less noise
  at our settings, but 10 to 200 times slower, and slower still with each distinct
  ``(noise, rate)`` pair in the history (README, "Privacy model").

This module only adds validation and a canonical composition order so that the same
steps always give the same epsilon, whichever process or split they were recorded in.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError

if TYPE_CHECKING:
    from federation.runconfig import RunSettings

__all__ = [
    "ACCOUNTANT",
    "ACCOUNTANTS",
    "ORDERS",
    "PRV_EPS_ERROR",
    "Step",
    "epsilon_from_rdp",
    "epsilon_of",
    "rdp_of",
    "validate_accountant",
    "validate_delta",
    "validate_step",
]

logger = logging.getLogger(__name__)

ACCOUNTANT = "rdp"
"""The default accountant: new ledgers and runs use it unless told otherwise."""

ACCOUNTANTS: tuple[str, ...] = ("rdp", "prv")
"""Accountants a ledger, a run or a report may name."""

PRV_EPS_ERROR = 0.01
"""Error bound of the PRV estimate; the reported epsilon is the estimate plus it (an upper bound)."""

ORDERS: tuple[float, ...] = tuple(float(order) for order in [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))
"""RDP orders, exactly those of :class:`~opacus.accountants.RDPAccountant` (a test checks).

Written out, and Opacus imported only where it computes, so that a ClientApp process that
only evaluates does not pay Opacus's import (about 2 s of CPU, once per Flower message).
"""

Step = tuple[float, float, int]
"""``(noise_multiplier, sample_rate, steps)``: one homogeneous stretch of DP-SGD."""

_EXTREME_ORDER_WARNING = "Optimal order is the"


def validate_accountant(accountant: object, *, name: str = "privacy.accountant") -> str:
    """Return ``accountant`` if it names one of :data:`ACCOUNTANTS`, else raise :class:`ConfigError`."""
    if accountant not in ACCOUNTANTS:
        raise ConfigError(f"{name}={accountant!r} is not an accountant; choose one of: {', '.join(ACCOUNTANTS)}")
    return str(accountant)


def validate_delta(delta: float, *, name: str = "delta") -> float:
    """Return ``delta`` as a float, or raise :class:`ConfigError` if not in (0, 1)."""
    if not is_finite_number(delta) or not 0.0 < delta < 1.0:
        raise ConfigError(f"{name} must be a number in (0, 1), got {delta!r}; use e.g. 1e-5 (below 1/N)")
    return float(delta)


def validate_step(step: Sequence[object], *, name: str = "history entry") -> Step:
    """Return ``step`` as a typed ``(noise_multiplier, sample_rate, steps)`` triple.

    Raises
    ------
    ConfigError
        If the triple has the wrong length, a noise multiplier that is not a positive
        finite number, a sample rate outside (0, 1] or a step count that is not a
        non-negative integer.
    """
    if len(step) != 3:
        raise ConfigError(f"{name} must be (noise_multiplier, sample_rate, steps), got {len(step)} values")
    noise, rate, count = step
    if not is_finite_number(noise) or noise <= 0:
        raise ConfigError(f"{name}: noise multiplier must be a positive finite number, got {noise!r}")
    if not is_finite_number(rate) or not 0.0 < rate <= 1.0:
        raise ConfigError(f"{name}: sample rate must be in (0, 1], got {rate!r}")
    if not is_integer(count) or count < 0:
        raise ConfigError(f"{name}: steps must be a non-negative integer, got {count!r}")
    return float(noise), float(rate), int(count)


@lru_cache(maxsize=4096)
def _rdp_per_step(noise_multiplier: float, sample_rate: float) -> np.ndarray:
    """RDP of one step of the sampled Gaussian mechanism at every order (cached)."""
    from opacus.accountants.analysis import rdp as rdp_analysis

    rdp = np.asarray(
        rdp_analysis.compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=list(ORDERS)),
        dtype=np.float64,
    )
    rdp.setflags(write=False)
    return rdp


def _canonical(history: Iterable[Sequence[object]]) -> list[Step]:
    """Merge steps with equal ``(noise, rate)`` and sort them: composition is commutative."""
    totals: dict[tuple[float, float], int] = {}
    for index, raw in enumerate(history):
        noise, rate, count = validate_step(raw, name=f"history[{index}]")
        if count:
            totals[(noise, rate)] = totals.get((noise, rate), 0) + count
    return [(noise, rate, count) for (noise, rate), count in sorted(totals.items())]


def rdp_of(history: Iterable[Sequence[object]]) -> np.ndarray:
    """Total RDP at every order in :data:`ORDERS` of a composed history."""
    total = np.zeros(len(ORDERS), dtype=np.float64)
    for noise, rate, count in _canonical(history):
        # Same expression as compute_rdp(steps=count): rdp_of_one_step * steps.
        total = total + _rdp_per_step(noise, rate) * count
    return total


def epsilon_from_rdp(rdp: np.ndarray, *, delta: float) -> float:
    """Convert total RDP into epsilon at ``delta`` (Opacus's conversion, same orders)."""
    delta = validate_delta(delta)
    if not np.any(rdp):
        return 0.0
    from opacus.accountants.analysis import rdp as rdp_analysis

    with warnings.catch_warnings():
        # Opacus warns when the best order is the smallest or largest one: the bound is
        # then looser than it could be, i.e. conservative, never optimistic.
        warnings.filterwarnings("ignore", message=_EXTREME_ORDER_WARNING)
        epsilon, order = rdp_analysis.get_privacy_spent(orders=list(ORDERS), rdp=rdp, delta=delta)
    epsilon = float(epsilon)
    if math.isnan(epsilon):
        return math.inf
    logger.debug("epsilon %.6g at delta %.3g (best RDP order %s)", epsilon, delta, order)
    return epsilon


@lru_cache(maxsize=1024)
def _prv_epsilon(history: tuple[Step, ...], delta: float) -> float:
    """PRV upper bound on epsilon of a canonical history (cached: calibration asks often)."""
    from opacus.accountants import PRVAccountant

    accountant = PRVAccountant()
    accountant.history = list(history)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            epsilon = float(accountant.get_epsilon(delta=delta, eps_error=PRV_EPS_ERROR))
    except (ValueError, RuntimeError, FloatingPointError, MemoryError) as error:
        # Opacus cannot bound this history (e.g. a delta too small for its mesh): fall back
        # to nothing, never to an optimistic figure.
        logger.warning("PRV accountant failed (%s); reporting epsilon as unbounded", error)
        return math.inf
    return epsilon if math.isfinite(epsilon) else math.inf


def epsilon_of(history: Sequence[Sequence[object]], *, delta: float, accountant: str = ACCOUNTANT) -> float:
    """Epsilon spent by a whole history of DP-SGD steps, composed by ``accountant``.

    Parameters
    ----------
    history
        ``(noise_multiplier, sample_rate, steps)`` triples, in any order and split in any
        way: ``[(z, q, 3), (z, q, 2)]`` and ``[(z, q, 5)]`` are the same spend.
    delta
        The delta of the (epsilon, delta) guarantee.
    accountant
        ``rdp`` or ``prv`` (see the module's docstring).

    Returns
    -------
    float
        The epsilon Opacus's accountant of that name, stepped over the same history,
        reports (0.0 for an empty history, ``inf`` when a step had no privacy or the
        accountant could not bound it).

    Notes
    -----
    One step is one application of the sampled Gaussian mechanism: Poisson sampling of
    conversations at ``sample_rate``, per-conversation clipping and Gaussian noise of
    standard deviation ``noise_multiplier * max_grad_norm``. The unit of privacy is
    whatever one Poisson draw includes or leaves out; in this project, one conversation
    (one node, for central DP).
    """
    accountant = validate_accountant(accountant, name="accountant")
    if accountant == "rdp":
        return epsilon_from_rdp(rdp_of(history), delta=delta)
    delta = validate_delta(delta)
    steps = tuple(_canonical(history))
    if not steps:
        return 0.0
    return _prv_epsilon(steps, delta)


def central_epsilon(*, noise_multiplier: float, sample_rate: float, rounds: int, delta: float, accountant: str) -> float:
    """Client-level epsilon of ``rounds`` releases of central DP over Poisson-sampled nodes (inf without noise).

    One formula for the report's privacy section, the round line and the server's strategy
    (:class:`server.central_dp.CentralDP`), so that they cannot drift apart.
    """
    if noise_multiplier <= 0:
        return float("inf") if rounds else 0.0
    return epsilon_of([(noise_multiplier, sample_rate, rounds)], delta=delta, accountant=accountant) if rounds else 0.0


def run_central_epsilon(run: RunSettings, rounds: int) -> float:
    """:func:`central_epsilon` of a run's central DP (its noise, node sampling rate, delta, accountant) after ``rounds``."""
    privacy = run.privacy
    return central_epsilon(
        noise_multiplier=privacy.noise_multiplier,
        sample_rate=run.strategy.fraction_train,
        rounds=rounds,
        delta=privacy.delta,
        accountant=privacy.accountant,
    )
