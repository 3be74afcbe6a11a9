"""Encode a simulated federation's texts once, before the nodes start, into the shared embedding cache.

In a simulation the researcher holds every node's data on one machine, and the virtual
nodes run inside Flower's runtime, where no progress can be shown. Encoding the distinct
texts of every node file and of the test file here, in the launcher, puts the slow part
where a progress bar can follow it; the nodes then find every vector in the cache (keyed
by a hash of the text and the encoder id, so the vectors are the ones they would compute).
Real nodes encode their own data: nothing here runs in production.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from federation.data.load import load_conversations
from federation.data.nodes import read_simulated_node
from federation.data.types import Conversation
from federation.errors import DataError
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.models.encoder import MiniLMEncoder
from federation.models.spec import build_encoder
from federation.data.synthetic.public import public_conversations
from federation.pretrain import public_set_settings
from federation.runconfig import RunSettings

__all__ = ["CHUNK_TEXTS", "encode_ahead", "run_cache"]

log = logging.getLogger(__name__)

#: Texts per encoder call, to bound the memory of the returned vectors.
CHUNK_TEXTS = 50_000


def run_cache(settings: RunSettings) -> EmbeddingCache:
    """The embedding cache a run's nodes and baselines use."""
    return EmbeddingCache(cache_path_for(settings.cache_dir))


def _run_conversations(settings: RunSettings) -> Iterator[Conversation]:
    """Every node's conversations, node by node, then the test file's; data a node will refuse is skipped."""
    readers: list[Callable[[], list[Conversation]]] = [
        partial(read_simulated_node, Path(settings.data_dir), i) for i in range(settings.nodes)
    ]
    if settings.test_path:
        readers.append(partial(load_conversations, Path(settings.test_path)))
    for read in readers:
        try:
            yield from read()
        except DataError:
            continue  # the node refuses its data itself and the report says why


def encode_ahead(settings: RunSettings, *, on_progress: Callable[[int, int], None] | None) -> dict[str, float] | None:
    """Encode the run's distinct texts into the cache; ``None`` for an encoder without a cache (n-grams).

    Returns the number of distinct texts, how many were encoded (the others were cached)
    and the seconds it took, for the report's timing.
    """
    encoder = build_encoder(settings.model, cache=run_cache(settings))
    if not isinstance(encoder, MiniLMEncoder) or encoder.cache is None:
        return None
    started = time.perf_counter()
    texts: dict[str, None] = {}
    for conversation in _run_conversations(settings):
        texts.update((m.text, None) for m in conversation.messages[: settings.model.max_messages])
    if settings.pretrain.enabled and settings.mode == "federated":
        for conversation in public_conversations(public_set_settings(settings)):  # the server's pretraining set
            texts.update((m.text, None) for m in conversation.messages[: settings.model.max_messages])
    distinct = list(texts)
    encoder.on_progress = on_progress
    for first in range(0, len(distinct), CHUNK_TEXTS):
        encoder.encode(distinct[first : first + CHUNK_TEXTS])
    seconds = time.perf_counter() - started
    log.info("encoded %d of %d distinct texts ahead of the nodes in %.1f s", encoder.stats.encoded, len(distinct), seconds)
    return {"texts": float(len(distinct)), "encoded": float(encoder.stats.encoded), "seconds": seconds}
