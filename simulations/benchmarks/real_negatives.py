"""Benchmark: false alarms of a model bundle on real benign chats it never saw.

Usage::

    python -m simulations.benchmarks.real_negatives --model runs/.../model [--model OTHER ...]

Scores the reserved quarter of the chitchat corpus (835 conversations of two authors and
six messages or more, :func:`federation.data.chitchat.real_negative_set`) with each
bundle's own threshold and early-warning rule, exactly as ``cesagram score`` would, and
prints how many it warns on and flags. Every one of them is benign, so each is a false
alarm. Target (issue 9): warnings on at most 1% of them for the default model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from federation.errors import CesagramError
from federation.models.cache import EmbeddingCache, default_cache_path
from federation.real_negatives import measure_real_negatives
from federation.scoring.model import load_scoring_model

TARGET = 0.01


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", type=Path, action="append", required=True, help="a model bundle folder")
    args = parser.parse_args(argv)
    cache = EmbeddingCache(default_cache_path())
    for directory in args.model:
        try:
            model = load_scoring_model(directory, cache=cache)
        except CesagramError as error:
            print(f"error: {error}")
            return error.exit_code
        check = measure_real_negatives(
            model.head, model.encoder, threshold=model.threshold, rule=model.rule, max_messages=model.max_messages
        )
        if not check["measured"]:
            print(f"{directory}: not measured ({check['why']})")
            continue
        verdict = "met" if check["warned_rate"] <= TARGET else "NOT met"
        print(
            f"{directory}: {check['conversations']} real benign chats, warned on {check['warned']} "
            f"({check['warned_rate']:.1%}), flagged {check['flagged']} ({check['flagged_rate']:.1%}); "
            f"target at most {TARGET:.0%} warned: {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
