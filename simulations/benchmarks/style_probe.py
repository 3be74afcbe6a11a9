"""Benchmark: can the synthetic classes be told apart by anything but their scripted content?

Usage::

    python -m simulations.benchmarks.style_probe [--dir FEDERATION] [--seed 0] [--per-node 2000] [--test 1000]

A hashed word 1-2-gram logistic regression is trained on the node files and scored on the
held-out ``test.jsonl`` three times:

* on whole conversations (the bag-of-words baseline every learned model must beat);
* with every indicator-bearing message removed (the groomer's annotated lines): what is
  left still holds the scripted replies around them (a child's age, "ok i won't tell"),
  so this probe measures how much of the signal sits outside the annotated lines;
* on the real background alone: every scripted line removed, keeping the real chit-chat
  each conversation is woven into (from its provenance) and the real benign chats. This
  is the style probe of issue 9: its AUPRC must stay within 0.1 of the test prevalence,
  or the classes differ in their language and typing, not only in their content.

Nothing here reads the reserved quarter of the chitchat corpus.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from federation.data.chitchat import ID_PREFIX, load_chitchat
from federation.data.synthetic import SynthSettings, generate_federation
from federation.data.synthetic.background import EXCERPT
from conf.settings import node_kinds
from simulations.compose import compose

Keep = Callable[[dict, dict], bool]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _background_texts() -> dict[str, set[str]]:
    return {c.id[len(ID_PREFIX) :]: {m.text for m in c.messages[:EXCERPT]} for c in load_chitchat()}


def _probe(train: list[dict], test: list[dict], keep: Keep) -> float:
    vectorizer = HashingVectorizer(ngram_range=(1, 2), n_features=2**18, alternate_sign=False)

    def features(records: list[dict]):  # type: ignore[no-untyped-def]
        return vectorizer.transform(["\n".join(m["text"] for m in r["messages"] if keep(r, m)) for r in records])

    model = LogisticRegression(max_iter=3000).fit(features(train), [r["label"] for r in train])
    return float(average_precision_score([r["label"] for r in test], model.predict_proba(features(test))[:, 1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", type=Path, help="an existing synthetic federation (default: generate one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-node", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir
        if folder is None:
            folder = Path(scratch)
            settings = SynthSettings(seed=args.seed, conversations_per_node=args.per_node, test_conversations=args.test)
            generate_federation(settings, node_kinds=node_kinds(compose([])), out_dir=folder)
        train = [r for path in sorted(folder.glob("node-*.jsonl")) for r in _records(path)]
        test = _records(folder / "test.jsonl")
    background = _background_texts()

    def real(record: dict, message: dict) -> bool:
        keys = record.get("synthetic", {}).get("background", [])
        return any(message["text"] in background[key] for key in keys)

    prevalence = float(np.mean([r["label"] for r in test]))
    whole = _probe(train, test, lambda r, m: True)
    unannotated = _probe(train, test, lambda r, m: not m.get("indicators"))
    style = _probe(train, test, real)
    print(f"federation: {len(train)} training and {len(test)} test conversations; test prevalence {prevalence:.3f}")
    print(f"bag of words, whole conversations:            AUPRC {whole:.3f}")
    print(f"bag of words, indicator lines removed:        AUPRC {unannotated:.3f}")
    verdict = "near chance" if style - prevalence <= 0.1 else "NOT near chance"
    print(
        f"style probe, real background only:            AUPRC {style:.3f} "
        f"(target: within 0.1 of the prevalence {prevalence:.3f}; {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
