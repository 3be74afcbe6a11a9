"""A synthetic federation on disk: one JSONL file per node, a held-out test file, a manifest.

Nodes differ the way real partners do. A *hotline* holds chats reported by young people
(many positives, teen language); *police* hold case files (long, slow grooming chats and
seized benign chats, a cleaner transcribed style); a *platform* holds a moderation sample
that is mostly benign, with many hard negatives and fast sextortion-style grooming. Node
sizes follow a Dirichlet(``size_skew``) draw and each node's positive rate a Beta draw
around its kind's rate (``label_skew``), see :mod:`federation.data.partition`. Rates are
plausible base rates: platforms about 2% (a moderation sample), hotlines and police higher
(their chats were reported or seized). Every conversation is built on real chit-chat from
the chitchat corpus (:mod:`.background`), and a share of each kind's benign conversations
are real chats as they are.

Output is a pure function of the settings and node kinds: every random draw comes from a
generator seeded by ``(seed, stream, node index)``, never from global state or ``hash()``,
so two runs write byte-identical files.
"""

from __future__ import annotations

import json
import logging
import random
from contextlib import nullcontext
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from federation.checks import is_finite_number, is_integer
from federation.data.chitchat import background_pool
from federation.data.partition import dirichlet_sizes, power_law_sizes, skewed_rate
from federation.data.records import write_jsonl
from federation.data.store import STORE_MANIFEST, StoreWriter, remove_store
from federation.data.synthetic.background import real_chat
from federation.data.synthetic.bank import Banks, bank_half
from federation.data.synthetic.benign import benign_conversation
from federation.data.synthetic.dialogue import Speaker, new_author
from federation.data.synthetic.grooming import TEMPOS, grooming_conversation, tempo_length
from federation.data.synthetic.style import persona_weights
from federation.data.types import Conversation
from federation.errors import ConfigError
from federation.io import atomic_write_json

