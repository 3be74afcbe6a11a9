"""A node's conversations, split and featurised once per process.

Flower may call a node's handlers many times in the same process (every round, train and
evaluate); reading the file and encoding the texts happens once, and the on-disk embedding
cache makes even a fresh process cheap. Nothing here leaves the node.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from federation.data.load import load_conversations
from federation.data.nodes import read_simulated_node, source_stamp
from federation.errors import DataError
from federation.data.split import split_device, split_validation
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.models.encoder import MessageEncoder
from federation.models.features import FeatureSet, build_features
from federation.models.spec import ModelSpec, build_encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeData:
    """Featurised train and validation splits, with aggregate counts only for reporting."""

    train: FeatureSet
    validation: FeatureSet
    conversations: int
    positives: int
    encode_seconds: float


def cache_for(cache_dir: str) -> EmbeddingCache:
    """The embedding cache in ``cache_dir`` (or the default location when empty)."""
    return EmbeddingCache(cache_path_for(cache_dir))


@lru_cache(maxsize=4)
def encoder_for(spec: ModelSpec, cache_dir: str) -> MessageEncoder:
    """One encoder per process and model (MiniLM loads once)."""
    return build_encoder(spec, cache=cache_for(cache_dir))


@lru_cache(maxsize=8)
def _load(
    path: Path,
    store_node: int | None,
    simulated: bool,
    mtime_ns: int,
    spec: ModelSpec,
    cache_dir: str,
    fraction: float,
    seed: int,
) -> NodeData:
    started = time.perf_counter()
    conversations = load_conversations(path) if store_node is None else read_simulated_node(path.parent, store_node)
    # A simulated device with a chat or two trains on all of it; a real node refuses (split_device says why).
    split = split_device if simulated else split_validation
    train, validation = split(conversations, fraction=fraction, seed=seed)
    encoder = encoder_for(spec, cache_dir)
    train_set = build_features(train, encoder, max_messages=spec.max_messages)
    validation_set = build_features(validation, encoder, max_messages=spec.max_messages)
    seconds = time.perf_counter() - started
    log.info("node data ready: %d conversations in %.1f s", len(conversations), seconds)
    return NodeData(
        train=train_set,
        validation=validation_set,
        conversations=len(conversations),
        positives=sum(c.label for c in conversations),
        encode_seconds=seconds,
    )


def node_data(
    path: Path,
    *,
    spec: ModelSpec,
    cache_dir: str,
    validation_fraction: float,
    seed: int,
    store_node: int | None = None,
    simulated: bool = False,
) -> NodeData:
    """Load, split and featurise a node's file (or its part of a store), reusing the work while it is unchanged.

    The cache holds a few nodes per process: a worker that serves thousands of virtual
    nodes keeps the memory of eight.
    """
    try:
        mtime_ns = source_stamp(path)
    except OSError as error:
        raise DataError(f"{path}: cannot read the node's data file ({error.strerror})") from None
    return _load(path, store_node, simulated, mtime_ns, spec, cache_dir, validation_fraction, seed)
