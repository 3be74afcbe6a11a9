"""The outer layer's deployment helpers: Flower's processes (start, probe, stop, tie to their parent) and the PKI.

Used by the node's and the coordinator's commands (``clients``, ``server``), the local
runtime of simulations and the tests; it imports only :mod:`federation` (errors, atomic
writes). :mod:`federation` itself starts no process and holds no key.
"""
