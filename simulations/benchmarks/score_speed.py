"""Benchmark: how fast analysts' scoring runs, against the raw encoder on the same machine.

Usage::

    python simulations/benchmarks/score_speed.py [--model DIR | --encoder minilm|ngram]
        [--conversations 60] [--threads 2] [--json FILE]

Prints, for the same synthetic messages (conversations interleaved as a live feed would
mix them, :mod:`simulations.live_feed`):

* the raw encoder's throughput, texts encoded in batches with no cache (the ceiling) and
  one text per call (what a strictly one-at-a-time scorer would pay);
* ``--follow`` throughput (:func:`federation.scoring.follow.follow` on the whole stream,
  with an empty embedding cache, so every text is really encoded) and its ratio to the
  batched raw encoder: the goal is at least 0.7 (raw encoder and ``--follow`` alternate,
  best of ``--repeat`` each, so a shared machine's load weighs on both alike);
* ``--follow`` with one line per read (a live producer): messages per second and the
  mean time from a line's arrival to its score;
* batch scoring (``cesagram score``) in conversations per second, cold and warm cache.

Without ``--model`` a bundle with an untrained head of the default shape is written to a
temporary folder: speed hardly depends on the weights (a trained head flags more, and
explaining a flagged conversation costs one more forward pass). Model loading is timed
apart. The machine's load average is printed with the figures: on a shared machine they
swing with what else runs.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from federation.assessment import EarlyRule
from federation.bundle import BundleMeta, save_bundle
from federation.data.load import load_conversations
from federation.data.synthetic import SynthSettings, generate_federation
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.models.spec import ModelSpec, build_encoder, build_head
from federation.scoring.follow import StreamScorer, follow
from federation.scoring.indicators import IndicatorDetector
from federation.scoring.model import ScoringModel, load_scoring_model
from federation.scoring.scorer import Scorer
from simulations.live_feed import Trickle, feed_bytes, interleaved

SPECS = {
    "minilm": ModelSpec(name="minilm", hidden=128, window=3, dropout=0.1),
    "ngram": ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0),
}


def untrained_bundle(family: str, folder: Path) -> Path:
    spec = SPECS[family]
    encoder = build_encoder(spec, cache=None)
    head = build_head(spec, dim_in=encoder.dim, seed=0)
    meta = BundleMeta(
        spec=spec, encoder_id=encoder.id, dim_in=encoder.dim, threshold=0.5, rule=EarlyRule(), provenance={}
    )
    return save_bundle(folder / "model", head=head, meta=meta, card="# speed benchmark bundle (untrained)\n")


def fresh_model(bundle: Path, cache_dir: Path) -> ScoringModel:
    return load_scoring_model(bundle, cache=EmbeddingCache(cache_path_for(cache_dir)))


def timed(function) -> tuple[float, object]:  # noqa: ANN001
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a bundle folder; default: an untrained bundle of --encoder")
    parser.add_argument("--encoder", choices=tuple(SPECS), default="minilm")
    parser.add_argument("--conversations", type=int, default=60, help="synthetic conversations to score")
    parser.add_argument("--single", type=int, default=200, help="messages for the one-text-per-call figures")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs of the encoder and --follow")
    parser.add_argument("--seed", type=int, default=404)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    figures: dict[str, float | int | str] = {"threads": args.threads, "load_average_before": os.getloadavg()[0]}

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = SynthSettings(
            seed=args.seed, conversations_per_node=20, test_conversations=args.conversations, min_node_conversations=20
        )
        generate_federation(settings, node_kinds=["hotline", "police", "platform"], out_dir=tmp / "data")
        conversations = load_conversations(tmp / "data" / "test.jsonl")
        bundle = args.model or untrained_bundle(args.encoder, tmp)
        records = interleaved(conversations, seed=args.seed)
        stream = feed_bytes(records)
        texts = [r["text"] for r in records]
        figures.update(messages=len(texts), distinct_texts=len(set(texts)), conversations=len(conversations))

        load_s, model = timed(lambda: fresh_model(bundle, tmp / "cache-load"))
        model.encoder.encode(["warm up the encoder"])  # loads MiniLM weights: not part of any figure below
        figures.update(encoder=model.encoder.id, load_seconds=load_s)

        raw = build_encoder(model.spec, cache=None)
        raw.encode(["warm up"])
        detector = IndicatorDetector.for_encoder(model.encoder)
        single = texts[: args.single]
        best = {"raw": 0.0, "single": 0.0, "follow": 0.0}
        # Raw encoder and --follow alternate, best of --repeat each: a shared machine's load
        # then weighs on both alike.
        for attempt in range(args.repeat):
            seconds, _ = timed(lambda: raw.encode(texts))
            best["raw"] = max(best["raw"], len(texts) / seconds)
            seconds, _ = timed(lambda: [raw.encode([t]) for t in single])
            best["single"] = max(best["single"], len(single) / seconds)
            scorer = StreamScorer(fresh_model(bundle, tmp / f"cache-follow-{attempt}"), detector=detector)
            seconds, summary = timed(
                lambda scorer=scorer: follow(
                    io.BytesIO(stream), io.StringIO(), scorer=scorer, name="bench", report=lambda line: None
                )
            )
            best["follow"] = max(best["follow"], summary.messages / seconds)
            figures["follow_warnings"] = summary.warnings
        figures["raw_batched_msgs_per_s"] = best["raw"]
        figures["raw_single_msgs_per_s"] = best["single"]
        figures["follow_msgs_per_s"] = best["follow"]
        figures["follow_over_raw_batched"] = best["follow"] / best["raw"]

        model = fresh_model(bundle, tmp / "cache-trickle")
        scorer = StreamScorer(model, detector=detector)
        head_lines = b"".join(stream.splitlines(keepends=True)[: args.single])
        seconds, summary = timed(
            lambda: follow(Trickle(head_lines), io.StringIO(), scorer=scorer, name="bench", report=lambda line: None)
        )
        figures["follow_live_msgs_per_s"] = summary.messages / seconds
        figures["follow_live_ms_per_msg"] = 1000 * seconds / max(summary.messages, 1)
        figures["follow_live_over_raw_single"] = figures["follow_live_msgs_per_s"] / figures["raw_single_msgs_per_s"]

        model = fresh_model(bundle, tmp / "cache-batch")
        batch = Scorer(model, detector=detector)
        seconds, _ = timed(lambda: batch.score(conversations))
        figures["batch_cold_convs_per_s"] = len(conversations) / seconds
        seconds, _ = timed(lambda: batch.score(conversations))
        figures["batch_warm_convs_per_s"] = len(conversations) / seconds

    figures["load_average_after"] = os.getloadavg()[0]
    print(
        f"encoder {figures['encoder']}, torch threads {args.threads}, bundle load {figures['load_seconds']:.2f} s, "
        f"machine load average {figures['load_average_before']:.1f} before, {figures['load_average_after']:.1f} after"
    )
    print(
        f"{figures['messages']} messages ({figures['distinct_texts']} distinct texts) "
        f"of {figures['conversations']} synthetic conversations"
    )
    rows = [
        ("raw encoder, batched, no cache", f"{figures['raw_batched_msgs_per_s']:.1f} msg/s"),
        (f"raw encoder, one text per call ({args.single})", f"{figures['raw_single_msgs_per_s']:.1f} msg/s"),
        ("score --follow, piped stream, empty cache", f"{figures['follow_msgs_per_s']:.1f} msg/s"),
        ("  ratio to batched raw encoder (goal >= 0.7)", f"{figures['follow_over_raw_batched']:.2f}"),
        (f"score --follow, one line per read ({args.single})", f"{figures['follow_live_msgs_per_s']:.1f} msg/s"),
        ("  time per message", f"{figures['follow_live_ms_per_msg']:.1f} ms"),
        ("  ratio to one-text raw encoder", f"{figures['follow_live_over_raw_single']:.2f}"),
        ("batch score, empty cache", f"{figures['batch_cold_convs_per_s']:.2f} conv/s"),
        ("batch score, warm cache", f"{figures['batch_warm_convs_per_s']:.2f} conv/s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>14}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