__all__ = [
    "GENERATOR_VERSION",
    "KIND_PROFILES",
    "NODE_KINDS",
    "KindProfile",
    "SynthSettings",
    "generate_conversations",
    "generate_federation",
    "stream_rng",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "2.1"
NODE_KINDS: tuple[str, ...] = ("hotline", "police", "platform")
MANIFEST = "manifest.json"
TEST_FILE = "test.jsonl"
SIZE_DISTRIBUTIONS: tuple[str, ...] = ("dirichlet", "power_law")
#: How the nodes' data is written: a file per node, or one sharded store (:mod:`federation.data.store`).
LAYOUTS: tuple[str, ...] = ("files", "sharded")

# Independent random streams per purpose, so that e.g. changing the test size leaves the
# node files unchanged.
_STREAM_PLAN, _STREAM_NODE, _STREAM_TEST = 0, 1, 2


@dataclass(frozen=True)
class SynthSettings:
    """Settings of the synthetic federation; plain scalars so a Hydra group can mirror them.

    Parameters
    ----------
    seed
        Seed of every random draw; the same seed gives byte-identical files.
    conversations_per_node
        Mean number of conversations per node; the total is this times the number of nodes.
    size_skew
        Dirichlet concentration over node sizes: large values give equal sizes, values
        below 1 give a few large nodes and many small ones.
    label_skew
        Concentration of each node's positive rate around its kind's typical rate: large
        values keep every node near it, small values spread rates out.
    test_conversations
        Size of the held-out ``test.jsonl`` (mixed node kinds); 0 writes an empty file.
    min_messages, max_messages
        Every conversation's length is clipped into this range.
    min_node_conversations
        Floor on each node's size, whatever the size skew draws.
    size_distribution
        ``dirichlet``: ``conversations_per_node`` times the nodes, shared by a Dirichlet
        (organisations); ``power_law``: each node's size drawn on
        ``min_node_conversations..max_node_conversations`` with ``P(k) ~ k ** -size_exponent``
        and each conversation grooming with the node's rate (users' devices: most hold one
        or two chats, none is forced to hold both classes).
    max_node_conversations, size_exponent
        The power law's largest node and exponent (unused by ``dirichlet``).
    """

    seed: int = 0
    conversations_per_node: int = 220
    size_skew: float = 5.0
    label_skew: float = 3.0
    test_conversations: int = 300
    min_messages: int = 6
    max_messages: int = 150
    min_node_conversations: int = 20
    size_distribution: str = "dirichlet"
    max_node_conversations: int = 20
    size_exponent: float = 1.5

    def __post_init__(self) -> None:
        _int_field(self, "seed", 0, 2**63 - 1)
        _int_field(self, "conversations_per_node", 1, 1_000_000)
        _float_field(self, "size_skew")
        _float_field(self, "label_skew")
        _int_field(self, "test_conversations", 0, 1_000_000)
        _int_field(self, "min_messages", 2, 1000)
        _int_field(self, "max_messages", self.min_messages, 1000)
        if self.size_distribution not in SIZE_DISTRIBUTIONS:
            raise ConfigError(
                f"synthetic data setting size_distribution = {self.size_distribution!r} is invalid; "
                f"use one of {', '.join(SIZE_DISTRIBUTIONS)}"
            )
        power_law = self.size_distribution == "power_law"
        _int_field(self, "min_node_conversations", 1, 1_000_000 if power_law else self.conversations_per_node)
        _int_field(self, "max_node_conversations", self.min_node_conversations if power_law else 1, 1_000_000)
        if not is_finite_number(self.size_exponent) or self.size_exponent < 0:
            raise ConfigError(
                f"synthetic data setting size_exponent = {self.size_exponent!r} is invalid; use a finite number >= 0"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SynthSettings:
        """Build settings from a mapping (e.g. a Hydra node converted to a dict).

        Unknown keys raise :class:`ConfigError` naming them and the allowed keys, so a
        misspelt override is not silently ignored.
        """
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown synthetic data settings {unknown}; allowed keys: {', '.join(allowed)}")
        return cls(**dict(values))


def _int_field(settings: SynthSettings, name: str, low: int, high: int) -> None:
    value = getattr(settings, name)
    if not is_integer(value, numpy=False) or not low <= value <= high:
        raise ConfigError(f"synthetic data setting {name} = {value!r} is invalid; use an integer from {low} to {high}")


def _float_field(settings: SynthSettings, name: str) -> None:
    value = getattr(settings, name)
    if not is_finite_number(value) or value <= 0:
        raise ConfigError(
            f"synthetic data setting {name} = {value!r} is invalid; "
            "use a finite number > 0 (large values mean less skew)"
        )


@dataclass(frozen=True)
class KindProfile:
    """What a kind of node holds: positive rate, grooming tempos, benign scenarios, style."""

    positive_rate: float
    #: weights of the ``fast``, ``medium`` and ``slow`` tempos (their lengths serve benign chats too)
    tempo_weights: tuple[float, float, float]
    #: (scenario, weight) pairs of the benign conversations
    scenarios: tuple[tuple[str, float], ...]
    #: (persona, weight) pairs of the groomer's writing style (many pose as peers)
    groomer_personas: tuple[tuple[str, float], ...]
    #: persona of the child in grooming conversations
    child_persona: str
    #: shift of every writer towards the canonical form (transcribed case files)
    formality: float
    #: share of the benign conversations that are real chats as they are (no scripted content)
    real_share: float


KIND_PROFILES: dict[str, KindProfile] = {
    "hotline": KindProfile(
        positive_rate=0.30,
        tempo_weights=(0.25, 0.35, 0.4),
        scenarios=(
            ("teen_peers", 0.26),
            ("counsellor", 0.14),
            ("parent_child", 0.12),
            ("peer_report", 0.1),
            ("friends", 0.1),
            ("parent_warning", 0.08),
            ("coach_tutor", 0.08),
            ("gaming_trade", 0.08),
            ("adult_dating", 0.04),
        ),
        groomer_personas=(("teen", 0.5), ("adult", 0.5)),
        child_persona="teen",
        formality=0.0,
        real_share=0.25,
    ),
    "police": KindProfile(
        positive_rate=0.25,
        tempo_weights=(0.1, 0.25, 0.65),
        scenarios=(
            ("adult_dating", 0.24),
            ("marketplace", 0.14),
            ("teen_peers", 0.14),
            ("parent_child", 0.12),
            ("coach_tutor", 0.12),
            ("peer_report", 0.1),
            ("friends", 0.08),
            ("parent_warning", 0.06),
        ),
        groomer_personas=(("adult", 0.6), ("teen", 0.4)),
        child_persona="teen",
        formality=0.35,
        real_share=0.3,
    ),
    "platform": KindProfile(
        positive_rate=0.02,
        tempo_weights=(0.5, 0.3, 0.2),
        scenarios=(
            ("gaming_trade", 0.24),
            ("teen_peers", 0.2),
            ("marketplace", 0.14),
            ("adult_dating", 0.14),
            ("moderator", 0.12),
            ("peer_report", 0.08),
            ("friends", 0.04),
            ("parent_warning", 0.02),
            ("coach_tutor", 0.02),
        ),
        groomer_personas=(("gamer", 0.5), ("adult", 0.3), ("teen", 0.2)),
        child_persona="gamer",
        formality=0.0,
        real_share=0.5,
    ),
}


def stream_rng(seed: int, *stream: int) -> random.Random:
    """The generator's random source for ``(seed, stream...)``: independent of every other stream."""
    state = np.random.SeedSequence([seed, *stream]).generate_state(2, dtype=np.uint64)
    return random.Random(int(state[0]) << 64 | int(state[1]))


def _pick(pairs: Sequence[tuple[str, float]], rng: random.Random) -> str:
    names, weights = zip(*pairs)
    return rng.choices(names, weights=weights)[0]


def _clip(length: int, settings: SynthSettings) -> int:
    return min(settings.max_messages, max(settings.min_messages, length))


def _one(
    kind: str,
    *,
    label: int,
    conversation_id: str,
    settings: SynthSettings,
    rng: random.Random,
    pool: Sequence[Conversation],
    banks: Banks,
) -> Conversation:
    profile = KIND_PROFILES[kind]
    weights = partial(persona_weights, formality=profile.formality)
    if label:
        tempo = rng.choices(TEMPOS, weights=profile.tempo_weights)[0]
        persona = _pick(profile.groomer_personas, rng)
        return grooming_conversation(
            conversation_id=conversation_id,
            tempo=tempo,
            length=_clip(tempo_length(tempo, rng=rng), settings),
            rng=rng,
            groomer_persona=persona,
            groomer_weights=weights(persona),
            child_weights=weights(profile.child_persona),
            background=pool,
            banks=banks,
            extra={"synthetic": {"kind": kind, "scenario": f"grooming_{tempo}"}},
        )
    # Benign lengths follow the kind's grooming tempos, so that length tells nothing.
    length = _clip(tempo_length(rng.choices(TEMPOS, weights=profile.tempo_weights)[0], rng=rng), settings)
    if rng.random() < profile.real_share:
        speakers = {"A": Speaker(author=new_author(rng), weights=()), "B": Speaker(author=new_author(rng), weights=())}
        return real_chat(conversation_id, pool=pool, length=length, rng=rng, speakers=speakers, extra={"kind": kind})
    scenario = _pick(profile.scenarios, rng)
    return benign_conversation(
        conversation_id=conversation_id,
        scenario=scenario,
        length=length,
        rng=rng,
        weights=weights,
        background=pool,
        banks=banks,
        extra={"synthetic": {"kind": kind, "scenario": scenario}},
    )


def generate_conversations(
    kinds: Sequence[str],
    *,
    positive_rate: float | None,
    prefix: str,
    settings: SynthSettings,
    rng: random.Random,
    pool: Sequence[Conversation],
    banks: Banks | None = None,
    draw_labels: bool = False,
) -> list[Conversation]:
    """Conversations for the given kinds, one per entry of ``kinds``, in a shuffled order.

    Parameters
    ----------
    kinds
        Node kind of each conversation to make.
    positive_rate
        Fraction of positives (rounded, at least one of each class when there are two or
        more conversations); ``None`` uses each conversation's kind's own rate.
    prefix
        Conversation ids are ``{prefix}-{index:05d}``; ids say nothing about the label.
    settings, rng
        Length limits, and the source of randomness.
    pool
        Real chats every conversation is built on (see :mod:`.background`); never a
        reserved one.
    banks
        The phrase banks the scripted lines come from; by default the ``private`` half,
        which the nodes' data and the test file are written from (the ``public`` half is
        the server's pretraining set's, :mod:`.public`).
    draw_labels
        Each conversation is grooming with probability ``positive_rate``, instead of an
        exact share with both classes present (a device's handful of chats).
    """
    banks = bank_half("private") if banks is None else banks
    count = len(kinds)
    if positive_rate is None:
        labels = [int(rng.random() < KIND_PROFILES[kind].positive_rate) for kind in kinds]
    elif draw_labels:
        labels = [int(rng.random() < positive_rate) for _ in kinds]
    else:
        positives = round(positive_rate * count)
        if count >= 2:
            positives = min(count - 1, max(1, positives))
        labels = [1] * positives + [0] * (count - positives)
    rng.shuffle(labels)
    return [
        _one(kind, label=label, conversation_id=f"{prefix}-{index:05d}", settings=settings, rng=rng, pool=pool, banks=banks)
        for index, (kind, label) in enumerate(zip(kinds, labels))
    ]


def _summary(name: str, kind: str, file: str, conversations: Sequence[Conversation]) -> dict[str, Any]:
    positives = sum(c.label for c in conversations)
    return {
        "name": name,
        "kind": kind,
        "file": file,
        "conversations": len(conversations),
        "positives": positives,
        "negatives": len(conversations) - positives,
        "prevalence": positives / len(conversations) if conversations else 0.0,
        "real_chats": sum(c.extra.get("synthetic", {}).get("scenario") == "real_chat" for c in conversations),
        "messages": sum(len(c.messages) for c in conversations),
    }


def _check_kinds(node_kinds: Sequence[str]) -> list[str]:
    kinds = [node_kinds] if isinstance(node_kinds, str) else list(node_kinds)
    if not kinds:
        raise ConfigError(f"node kinds are empty; give at least one of {', '.join(NODE_KINDS)}")
    for position, kind in enumerate(kinds):
        if kind not in KIND_PROFILES:
            raise ConfigError(f"node kind #{position} = {kind!r} is unknown; use one of {', '.join(NODE_KINDS)}")
    return kinds


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Delete node files a previous run of this generator listed and this run does not write."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))
        old_files = {node["file"] for node in previous["nodes"]}
    except (ValueError, KeyError, TypeError):
        logger.warning("%s is not a synthetic-federation manifest; leaving the folder's other files alone", manifest)
        return
    for name in sorted(old_files - keep):
        stale = out_dir / Path(name).name
        if stale.is_file():
            stale.unlink()
            logger.info("removed %s, left over from a previous run with more nodes", stale)


def node_sizes(settings: SynthSettings, count: int, rng: np.random.Generator) -> np.ndarray:
    """Each node's number of conversations, by the settings' size distribution."""
    if settings.size_distribution == "power_law":
        return power_law_sizes(
            count,
            low=settings.min_node_conversations,
            high=settings.max_node_conversations,
            exponent=settings.size_exponent,
            rng=rng,
        )
    return dirichlet_sizes(
        settings.conversations_per_node * count,
        num_parts=count,
        alpha=settings.size_skew,
        rng=rng,
        minimum=settings.min_node_conversations,
    )


def _kind_summaries(nodes: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per node kind: how many nodes, conversations and positives, and the range of node sizes."""
    kinds: dict[str, dict[str, Any]] = {}
    for node in nodes:
        entry = kinds.setdefault(
            node["kind"], {"nodes": 0, "conversations": 0, "positives": 0, "real_chats": 0, "smallest": None, "largest": 0}
        )
        entry["nodes"] += 1
        entry["conversations"] += node["conversations"]
        entry["positives"] += node["positives"]
        entry["real_chats"] += node["real_chats"]
        smallest = entry["smallest"]
        entry["smallest"] = node["conversations"] if smallest is None else min(smallest, node["conversations"])
        entry["largest"] = max(entry["largest"], node["conversations"])
    return kinds


def generate_federation(
    settings: SynthSettings, *, node_kinds: Sequence[str], out_dir: Path, layout: str = "files"
) -> dict[str, Any]:
    """Write a synthetic federation to ``out_dir`` and return its manifest.

    Parameters
    ----------
    settings
        Sizes, skews, lengths and seed.
    node_kinds
        Kind of each node, in order (each one of :data:`NODE_KINDS`); node ``i`` is
        written to ``node-{i}.jsonl``, or is node ``i`` of the store.
    out_dir
        Folder to write to (created if missing). Node files that a previous run of the
        generator listed in its manifest and this run does not write are removed.
    layout
        ``files`` (one JSONL file per node) or ``sharded`` (one store with an index by
        node, :mod:`federation.data.store`: for thousands of small nodes). Either way no
        more than one node's conversations are held in memory at a time.

    Returns
    -------
    dict
        The manifest also written to ``manifest.json``: generator version, seed,
        settings, node kinds, per node name/kind/file/conversations/positives/negatives
        (a ``files`` layout; ``sharded`` lists ``nodes_by_kind`` instead), the same for
        the test file, and the number of distinct message texts overall (what the
        embedding cache will have to encode).

    Notes
    -----
    The scripted content is synthetic and non-explicit; the real chit-chat it is woven
    into comes from the public chitchat corpus, never from its reserved quarter (the
    nodes' and the test file's parts are disjoint too). Author ids are pseudonyms.
    Files are written atomically.
    """
    kinds = _check_kinds(node_kinds)
    if layout not in LAYOUTS:
        raise ConfigError(f"layout {layout!r} is unknown; use one of {', '.join(LAYOUTS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"output folder {out_dir} is an existing file; give a folder path")
    plan = np.random.default_rng(np.random.SeedSequence([settings.seed, _STREAM_PLAN]))
    sizes = node_sizes(settings, len(kinds), plan)
    rates = [skewed_rate(KIND_PROFILES[kind].positive_rate, alpha=settings.label_skew, rng=plan) for kind in kinds]

    node_pool, test_pool = background_pool("nodes"), background_pool("test")
    nodes, texts = [], set()
    store = StoreWriter(out_dir, extra={"generator": "cesagram-fl synthetic", "seed": settings.seed}) if layout == "sharded" else None
    with store or nullcontext():
        for index, (kind, size, rate) in enumerate(zip(kinds, sizes, rates)):
            name = f"node-{index}"
            conversations = generate_conversations(
                [kind] * int(size),
                positive_rate=rate,
                prefix=f"n{index}",
                settings=settings,
                rng=stream_rng(settings.seed, _STREAM_NODE, index),
                pool=node_pool,
                draw_labels=settings.size_distribution == "power_law",
            )
            if store is not None:
                store.add(conversations)
            else:
                write_jsonl(out_dir / f"{name}.jsonl", conversations)
            texts.update(m.text for c in conversations for m in c.messages)
            nodes.append(_summary(name, kind, f"{name}.jsonl" if store is None else STORE_MANIFEST, conversations))
            logger.debug("wrote %s: %d conversations", name, len(conversations))
    if store is None:
        remove_store(out_dir)  # a store left by an earlier sharded run would be read instead

    test_rng = stream_rng(settings.seed, _STREAM_TEST)
    test_kinds = [test_rng.choice(kinds) for _ in range(settings.test_conversations)]
    test = generate_conversations(
        test_kinds, positive_rate=None, prefix="test", settings=settings, rng=test_rng, pool=test_pool
    )
    write_jsonl(out_dir / TEST_FILE, test)
    texts.update(m.text for c in test for m in c.messages)
    test_summary = _summary("test", "mixed", TEST_FILE, test)
    test_summary["kinds"] = {kind: test_kinds.count(kind) for kind in sorted(set(kinds))}

    _remove_stale(out_dir, {node["file"] for node in nodes} if store is None else set())
    manifest = {
        "generator": "cesagram-fl synthetic",
        "version": GENERATOR_VERSION,
        "seed": settings.seed,
        "settings": asdict(settings),
        "layout": layout,
        "node_kinds": kinds,
        "nodes": nodes if store is None else [],
        "nodes_by_kind": _kind_summaries(nodes),
        "test": test_summary,
        "distinct_texts": len(texts),
    }
    atomic_write_json(out_dir / MANIFEST, manifest)
    logger.info(
        "wrote %d nodes (%d conversations) and %d test conversations to %s; %d distinct message texts",
        len(nodes),
        sum(node["conversations"] for node in nodes),
        len(test),
        out_dir,
        len(texts),
    )
    return manifest
