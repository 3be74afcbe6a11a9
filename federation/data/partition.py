"""Dirichlet skew across nodes: how many conversations each node holds, and of which class.

Real federations are not i.i.d.: a national helpline holds far more chats than a small
police unit, and a platform's moderation queue is mostly benign. These helpers draw that
heterogeneity from a Dirichlet (or Beta) distribution whose concentration ``alpha`` is the
one knob: a large ``alpha`` gives near-equal parts, a small one gives very uneven parts.
They are pure functions of their arguments and the ``numpy.random.Generator`` passed in,
so a seed reproduces a split exactly.
"""

from __future__ import annotations


import numpy as np

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError

__all__ = ["dirichlet_partition", "dirichlet_sizes", "power_law_sizes", "skewed_rate"]


def _check_alpha(alpha: float, *, name: str = "alpha") -> None:
    if not is_finite_number(alpha) or alpha <= 0:
        raise ConfigError(f"{name} = {alpha!r} is out of range; use a finite number > 0 (large values mean less skew)")


def _check_count(value: int, *, name: str, minimum: int) -> None:
    if not is_integer(value) or value < minimum:
        raise ConfigError(f"{name} = {value!r} is out of range; use an integer >= {minimum}")


def _apportion(total: int, proportions: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total``, as close to ``total * proportions`` as possible.

    Largest-remainder rounding (ties broken by position) keeps the result a pure function
    of the proportions, with no extra random draw.
    """
    exact = proportions * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def dirichlet_sizes(
    total: int, *, num_parts: int, alpha: float, rng: np.random.Generator, minimum: int = 1
) -> np.ndarray:
    """Split ``total`` items into ``num_parts`` sizes drawn from a symmetric Dirichlet.

    Parameters
    ----------
    total
        Number of items to share out.
    num_parts
        Number of parts (nodes).
    alpha
        Dirichlet concentration: large values give near-equal sizes, values below 1 give
        a few large parts and many small ones.
    rng
        Source of randomness; the only one used.
    minimum
        Every part gets at least this many items, so that no node is left empty.

    Returns
    -------
    numpy.ndarray
        ``num_parts`` integer sizes, each ``>= minimum``, summing to ``total``.
    """
    _check_count(num_parts, name="num_parts", minimum=1)
    _check_count(minimum, name="minimum", minimum=0)
    _check_alpha(alpha)
    if not is_integer(total) or total < num_parts * minimum:
        raise ConfigError(
            f"total = {total!r} is too small for {num_parts} parts of at least {minimum}; "
            f"use a total >= {num_parts * minimum}"
        )
    proportions = rng.dirichlet(np.full(num_parts, float(alpha)))
    return minimum + _apportion(int(total) - num_parts * minimum, proportions)



def power_law_sizes(
    num_parts: int, *, low: int, high: int, exponent: float, rng: np.random.Generator
) -> np.ndarray:
    """Sizes of many small nodes (a user's device): ``P(k) ~ k ** -exponent`` on ``low..high``.

    Cross-device federations are heavy-tailed: most devices hold one or two conversations,
    a few hold many. Unlike :func:`dirichlet_sizes` there is no fixed total: each part is
    an independent draw, so the first ``n`` sizes of a larger draw are those of a draw of
    ``n`` (a federation of 1,000 nodes is the first 1,000 of one of 10,000).
    """
    _check_count(num_parts, name="num_parts", minimum=1)
    _check_count(low, name="low", minimum=1)
    _check_count(high, name="high", minimum=low)
    if not is_finite_number(exponent) or exponent < 0:
        raise ConfigError(f"exponent = {exponent!r} is out of range; use a finite number >= 0 (larger: smaller nodes)")
    support = np.arange(low, high + 1, dtype=np.int64)
    weights = support.astype(np.float64) ** -float(exponent)
    return rng.choice(support, size=num_parts, p=weights / weights.sum())

def skewed_rate(
    base_rate: float,
    *,
    alpha: float,
    rng: np.random.Generator,
    concentration: float = 10.0,
    low: float = 0.02,
    high: float = 0.98,
) -> float:
    """A node's positive rate: ``base_rate`` perturbed by a Beta draw.

    The rate is drawn from ``Beta(k * base_rate, k * (1 - base_rate))`` with
    ``k = alpha * concentration``, whose mean is ``base_rate`` and whose spread shrinks as
    ``alpha`` grows (standard deviation ``sqrt(r (1 - r) / (k + 1))``). It is the
    two-class Dirichlet, centred on the node kind's typical rate rather than on 1/2.

    Parameters
    ----------
    base_rate
        The typical positive rate of the node's kind, in (0, 1).
    alpha
        Label-skew concentration; large values keep every node close to ``base_rate``.
    rng
        Source of randomness.
    concentration
        Scale that turns ``alpha`` into the Beta's total concentration.
    low, high
        Clip range, so that every node keeps some examples of both classes.

    Returns
    -------
    float
        The node's positive rate in ``[low, high]``.
    """
    _check_alpha(alpha)
    if not 0.0 < base_rate < 1.0:
        raise ConfigError(f"base_rate = {base_rate!r} is out of range; use a rate strictly between 0 and 1")
    k = float(alpha) * concentration
    return float(np.clip(rng.beta(k * base_rate, k * (1.0 - base_rate)), low, high))


def dirichlet_partition(
    labels: np.ndarray, *, num_parts: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Split a pooled, labelled dataset into ``num_parts`` label-skewed parts.

    For each class, its indices are shuffled and shared out by proportions drawn from a
    symmetric Dirichlet(``alpha``), the usual non-i.i.d. split of federated-learning
    benchmarks. Parts left empty then take one index from the largest part, so every
    node has data.

    Parameters
    ----------
    labels
        One label per item (any integers, e.g. 0/1).
    num_parts
        Number of parts; at most ``len(labels)``.
    alpha
        Dirichlet concentration: small values give parts dominated by one class and
        uneven sizes, large values give near-i.i.d. parts.
    rng
        Source of randomness.

    Returns
    -------
    list of numpy.ndarray
        ``num_parts`` sorted arrays of indices into ``labels``; together they hold every
        index exactly once, and none is empty.
    """
    labels = np.asarray(labels)
    _check_count(num_parts, name="num_parts", minimum=1)
    _check_alpha(alpha)
    if labels.ndim != 1:
        raise ConfigError(f"labels has shape {labels.shape}; pass a one-dimensional array of labels")
    if len(labels) < num_parts:
        raise ConfigError(
            f"num_parts = {num_parts} is more than the {len(labels)} items to split; "
            "use fewer parts or more data"
        )
    parts: list[list[int]] = [[] for _ in range(num_parts)]
    for value in np.unique(labels):
        indices = np.flatnonzero(labels == value)
        rng.shuffle(indices)
        counts = _apportion(len(indices), rng.dirichlet(np.full(num_parts, float(alpha))))
        start = 0
        for part, count in zip(parts, counts):
            part.extend(indices[start : start + count].tolist())
            start += count
    for part in parts:
        if not part:
            donor = max(parts, key=len)
            part.append(donor.pop())
    return [np.sort(np.asarray(part, dtype=np.int64)) for part in parts]
