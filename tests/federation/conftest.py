"""Shared by the scoring, behaviour and review-page tests: a small trained n-gram bundle, a private cache.

No fixture here is autouse: ``scoring/conftest.py`` applies ``private_cache`` to every
scoring test, the behaviour and review-page modules ask for it with ``pytestmark``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from federation.assessment import EarlyRule
from federation.bundle import BundleMeta, save_bundle
from federation.data.load import load_conversations
from federation.data.synthetic import SynthSettings, generate_federation
from federation.data.types import Conversation
from federation.metrics import threshold_for_fbeta
from federation.models.features import build_features
from federation.models.spec import ModelSpec, build_encoder, build_head
from federation.models.weights import load_head_arrays
from federation.models.windows import conversation_scores
from federation.training import TrainSettings, train

SPEC = ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0)


@dataclass(frozen=True)
class BundleCase:
    """A bundle folder, the data it was trained on and a held-out file."""

    model: Path
    train_file: Path
    test_file: Path
    train: list[Conversation]
    test: list[Conversation]


@pytest.fixture(scope="session")
def ngram_bundle(tmp_path_factory: pytest.TempPathFactory) -> BundleCase:
    """Train the n-gram head a little (a few seconds) and export it as a bundle."""
    root = tmp_path_factory.mktemp("bundle")
    settings = SynthSettings(seed=11, conversations_per_node=40, test_conversations=60, min_node_conversations=20)
    generate_federation(settings, node_kinds=["hotline", "police", "platform"], out_dir=root / "data")
    conversations = [c for i in range(3) for c in load_conversations(root / "data" / f"node-{i}.jsonl")]
    encoder = build_encoder(SPEC, cache=None)
    features = build_features(conversations, encoder, max_messages=SPEC.max_messages)
    head = build_head(SPEC, dim_in=encoder.dim, seed=0)
    result = train(
        head=head,
        data=features,
        settings=TrainSettings(local_epochs=20, batch_size=16, learning_rate=0.5, seed=1, optimizer="adam"),
        dp=None,
    )
    load_head_arrays(head, result.arrays)
    # Like the server's histogram thresholds, a bin edge rather than an observed score, so that
    # no window sits exactly on it (batch and streaming scores may differ in the last float bit).
    threshold = math.floor(200 * threshold_for_fbeta(features.labels, conversation_scores(head, features, window=50))) / 200
    save_bundle(
        root / "model",
        head=head,
        meta=BundleMeta(
            spec=SPEC,
            encoder_id=encoder.id,
            dim_in=encoder.dim,
            threshold=threshold,
            rule=EarlyRule(k=3, last=6, window=50),
            provenance={"run_id": "test"},
        ),
        card="# test bundle\n",
    )
    train_file = root / "data" / "train.jsonl"
    train_file.write_bytes(b"".join((root / "data" / f"node-{i}.jsonl").read_bytes() for i in range(3)))
    return BundleCase(
        model=root / "model",
        train_file=train_file,
        test_file=root / "data" / "test.jsonl",
        train=conversations,
        test=load_conversations(root / "data" / "test.jsonl"),
    )


@pytest.fixture()
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the test's embedding cache in its own folder."""
    monkeypatch.setenv("CESAGRAM_CACHE_DIR", str(tmp_path / "cache"))
