"""A trained model bundle made ready to score: its head, its rule and the matching encoder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from federation.assessment import EarlyRule
from federation.bundle import BundleMeta, load_bundle, read_meta
from federation.errors import ModelBundleError
from federation.models.cache import EmbeddingCache
from federation.models.encoder import MessageEncoder
from federation.models.spec import ModelSpec, build_encoder

__all__ = ["ScoringModel", "load_scoring_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringModel:
    """Everything a scorer needs, loaded once.

    Attributes
    ----------
    directory
        The bundle folder it came from.
    meta
        The bundle's ``model.json``: spec, encoder id, threshold and warning rule.
    head
        The trained head, in eval mode.
    encoder
        The installed encoder whose id matches the bundle's.
    """

    directory: Path
    meta: BundleMeta
    head: nn.Module
    encoder: MessageEncoder

    @property
    def spec(self) -> ModelSpec:
        return self.meta.spec

    @property
    def threshold(self) -> float:
        """A window score at or above this is a positive decision (F0.5-optimal on validation)."""
        return self.meta.threshold

    @property
    def rule(self) -> EarlyRule:
        """The eSPD warning rule: ``k`` positive decisions among the ``last``, windows of ``window``."""
        return self.meta.rule

    @property
    def window(self) -> int:
        """Messages per scored window (the same as in the run's assessment)."""
        return self.meta.rule.window

    @property
    def max_messages(self) -> int:
        """Messages kept from the start of a conversation, as in training."""
        return self.meta.spec.max_messages


def load_scoring_model(directory: Path, *, cache: EmbeddingCache | None) -> ScoringModel:
    """Load a bundle and build the encoder it was trained with.

    Parameters
    ----------
    directory
        The bundle folder (a run's ``model/``).
    cache
        Embedding cache for the MiniLM encoder (``None``: encode every text).

    Raises
    ------
    ModelBundleError
        When the folder, ``model.json`` or the weights are missing or corrupt, or the
        installed encoder is not the one the bundle was trained with (its id names the
        model and a hash of its weights): one line naming the file and the fix.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    encoder = build_encoder(meta.spec, cache=cache)
    meta, head = load_bundle(directory, encoder_id=encoder.id)
    if encoder.dim != meta.dim_in:
        raise ModelBundleError(
            f"{directory}: the head expects {meta.dim_in}-dimensional embeddings but encoder {encoder.id} "
            f"gives {encoder.dim}; the bundle's model.json is inconsistent, export the bundle again"
        )
    logger.debug("loaded model bundle %s (encoder %s, threshold %.4f)", directory, encoder.id, meta.threshold)
    return ScoringModel(directory=directory, meta=meta, head=head, encoder=encoder)
