"""CESAGRAM-FL shared core: data, models, DP training, privacy ledger, metrics.

Knows nothing about Flower's processes; ``clients``, ``server`` and ``simulations``
import from here, never the other way round.
"""
