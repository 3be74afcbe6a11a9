"""The default federation: its size for the encoder cache, and how hard it is for a bag of words.

The only test on default settings. It generates once (the time is printed, not asserted), then checks that the task is
neither trivial nor noise: a hashed word 1-2-gram logistic regression trained on the node
files must rank ``test.jsonl`` well above chance without being perfect, and message count alone
must not separate the classes. Run with ``-s`` to see the measured figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from federation.data.chitchat import background_pool
from federation.data.synthetic import SynthSettings, generate_federation

DEFAULT_KINDS = ["hotline", "hotline", "police", "police", "platform"]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def default_federation(tmp_path_factory) -> tuple[Path, dict, float]:
    out = tmp_path_factory.mktemp("default")
    started = time.perf_counter()
    manifest = generate_federation(SynthSettings(), node_kinds=DEFAULT_KINDS, out_dir=out)
    return out, manifest, time.perf_counter() - started


def test_default_federation_is_quick_to_generate_and_bounded_in_distinct_texts(default_federation):
    _, manifest, seconds = default_federation
    total = sum(node["conversations"] for node in manifest["nodes"]) + manifest["test"]["conversations"]
    messages = sum(node["messages"] for node in manifest["nodes"]) + manifest["test"]["messages"]
    print(
        f"\ndefault federation: {total} conversations, {messages} messages, "
        f"{manifest['distinct_texts']} distinct texts, generated in {seconds:.2f} s"
    )
    assert total == 5 * 220 + 300
    # Real chit-chat is most of the text: bounded by the corpus parts it comes from. The
    # scripted lines on top stay varied, yet cheap to encode and cache. The federation writes
    # from the private half of each bank line's alternatives (the public half is the server's
    # pretraining set's): 2,704 scripted texts at generator 2.1, about 4,000 before the split.
    real = {m.text for part in ("nodes", "test") for c in background_pool(part) for m in c.messages}
    out, _, _ = default_federation
    texts = {m["text"] for path in out.glob("*.jsonl") for r in _records(path) for m in r["messages"]}
    assert len(texts) == manifest["distinct_texts"]
    assert 2000 <= len(texts - real) <= 12000


def test_a_bag_of_words_baseline_does_well_but_not_perfectly(default_federation):
    out, manifest, _ = default_federation
    train = [r for node in manifest["nodes"] for r in _records(out / node["file"])]
    test = _records(out / "test.jsonl")
    vectorizer = HashingVectorizer(ngram_range=(1, 2), n_features=2**18, alternate_sign=False)

    def features(records: list[dict]):
        return vectorizer.transform(["\n".join(m["text"] for m in r["messages"]) for r in records])

    model = LogisticRegression(max_iter=2000).fit(features(train), [r["label"] for r in train])
    labels = np.array([r["label"] for r in test])
    scores = model.predict_proba(features(test))[:, 1]
    f1 = f1_score(labels, scores >= 0.5)
    auprc = average_precision_score(labels, scores)
    lengths = np.array([len(r["messages"]) for r in test])
    length_auroc = roc_auc_score(labels, lengths)
    print(f"\nbag of words on test.jsonl: F1 {f1:.3f}, AUPRC {auprc:.3f}; message-count AUROC {length_auroc:.3f}")
    prevalence = labels.mean()
    assert prevalence + 0.3 < auprc < 0.95  # learnable, and room left for a better model
    assert length_auroc < 0.8
