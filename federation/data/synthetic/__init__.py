"""Synthetic federations of grooming and benign chats, for tests, simulations and benchmarks.

``generate_federation(settings, node_kinds=..., out_dir=...)`` writes one JSONL file per
node, a held-out ``test.jsonl`` and a ``manifest.json``. The content is non-explicit and
annotated with the risk-indicator codes of :mod:`federation.data.indicators`.
"""

from federation.data.synthetic.generator import (
    GENERATOR_VERSION,
    KIND_PROFILES,
    NODE_KINDS,
    KindProfile,
    SynthSettings,
    generate_conversations,
    generate_federation,
)

__all__ = [
    "GENERATOR_VERSION",
    "KIND_PROFILES",
    "NODE_KINDS",
    "KindProfile",
    "SynthSettings",
    "generate_conversations",
    "generate_federation",
]
