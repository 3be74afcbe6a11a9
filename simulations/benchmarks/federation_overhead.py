"""Benchmark of the simulated federation (issue 3): Flower's overhead and bytes on the wire.

Run: ``python -m simulations.benchmarks.federation_overhead [--out DIR] [hydra overrides]``.
Runs one federated simulation, then the same local training and evaluation in a plain loop
without Flower (same nodes, data, model, DP settings, rounds), and prints:

- wall seconds per round, federated vs plain, and their ratio (the framework's overhead);
  round 1 (Ray workers starting, data loading) is shown apart;
- bytes sent and received per node per round against the raw size of the trained weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from federation.histograms import ScoreHistogram
from federation.models.spec import build_head
from federation.models.weights import head_arrays, load_head_arrays
from federation.privacy.ledger import PrivacyLedger
from federation.local_round import PartyPrivacy, local_round
from federation.training import evaluate
from simulations.baselines import _featurise, _load_parties
from simulations.compose import compose
from simulations.federated import run_federated
from simulations.settings import run_settings
from federation.models.cache import EmbeddingCache, cache_path_for
from federation.models.spec import build_encoder


def plain_loop_seconds(settings, ledger_dir: Path) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds per round of the same work done sequentially in one process, without Flower."""
    cache = EmbeddingCache(cache_path_for(settings.cache_dir))
    encoder = build_encoder(settings.model, cache=cache)
    parties = [_featurise(name, kind, t, v, settings, encoder) for name, kind, t, v in _load_parties(settings, encoder)]
    head = build_head(settings.model, dim_in=encoder.dim, seed=settings.seed)
    cap = settings.privacy.simulated_cap
    plain_run = dataclasses.replace(settings, run_id="plain")
    for party in parties:
        PrivacyLedger.create(
            ledger_dir / f"{party.name}.json",
            node=party.name,
            cap=cap,
            delta=settings.privacy.delta,
            accountant=settings.privacy.accountant,
        )
    seconds = []
    for server_round in range(1, settings.rounds + 1):
        started = time.perf_counter()
        results = []
        for party in parties:
            result = local_round(
                run=plain_run,
                party=PartyPrivacy(party.name, ledger_dir / f"{party.name}.json", cap=cap, delta=settings.privacy.delta),
                head=head,
                data=party.train,
                round=server_round,
                batch_size=settings.train.batch_size,
                audit=False,
            )
            results.append(result)
        total = sum(r.num_examples for r in results)
        averaged = [sum(r.arrays[i] * r.num_examples for r in results) / total for i in range(len(results[0].arrays))]
        load_head_arrays(head, averaged)
        for party in parties:
            ev = evaluate(head=head, data=party.validation, window=settings.model.score_window)
            ScoreHistogram.from_scores(ev.scores, ev.labels)
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="cesagram-overhead-"))
    cfg = compose(["compare_baselines=false", *args.overrides])
    run_dir = out / "federated"
    report = run_federated(cfg, run_dir)
    rounds = report["rounds"]
    fed = [entry["seconds"] for entry in rounds]
    settings = run_settings(cfg, run_dir=out / "plain", data_dir=run_dir / "data", test_path=run_dir / "data" / "test.jsonl", ledger_dir=out / "plain-ledgers")
    plain = plain_loop_seconds(settings, out / "plain-ledgers")
    print(f"benchmark folder: {out}")
    print(f"round 1 (start-up included): federated {fed[0]:.1f} s, plain {plain[0]:.1f} s")
    if len(fed) > 1:
        f_med, p_med = statistics.median(fed[1:]), statistics.median(plain[1:])
        print(f"rounds 2..{len(fed)} median: federated {f_med:.2f} s, plain loop {p_med:.2f} s, overhead ratio {f_med / p_med:.2f}x")
    print(f"whole run: federated {report['timing'].get('wall_including_runtime', sum(fed)):.1f} s (with Flower's start-up), plain {sum(plain):.1f} s")
    encoder_dim = 384 if settings.model.name == "minilm" else settings.model.ngram_dim
    raw = sum(a.nbytes for a in head_arrays(build_head(settings.model, dim_in=encoder_dim, seed=0)))
    print(f"raw size of the trained weights: {raw:,} bytes")
    for node, per_round in sorted(report["communication"].items()):
        sent = statistics.mean(v["sent_bytes"] for v in per_round.values())
        received = statistics.mean(v["received_bytes"] for v in per_round.values())
        print(f"  {node}: per round sent {sent:,.0f} B ({sent / raw:.2f}x raw), received {received:,.0f} B ({received / raw:.2f}x raw)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
