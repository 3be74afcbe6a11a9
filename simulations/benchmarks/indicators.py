"""Benchmark: precision and recall of the per-message risk-indicator detector.

Usage::

    python simulations/benchmarks/indicators.py [--encoder minilm|ngram|both] [--calibrate]

Two synthetic federations are generated with different seeds: a *calibration* set, on
which the per-code thresholds are fitted (``--calibrate`` prints them, ready to paste into
``federation.scoring.indicators.CALIBRATED_THRESHOLDS``), and a *held-out* set, on which
the shipped thresholds and the freshly fitted ones are measured against the generator's
annotations. Prototype phrases are checked not to occur verbatim in the held-out set.

Caveat printed with the figures: both sets come from the same generator and phrase banks,
so the held-out texts are new draws of the same paraphrases, not new language. Real chats
will score lower; the figures bound what the detector can do on this synthetic task.

MiniLM embeddings go through the embedding cache (``$CESAGRAM_CACHE_DIR``), so a second
run is fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from federation.data.indicators import INDICATOR_CODES
from federation.data.load import load_conversations
from federation.data.synthetic import SynthSettings, generate_federation
from federation.data.types import Conversation
from federation.models.cache import EmbeddingCache, default_cache_path
from federation.models.spec import ModelSpec, build_encoder
from federation.scoring.indicators import (
    CALIBRATED_THRESHOLDS,
    PROTOTYPES,
    IndicatorDetector,
    calibrate_thresholds,
    indicator_metrics,
)

KINDS = ("hotline", "police", "platform")
SPECS = {
    "minilm": ModelSpec(name="minilm", hidden=128, window=3, dropout=0.1),
    "ngram": ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0),
}


def synthetic_set(seed: int, per_node: int, folder: Path) -> list[Conversation]:
    """Every conversation (node files and test file) of one synthetic federation."""
    settings = SynthSettings(seed=seed, conversations_per_node=per_node, test_conversations=per_node)
    generate_federation(settings, node_kinds=KINDS, out_dir=folder)
    return [c for path in sorted(folder.glob("*.jsonl")) for c in load_conversations(path)]


def messages(conversations: list[Conversation], *, grooming_only: bool = False) -> tuple[list[str], list[tuple[str, ...]]]:
    picked = [c for c in conversations if c.label == 1 or not grooming_only]
    return [m.text for c in picked for m in c.messages], [m.indicators for c in picked for m in c.messages]


def table(title: str, metrics: dict[str, dict[str, float | int]]) -> str:
    lines = [title, f"  {'indicator':<18}{'support':>8}{'precision':>11}{'recall':>8}{'F1':>7}"]
    for code in (*INDICATOR_CODES, "micro"):
        m = metrics[code]
        lines.append(f"  {code:<18}{m['support']:>8}{m['precision']:>11.3f}{m['recall']:>8.3f}{m['f1']:>7.3f}")
    return "\n".join(lines)


def run(
    family: str, calibration: list[Conversation], heldout: list[Conversation], *, calibrate: bool, beta: float
) -> dict:
    encoder = build_encoder(SPECS[family], cache=EmbeddingCache(default_cache_path()))
    started = time.perf_counter()
    detector = IndicatorDetector.for_encoder(encoder)
    # Fitted where evidence is read: the messages of grooming conversations (flagged ones, mostly).
    cal_texts, cal_truth = messages(calibration, grooming_only=True)
    fitted = calibrate_thresholds(detector.similarities(encoder.encode(cal_texts)), cal_truth, beta=beta)
    out: dict = {"encoder": encoder.id, "fitted_thresholds": fitted}
    for scope, grooming_only in (("all held-out messages", False), ("messages of grooming conversations", True)):
        texts, truth = messages(heldout, grooming_only=grooming_only)
        sims = detector.similarities(encoder.encode(texts))
        for name, detector_thresholds in (("shipped", detector), ("fitted now", detector.with_thresholds(fitted))):
            predicted = detector_thresholds.detect_from_similarities(sims)
            metrics = indicator_metrics(predicted, truth)
            out[f"{scope} / {name}"] = metrics
            print(table(f"[{family}] {scope}, {name} thresholds ({len(texts)} messages)", metrics))
    out["seconds"] = time.perf_counter() - started
    if calibrate:
        print(f"\n# paste into CALIBRATED_THRESHOLDS[{family!r}]:")
        print(json.dumps(fitted, indent=4))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", choices=("minilm", "ngram", "both"), default="both")
    parser.add_argument("--calibrate", action="store_true", help="print the fitted thresholds to paste")
    parser.add_argument("--beta", type=float, default=0.5, help="F-beta the thresholds are fitted for")
    parser.add_argument("--per-node", type=int, default=150, help="conversations per node of each synthetic set")
    parser.add_argument("--calibration-seed", type=int, default=101)
    parser.add_argument("--heldout-seed", type=int, default=202)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        calibration = synthetic_set(args.calibration_seed, args.per_node, Path(tmp) / "calibration")
        heldout = synthetic_set(args.heldout_seed, args.per_node, Path(tmp) / "heldout")
    heldout_texts = {m.text.lower() for c in heldout for m in c.messages}
    overlap = sum(p.lower() in heldout_texts for phrases in PROTOTYPES.values() for p in phrases)
    print(
        f"calibration: {len(calibration)} conversations (seed {args.calibration_seed}); held-out: {len(heldout)} "
        f"conversations (seed {args.heldout_seed}); prototype phrases found verbatim in held-out texts: {overlap}"
    )
    print("caveat: both sets come from the same synthetic phrase banks; real chats will score lower.\n")
    families = ("minilm", "ngram") if args.encoder == "both" else (args.encoder,)
    results = {family: run(family, calibration, heldout, calibrate=args.calibrate, beta=args.beta) for family in families}
    results["shipped_thresholds"] = CALIBRATED_THRESHOLDS
    results["prototype_overlap"] = overlap
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
