"""Conversations as model input: unique message embeddings plus per-conversation indices.

Each distinct text is encoded once and stored once; a conversation is a list of row
indices into that table, with the speaker of each message. Batches gather windows of
consecutive messages from it, padded and masked, for the heads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from federation.checks import is_integer
from federation.data.types import Conversation
from federation.errors import ConfigError, DataError
from federation.models.encoder import MessageEncoder

logger = logging.getLogger(__name__)

SPEAKER_FIRST = 0
SPEAKER_SECOND = 1
SPEAKER_OTHER = 2
NUM_SPEAKERS = 3


@dataclass(slots=True)
class Batch:
    """A padded batch of message sequences for a head.

    Attributes
    ----------
    x
        float32 ``[B, L, d]`` message embeddings; zeros at padded positions.
    mask
        bool ``[B, L]``, True where a real message is.
    speaker
        int64 ``[B, L]`` speaker index (0 first author, 1 second, 2 anyone else; 0 at
        padded positions).
    labels
        float32 ``[B]`` conversation labels (1 = grooming).
    """

    x: torch.Tensor
    mask: torch.Tensor
    speaker: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(
            x=self.x.to(device),
            mask=self.mask.to(device),
            speaker=self.speaker.to(device),
            labels=self.labels.to(device),
        )


@dataclass
class FeatureSet:
    """Encoded conversations, ready to batch.

    Attributes
    ----------
    embeddings
        float32 ``[U, d]``, one row per distinct message text.
    rows
        Per conversation, int64 row indices into ``embeddings``, one per message (the
        conversation truncated to its first ``max_messages`` messages).
    speakers
        Per conversation, int64 speaker index per message (0 = first author to speak,
        1 = second, 2 = anyone else).
    labels
        int64 ``[N]``.
    ids
        Conversation ids, in order.
    evidence_from
        int64 ``[N]`` or None: per grooming conversation, how many messages have been read
        when the first message annotated with a risk indicator has (1-based); 0 for every
        benign conversation, annotated or not, and where nothing is annotated.

    Notes
    -----
    Holds embeddings and indices only, never text or author ids, so it can be kept in
    memory by a training node without holding chat content.
    """

    embeddings: np.ndarray
    rows: list[np.ndarray]
    speakers: list[np.ndarray]
    labels: np.ndarray
    ids: list[str]
    evidence_from: np.ndarray | None = None
    _flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.rows = [np.asarray(r, dtype=np.int64).reshape(-1) for r in self.rows]
        self.speakers = [np.asarray(s, dtype=np.int64).reshape(-1) for s in self.speakers]
        self.ids = [str(i) for i in self.ids]
        n = len(self.ids)
        if self.evidence_from is not None:
            self.evidence_from = np.asarray(self.evidence_from, dtype=np.int64).reshape(-1)
            if self.evidence_from.shape != (n,):
                raise DataError(f"feature set has {n} ids but {self.evidence_from.size} evidence positions")
        if self.embeddings.ndim != 2:
            raise DataError(
                f"feature embeddings must be 2-D [U, d], got shape {self.embeddings.shape}"
            )
        if not len(self.rows) == len(self.speakers) == len(self.labels) == n:
            raise DataError(
                f"feature set is inconsistent: {n} ids, {len(self.rows)} row lists, "
                f"{len(self.speakers)} speaker lists, {len(self.labels)} labels"
            )
        for position, (r, s) in enumerate(zip(self.rows, self.speakers, strict=True)):
            if r.shape != s.shape:
                raise DataError(
                    f"feature set conversation #{position}: {r.size} rows but {s.size} speakers"
                )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """Embedding length ``d``."""
        return int(self.embeddings.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """int64 ``[N]``: messages per conversation (after truncation)."""
        return self._flat_view()[0].copy()

    def subset(self, indices: Sequence[int] | np.ndarray) -> FeatureSet:
        """The conversations at ``indices``, sharing this set's embedding table."""
        picked = self._check_indices(indices)
        return FeatureSet(
            embeddings=self.embeddings,
            rows=[self.rows[i] for i in picked],
            speakers=[self.speakers[i] for i in picked],
            labels=self.labels[picked],
            ids=[self.ids[i] for i in picked],
            evidence_from=None if self.evidence_from is None else self.evidence_from[picked],
        )

    def joined(self, other: FeatureSet) -> FeatureSet:
        """This set's conversations followed by ``other``'s (the black-box audit's canaries join a node's)."""
        if other.dim != self.dim:
            raise DataError(f"cannot join feature sets of {self.dim} and {other.dim} dimensions")
        offset = self.embeddings.shape[0]
        evidence = (
            None
            if self.evidence_from is None and other.evidence_from is None
            else np.concatenate([_evidence(self), _evidence(other)])
        )
        return FeatureSet(
            embeddings=np.concatenate([self.embeddings, other.embeddings]),
            rows=[*self.rows, *(r + offset for r in other.rows)],
            speakers=[*self.speakers, *other.speakers],
            labels=np.concatenate([self.labels, other.labels]),
            ids=[*self.ids, *other.ids],
            evidence_from=evidence,
        )

    def batch(
        self,
        indices: Sequence[int] | np.ndarray,
        *,
        window: int | None = None,
        ends: Sequence[int] | np.ndarray | None = None,
    ) -> Batch:
        """Gather conversations (or stretches of them) into one padded batch.

        Parameters
        ----------
        indices
            Conversation positions; repeats are allowed (one row each).
        window
            Keep at most this many messages ending at ``ends[i]``; ``None`` keeps all
            messages up to ``ends[i]``.
        ends
            1-based count of messages read, per entry of ``indices``: entry ``i`` covers
            messages ``(ends[i] - window, ends[i]]``. ``None`` means the whole
            (truncated) conversation.

        Returns
        -------
        Batch
            Padded to the longest selected stretch; ``B = 0`` gives tensors of shape
            ``[0, 0, d]``, ``[0, 0]`` and ``[0]``.
        """
        picked = self._check_indices(indices)
        lengths = self._flat_view()[0][picked]
        if ends is None:
            stops = lengths
        else:
            stops = np.asarray(ends, dtype=np.int64).reshape(-1)
            if stops.shape != picked.shape:
                raise ValueError(f"ends has {stops.size} entries for {picked.size} indices")
            bad = np.flatnonzero((stops < 0) | (stops > lengths))
            if bad.size:
                first = int(bad[0])
                raise ValueError(
                    f"ends[{first}] = {int(stops[first])} is outside 0..{int(lengths[first])}, "
                    f"the length of conversation #{int(picked[first])}"
                )
        if window is None:
            starts = np.zeros_like(stops)
        else:
            if not is_integer(window) or window < 1:
                raise ConfigError(f"window must be a positive integer, got {window!r}")
            starts = np.maximum(stops - int(window), 0)
        return self._gather(picked, starts, stops)

    # -- internals --------------------------------------------------------------------

    def _check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        picked = np.asarray(indices, dtype=np.int64).reshape(-1)
        if picked.size and (picked.min() < 0 or picked.max() >= len(self)):
            raise IndexError(f"conversation index out of range 0..{len(self) - 1}")
        return picked

    def _flat_view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lengths, start offsets, and all rows and speakers concatenated (computed once)."""
        if self._flat is None:
            lengths = np.fromiter((r.size for r in self.rows), dtype=np.int64, count=len(self.rows))
            offsets = np.zeros(len(lengths), dtype=np.int64)
            if len(lengths) > 1:
                np.cumsum(lengths[:-1], out=offsets[1:])
            empty = np.zeros(0, np.int64)
            flat_rows = np.concatenate(self.rows) if self.rows else empty
            flat_speakers = np.concatenate(self.speakers) if self.speakers else empty
            self._flat = (lengths, offsets, flat_rows, flat_speakers)
        return self._flat

    def _gather(self, picked: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> Batch:
        _, offsets, flat_rows, flat_speakers = self._flat_view()
        spans = stops - starts
        width = int(spans.max()) if spans.size else 0
        position = np.arange(width, dtype=np.int64)
        mask = position[None, :] < spans[:, None]
        take = np.where(mask, (offsets[picked] + starts)[:, None] + position[None, :], 0)
        if flat_rows.size:
            rows = np.where(mask, flat_rows[take], 0)
            speaker = np.where(mask, flat_speakers[take], 0)
        else:
            rows = np.zeros(take.shape, dtype=np.int64)
            speaker = np.zeros(take.shape, dtype=np.int64)
        if self.embeddings.shape[0]:
            x = self.embeddings[rows]
            x[~mask] = 0.0
        else:
            x = np.zeros((*rows.shape, self.dim), dtype=np.float32)
        return Batch(
            x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            mask=torch.from_numpy(mask),
            speaker=torch.from_numpy(speaker.astype(np.int64)),
            labels=torch.from_numpy(self.labels[picked].astype(np.float32)),
        )


def speaker_indices(conversation: Conversation, count: int) -> np.ndarray:
    """Speaker index per message of the first ``count`` messages.

    0 is the first author to speak, 1 the second and 2 anyone after them; author ids
    themselves are dropped here.
    """
    order: dict[str, int] = {}
    out = np.empty(min(count, len(conversation.messages)), dtype=np.int64)
    for position, message in enumerate(conversation.messages[:count]):
        index = order.setdefault(message.author, len(order))
        out[position] = min(index, SPEAKER_OTHER)
    return out


def _evidence(features: FeatureSet) -> np.ndarray:
    """``evidence_from``, zeros where the set has none."""
    if features.evidence_from is None:
        return np.zeros(len(features), dtype=np.int64)
    return features.evidence_from


def build_features(
    conversations: Sequence[Conversation],
    encoder: MessageEncoder,
    *,
    max_messages: int = 150,
) -> FeatureSet:
    """Encode conversations into a :class:`FeatureSet`.

    Parameters
    ----------
    conversations
        Labelled conversations.
    encoder
        Called once, on the distinct texts of the kept messages.
    max_messages
        Keep each conversation's first ``max_messages`` messages.

    Returns
    -------
    FeatureSet

    Notes
    -----
    The feature set keeps no text and no author id: texts become embedding rows and
    authors become speaker indices 0/1/2.
    """
    if not is_integer(max_messages, numpy=False) or max_messages < 1:
        raise ConfigError(f"model.max_messages must be a positive integer, got {max_messages!r}")
    table: dict[str, int] = {}
    evidence_from = np.zeros(len(conversations), dtype=np.int64)
    rows: list[np.ndarray] = []
    speakers: list[np.ndarray] = []
    for position, conversation in enumerate(conversations):
        kept = conversation.messages[:max_messages]
        if conversation.label == 1:  # a benign chat may quote an indicator: its windows stay unrestricted
            evidence_from[position] = next((i + 1 for i, m in enumerate(kept) if m.indicators), 0)
        rows.append(
            np.fromiter(
                (table.setdefault(m.text, len(table)) for m in kept),
                dtype=np.int64,
                count=len(kept),
            )
        )
        speakers.append(speaker_indices(conversation, max_messages))
    embeddings = np.asarray(encoder.encode(list(table)), dtype=np.float32)
    if embeddings.shape != (len(table), encoder.dim):
        raise DataError(
            f"encoder {encoder.id} returned shape {embeddings.shape} for {len(table)} texts "
            f"(expected ({len(table)}, {encoder.dim}))"
        )
    logger.debug(
        "built features for %d conversations: %d messages, %d distinct texts",
        len(rows), sum(r.size for r in rows), len(table),
    )
    return FeatureSet(
        embeddings=embeddings,
        rows=rows,
        speakers=speakers,
        labels=np.array([int(c.label) for c in conversations], dtype=np.int64),
        ids=[c.id for c in conversations],
        evidence_from=evidence_from,
    )
