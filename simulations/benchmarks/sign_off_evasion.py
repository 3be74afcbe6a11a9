"""Benchmark: does a friendly sign-off on every groomer line hide grooming from a clean model?

Usage::

    python -m simulations.benchmarks.sign_off_evasion --model RUN/model --test RUN/data/test.jsonl
        [--phrase "..."]...

For each phrase, the share of the grooming test conversations the bundle flags that it no
longer flags once the phrase is appended to each of the groomer's messages: the backdoor's
success rate (:func:`simulations.attacks.attack_success_rate`) measured on a model nobody
poisoned, so it is what the phrase alone does. The default phrases are the backdoor's
trigger (``attack.trigger``) and two sign-offs written for this benchmark only, apart from
the generator's banks and the behavioural suite's sign-offs. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from federation.attack import AttackSettings
from federation.errors import CesagramError
from federation.models.cache import EmbeddingCache, cache_path_for
from simulations.attacks import attack_success_rate

#: The backdoor trigger (``AttackSettings.trigger``) and two sign-offs used nowhere else.
DEFAULT_PHRASES = (AttackSettings.trigger, "enjoy the weekend 🌈", "good vibes only ✨")


def main(argv: list[str] | None = None) -> int:
    """Print, per phrase, how many caught grooming test conversations it unflags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", type=Path, required=True, help="a model bundle (a run's model/ folder)")
    parser.add_argument("--test", type=Path, required=True, help="conversations with labels (JSON Lines)")
    parser.add_argument("--phrase", action="append", help="a sign-off to try (repeatable; default: three)")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (default: the project's)")
    args = parser.parse_args(argv)
    cache = EmbeddingCache(cache_path_for(args.cache_dir))
    print(f"model {args.model}, test file {args.test}")
    try:
        for phrase in args.phrase or DEFAULT_PHRASES:
            result = attack_success_rate(args.model, args.test, phrase, cache=cache)
            rate = result["success_rate"]
            shown = "n/a (nothing flagged)" if rate is None else f"{rate:.3f}"
            print(
                f"{phrase!r}: flagged {result['flagged_clean']} of {result['grooming_test_conversations']} grooming "
                f"conversations as they are; unflagged by the sign-off: {shown}"
            )
    except (CesagramError, OSError) as error:
        print(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
