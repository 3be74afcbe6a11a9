"""Benchmark of the core (issue 2): models side by side, encoder cache, DP step cost, node memory.

Run: ``python -m simulations.benchmarks.core [--out DIR] [hydra overrides]``. Prints measured
figures only; the targets are stated next to them and judged on the figures printed.

1. On a synthetic federation's held-out file: the n-gram baseline's and the MiniLM model's
   F0.5 and AUPRC, trained centrally (all node data pooled, the same training function)
   without DP and with DP-SGD at epsilon 8 (delta 1e-5).
2. Texts encoded per second: the raw encoder, then a second pass through the cache.
3. One DP-SGD step against one plain step of the MiniLM head.
4. Peak memory of a node's training call (in a fresh process).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from federation.data.load import load_conversations
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.models.encoder import MiniLMEncoder
from federation.models.features import build_features
from federation.models.spec import ModelSpec, build_head
from federation.training import DPParams, TrainSettings, train
from simulations.baselines import baseline_report
from simulations.compose import compose
from simulations.prepare import prepare_data
from conf.settings import plain
from simulations.settings import run_settings


def models_side_by_side(out: Path, overrides: list[str]) -> dict[str, dict[str, float]]:
    """Centralized F0.5/AUPRC on the held-out file for {ngram, minilm} x {no DP, DP eps 8}."""
    results: dict[str, dict[str, float]] = {}
    data_dir: Path | None = None
    for model in ("ngram", "minilm"):
        for privacy in ("none", "dp_sgd"):
            cfg = compose([f"model={model}", f"privacy={privacy}", "mode=centralized", *overrides])
            run_dir = out / f"{model}-{privacy}"
            if data_dir is None:
                data_dir, test_path = prepare_data(cfg, out)
            settings = run_settings(cfg, run_dir=run_dir, data_dir=data_dir, test_path=data_dir / "test.jsonl", ledger_dir=run_dir / "ledgers")
            started = time.perf_counter()
            report = baseline_report(settings, config=plain(cfg), started=started, write_bundle=False)
            final = report["final"]
            eps = report["privacy"]["nodes"].get("pooled", {}).get("epsilon")
            results[f"{model} / {'DP eps 8' if privacy == 'dp_sgd' else 'no DP'}"] = {
                "f05": final["f05"],
                "auprc": final["auprc"],
                "epsilon": eps,
                "seconds": time.perf_counter() - started,
            }
            print(f"  {model:6s} {privacy:7s} F0.5 {final['f05']:.3f}  AUPRC {final['auprc']:.3f}"
                  + (f"  epsilon {eps:.2f} (delta 1e-5, rdp)" if eps else "")
                  + f"  [{time.perf_counter() - started:.0f} s]", flush=True)
    return results


def encoder_throughput(texts: list[str], cache_path: Path) -> dict[str, float]:
    """Raw encoder texts/s (no cache) against a second pass through the cache."""
    raw = MiniLMEncoder(cache=None)
    raw.encode(texts[:8])  # load the model outside the timing
    started = time.perf_counter()
    raw.encode(texts)
    raw_rate = len(texts) / (time.perf_counter() - started)
    cached = MiniLMEncoder(cache=EmbeddingCache(cache_path))
    started = time.perf_counter()
    cached.encode(texts)
    first = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    cached.encode(texts)
    second = len(texts) / (time.perf_counter() - started)
    return {"raw_texts_per_s": raw_rate, "cold_cache_texts_per_s": first, "warm_cache_texts_per_s": second}


def step_times(features, spec: ModelSpec, *, steps: int = 20) -> dict[str, float]:
    """Seconds per step of the default MiniLM head, DP-SGD against plain SGD, at batch 64."""
    head = build_head(spec, dim_in=features.embeddings.shape[1], seed=0)
    n = len(features)
    settings = TrainSettings(local_epochs=steps * 64 / n, batch_size=64, learning_rate=1e-3, optimizer="adam")
    times = {}
    print(f"  head: {type(head).__name__}, {sum(p.numel() for p in head.parameters()):,} weights")
    for label, dp in (("plain", None), ("dp", DPParams(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-5))):
        result = train(head=head, data=features, settings=settings, dp=dp)
        times[f"{label}_step_s"] = result.seconds / max(result.steps, 1)
    times["dp_over_plain"] = times["dp_step_s"] / times["plain_step_s"]
    return times


def node_peak_memory(node_file: Path, cache_dir: Path, spec: ModelSpec, settings: TrainSettings) -> float:
    """Peak RSS (MiB) of a fresh process that loads a node's data and runs one DP training call (default settings)."""
    code = f"""
import resource, math
from pathlib import Path
from federation.data.load import load_conversations
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.models.features import build_features
from federation.models.spec import ModelSpec, build_encoder, build_head
from federation.training import DPParams, TrainSettings, train
spec = ModelSpec(**{dataclasses.asdict(spec)!r})
encoder = build_encoder(spec, cache=EmbeddingCache(cache_path_for({str(cache_dir)!r})))
features = build_features(load_conversations(Path({str(node_file)!r})), encoder)
head = build_head(spec, dim_in=encoder.dim, seed=0)
train(head=head, data=features, settings=TrainSettings(**{dataclasses.asdict(settings)!r}),
      dp=DPParams(noise_multiplier=1.0, max_grad_norm=0.5, delta=1e-5))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for data and runs (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the data and training")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="cesagram-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"benchmark folder: {out}")

    print("1. models, trained centrally, scored on the held-out synthetic test file")
    results = models_side_by_side(out, list(args.overrides))
    ngram, minilm = results["ngram / no DP"], results["minilm / no DP"]
    minilm_dp = results["minilm / DP eps 8"]
    print(f"  MiniLM beats the n-gram baseline (F0.5): {minilm['f05']:.3f} vs {ngram['f05']:.3f} -> "
          f"{'yes' if minilm['f05'] > ngram['f05'] else 'NO'}")
    cost = minilm["f05"] - minilm_dp["f05"]
    print(f"  cost of DP at epsilon 8 for MiniLM (target <= 0.05 F0.5): {cost:+.3f} -> {'met' if cost <= 0.05 else 'NOT met'}")

    print("2. encoder throughput (texts/s)")
    texts = sorted({m.text for c in load_conversations(out / "data" / "test.jsonl") for m in c.messages})[:1000]
    with tempfile.TemporaryDirectory() as tmp:
        throughput = encoder_throughput(texts, Path(tmp) / "cache.sqlite")
    for key, value in throughput.items():
        print(f"  {key}: {value:,.0f}")
    print(f"  warm cache / raw encoder: {throughput['warm_cache_texts_per_s'] / throughput['raw_texts_per_s']:.0f}x")

    defaults = run_settings(compose(list(args.overrides)), run_dir=out, data_dir=out / "data", test_path=out / "data" / "test.jsonl", ledger_dir=out)
    spec = defaults.model
    print("3. step time of the default MiniLM head (batch 64)")
    encoder = MiniLMEncoder(cache=EmbeddingCache(cache_path_for(out / "cache")))
    features = build_features(load_conversations(out / "data" / "node-0.jsonl"), encoder)
    for key, value in step_times(features, spec).items():
        print(f"  {key}: {value:.4f}")

    print("4. peak memory of a node's training call")
    peak = node_peak_memory(out / "data" / "node-0.jsonl", out / "cache", spec, defaults.train)
    print(f"  peak RSS: {peak:.0f} MiB")
    (out / "benchmark.json").write_text(json.dumps({"models": results, "throughput": throughput, "peak_mib": peak}, indent=2))
    return 0


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    sys.exit(main())
