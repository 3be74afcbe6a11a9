"""``cesagram evaluate --model DIR --behaviour [--out FILE]``: the behavioural suite on a bundle.

Prints the pass rate of each capability (and of each of its tests) and one failing
example of each; ``--out`` writes the figures as JSON. The suite itself lives in
:mod:`federation.behaviour`; this module only loads the bundle and prints.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
from pathlib import Path
from typing import IO

from federation.behaviour import CAPABILITIES, CaseResult, SuiteResult, build_cases, installed_real_negatives, run_suite
from federation.data.types import Conversation
from federation.errors import ConfigError, DataError
from federation.io import atomic_write_text
from federation.models.cache import EmbeddingCache, default_cache_path
from federation.scoring.model import load_scoring_model

__all__ = ["behaviour_command"]

logger = logging.getLogger(__name__)

#: Lines of a failing example's conversation printed at most.
MAX_SHOWN_LINES = 12


def _check_out(path: Path | None) -> None:
    # Fail before scoring, not after it.
    if path is None:
        return
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give --out a file name")
    if not path.parent.is_dir():
        raise DataError(f"{path}: cannot write the output (no folder {path.parent}); check the path")


def _lines(conversation: Conversation) -> list[str]:
    return [f"{m.author}: {m.text}" for m in conversation.messages]


def _shown(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_SHOWN_LINES:
        return lines
    return [*lines[:MAX_SHOWN_LINES], f"... ({len(lines) - MAX_SHOWN_LINES} more lines)"]


def _example(result: CaseResult, threshold: float) -> list[str]:
    """A failing case in a few lines: what was expected, what came, what changed."""
    case = result.case
    original = result.original
    head = [f"  {case.id}: {case.description}"]
    if case.perturbed is None:
        verdict = "flagged" if original.flagged else "not flagged"
        head.append(f"  score {original.score:.4g} against threshold {threshold:.4g}: {verdict}, expected {case.expect.replace('_', ' ')}")
        if case.real:
            head.append("  (a reserved real conversation: its text is not shown)")
            return head
        return head + [f"    {line}" for line in _shown(_lines(case.original))]
    perturbed = result.perturbed
    if perturbed is None:
        return head
    if case.expect == "same":
        head.append(
            f"  original score {original.score:.4g} (flagged {original.flagged}, warned {original.warned}); "
            f"edited {perturbed.score:.4g} (flagged {perturbed.flagged}, warned {perturbed.warned})"
        )
    else:
        head.append(f"  score {original.score:.4g} -> {perturbed.score:.4g}, expected {case.expect}")
    return head + _shown([f"    {line}" for line in _changes(case.original, case.perturbed)])


def _changes(original: Conversation, perturbed: Conversation) -> list[str]:
    """The changed lines: ``-`` old, ``+`` new, pair by pair when no line was added."""
    before, after = _lines(original), _lines(perturbed)
    if len(before) != len(after):
        return _diff(before, after)
    renamed = {
        old.author: new.author for old, new in zip(original.messages, perturbed.messages, strict=True) if old.author != new.author
    }
    lines = [f"speakers renamed: {', '.join(f'{a} -> {b}' for a, b in renamed.items())}"] if renamed else []
    for old, new in zip(original.messages, perturbed.messages, strict=True):
        if old.text != new.text or (old.author != new.author and not renamed):
            lines += [f"- {old.author}: {old.text}", f"+ {new.author}: {new.text}"]
    return lines


def _diff(before: list[str], after: list[str]) -> list[str]:
    return [
        f"{line[0]} {line[1:]}"
        for line in difflib.unified_diff(before, after, lineterm="", n=0)
        if not line.startswith(("---", "+++", "@@"))
    ]


def _report(result: SuiteResult, model: Path, out: IO[str]) -> None:
    figures = result.to_dict()["capabilities"]
    print(f"behavioural suite on {model} (threshold {result.threshold:.4f}; "
          f"warning: {result.rule.k} of the last {result.rule.last} windows of {result.rule.window})", file=out)
    print("decision: flagged = conversation score >= threshold; invariance also compares the early warning", file=out)
    for capability in CAPABILITIES:
        counts = figures[capability]
        rate = f"{100 * counts['pass_rate']:.1f}%" if counts["pass_rate"] is not None else "-"
        print(f"{capability.replace('_', ' ')}: {counts['passed']}/{counts['cases']} passed ({rate})", file=out)
        for test, tally in counts["tests"].items():
            print(f"  {test}: {tally['passed']}/{tally['cases']}", file=out)
    for note in result.skipped:
        print(f"skipped: {note}", file=out)
    for capability in CAPABILITIES:
        failures = result.failures(capability)
        name = capability.replace("_", " ")
        if not failures:
            print(f"\nno failing example of {name}", file=out)
            continue
        print(f"\nfailing example of {name} ({len(failures)} failed):", file=out)
        for line in _example(failures[0], result.threshold):
            print(line, file=out)


def behaviour_command(args: argparse.Namespace) -> int:
    """Run the behavioural suite on ``--model`` and print (and with ``--out`` write) its pass rates."""
    if args.input is not None or args.predators is not None:
        raise ConfigError("--behaviour runs the built-in suite: give it no INPUT and no --predators")
    _check_out(args.out)
    model = load_scoring_model(args.model, cache=EmbeddingCache(default_cache_path()))
    real, skipped = installed_real_negatives()
    result = run_suite(model, build_cases(real), skipped=skipped)
    _report(result, args.model, sys.stdout)
    if args.out is not None:
        figures = {"model": str(args.model), "encoder": model.encoder.id, **result.to_dict()}
        try:
            atomic_write_text(args.out, json.dumps(figures, indent=2) + "\n")
        except OSError as error:
            raise DataError(f"{args.out}: cannot write the output ({error.strerror or type(error).__name__}); check the path") from None
    return 0
