"""The trained model bundle: everything scoring needs except the encoder.

Layout of a bundle folder::

    weights.safetensors   the head's weights
    model.json            model spec, encoder id, threshold, early-warning rule, provenance
    MODEL_CARD.md         data, privacy guarantee, metrics, threshold, intended and forbidden use

The encoder comes from its installed package and is checked by id (name and a hash of its
weights): a bundle trained with another encoder is refused.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from federation.assessment import EarlyRule
from federation.errors import CesagramError, ConfigError, ModelBundleError
from federation.io import atomic_write_json, atomic_write_text
from federation.models.spec import ModelSpec, build_head
from federation.models.weights import load_weights, save_weights

FORMAT_VERSION = 3  # 2: heads gained max pooling; 3: the compact head scores each message (MessageScoreHead)
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
CARD_FILE = "MODEL_CARD.md"


@dataclass(frozen=True)
class BundleMeta:
    """What ``model.json`` holds."""

    spec: ModelSpec
    encoder_id: str
    dim_in: int
    threshold: float
    rule: EarlyRule
    provenance: dict[str, Any]


def save_bundle(directory: Path, *, head: nn.Module, meta: BundleMeta, card: str) -> Path:
    """Write a bundle folder (each file atomically)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_weights(directory / WEIGHTS_FILE, head)
    atomic_write_json(
        directory / META_FILE,
        {
            "format_version": FORMAT_VERSION,
            "spec": dataclasses.asdict(meta.spec),
            "encoder_id": meta.encoder_id,
            "dim_in": meta.dim_in,
            "threshold": meta.threshold,
            "early_rule": dataclasses.asdict(meta.rule),
            "provenance": meta.provenance,
        },
    )
    atomic_write_text(directory / CARD_FILE, card)
    return directory


def read_meta(directory: Path) -> BundleMeta:
    """Read and validate ``model.json``; ModelBundleError names what is wrong."""
    path = directory / META_FILE
    if not directory.is_dir():
        raise ModelBundleError(f"{directory}: no such model bundle folder")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelBundleError(f"{path}: missing; is {directory} a model bundle (the run's model/ folder)?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelBundleError(f"{path}: unreadable or corrupt ({type(error).__name__})") from None
    try:
        if raw["format_version"] != FORMAT_VERSION:
            raise ModelBundleError(
                f"{path}: format_version {raw['format_version']!r} is not supported (expected {FORMAT_VERSION})"
            )
        return BundleMeta(
            spec=ModelSpec(**raw["spec"]),
            encoder_id=str(raw["encoder_id"]),
            dim_in=int(raw["dim_in"]),
            threshold=float(raw["threshold"]),
            rule=EarlyRule(**raw["early_rule"]),
            provenance=dict(raw.get("provenance", {})),
        )
    except ModelBundleError:
        raise
    except (KeyError, TypeError, ValueError, ConfigError) as error:
        raise ModelBundleError(f"{path}: invalid bundle metadata ({type(error).__name__}: {error})") from None


def load_bundle(directory: Path, *, encoder_id: str) -> tuple[BundleMeta, nn.Module]:
    """Load a bundle's metadata and head, refusing one trained with another encoder."""
    meta = read_meta(directory)
    if meta.encoder_id != encoder_id:
        raise ModelBundleError(
            f"{directory}: trained with encoder {meta.encoder_id!r} but the installed one is {encoder_id!r}; "
            "install the matching encoder package or retrain"
        )
    head = build_head(meta.spec, dim_in=meta.dim_in, seed=0)
    try:
        load_weights(directory / WEIGHTS_FILE, head)
    except CesagramError as error:
        raise ModelBundleError(f"{directory / WEIGHTS_FILE}: {error}") from None
    except Exception as error:  # noqa: BLE001 - safetensors raises several types on corrupt files
        raise ModelBundleError(f"{directory / WEIGHTS_FILE}: unreadable or corrupt ({type(error).__name__})") from None
    head.eval()
    return meta, head
