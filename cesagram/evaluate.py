"""The analyst's commands: ``cesagram score`` and ``cesagram evaluate``.

Both load the bundle first, so a missing, corrupt or mismatched bundle stops them with a
one-line error (exit 1) before any data is read. Bad records are reported on stderr as
``file:line: what`` (never with chat text) and the others are scored; the exit status is
0 when at least one conversation was scored.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import IO, Any

from federation.data.issues import ReadResult
from federation.data.load import detect_format, read_conversations
from federation.data.pan12 import read_predators
from federation.errors import ConfigError, DataError
from federation.io import atomic_write_text
from federation.pages.review import review_header, review_page
from federation.models.cache import EmbeddingCache, default_cache_path
from federation.models.encoder import EncodeProgress
from federation.scoring.evaluation import evaluation_report
from federation.scoring.follow import StreamScorer, follow
from federation.scoring.indicators import IndicatorDetector
from federation.scoring.model import ScoringModel, load_scoring_model
from federation.scoring.scorer import BatchResult, Scorer
from federation.scoring.texts import summarise_notes

__all__ = ["evaluate_command", "score_command"]

logger = logging.getLogger(__name__)

#: Problem lines printed per run; the rest are counted.
MAX_REPORTED = 100


class _Reporter:
    """Prints problem lines to stderr, up to :data:`MAX_REPORTED`, then counts them."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, line: str) -> None:
        self.count += 1
        if self.count <= MAX_REPORTED:
            print(line, file=sys.stderr)

    def close(self, what: str) -> None:
        if self.count > MAX_REPORTED:
            print(f"... and {self.count - MAX_REPORTED} more {what} not listed", file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that exiting after a closed pipe prints no traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _write(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise DataError(f"{path}: cannot write the output ({error.strerror or type(error).__name__}); check the path") from None


def _load(directory: Path, *, encode_progress: EncodeProgress | None = None) -> tuple[ScoringModel, IndicatorDetector]:
    model = load_scoring_model(directory, cache=EmbeddingCache(default_cache_path()))
    detector = IndicatorDetector.for_encoder(model.encoder)  # its prototypes are encoded without a bar
    if encode_progress is not None and hasattr(model.encoder, "on_progress"):
        model.encoder.on_progress = encode_progress
    return model, detector


def _read(path: Path, *, predators: Path | None, reporter: _Reporter) -> ReadResult:
    result = read_conversations(path, predators=predators, max_issues=MAX_REPORTED)
    for issue in result.issues:
        skipped = issue.line is not None and "reading stopped" not in issue.what
        reporter(f"{issue}; record skipped" if skipped else str(issue))
    if result.more_issues:
        print(f"{path}: ... and {result.more_issues} more bad records not listed", file=sys.stderr)
    if not result.conversations:
        raise DataError(f"{path}: no conversation could be read; run `cesagram data check {path}` for every problem")
    return result


def _scored(path: Path, scorer: Scorer, result: ReadResult, reporter: _Reporter) -> BatchResult:
    scored = scorer.score(result.conversations)
    for conversation_id, notes in scored.notes:
        reporter(f"{path}: conversation {conversation_id!r}: {summarise_notes(notes)}")
    reporter.close("problems")
    return scored


def score_command(args: argparse.Namespace, *, encode_progress: EncodeProgress | None = None) -> int:
    """``cesagram score --model DIR [INPUT] [--out FILE] [--html FILE] [--follow]``.

    Without ``--follow``: one JSON line per conversation of INPUT (JSONL or PAN-2012 XML)
    on stdout or in ``--out``, and with ``--html`` the review page of the same records.
    With ``--follow``: messages as JSON lines on stdin (or INPUT), a warning line the
    moment a conversation's warning is raised. ``encode_progress`` follows the encoding
    of INPUT's texts (for the command's progress bar).
    """
    if args.follow:
        if getattr(args, "html", None) is not None:
            raise ConfigError("--html writes the review page of a scored file; it cannot be combined with --follow")
        return _follow(args)
    if args.input is None:
        raise ConfigError(
            "score needs INPUT (a JSONL or PAN-2012 XML file), or --follow to read messages from stdin"
        )
    model, detector = _load(args.model, encode_progress=encode_progress)
    reporter = _Reporter()
    result = _read(args.input, predators=None, reporter=reporter)
    scored = _scored(args.input, Scorer(model, detector=detector), result, reporter)
    records = [s.to_record() for s in scored.scores]
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if getattr(args, "html", None) is not None:
        # The page embeds these very records: its numbers are the JSON lines' numbers.
        page = review_page(
            records=records,
            conversations=result.conversations,
            header=review_header(model, name=str(args.model)),
            source=str(args.input),
        )
        _write(args.html, page)
    if args.out is not None:
        _write(args.out, lines)
    else:
        try:
            sys.stdout.write(lines)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
    logger.info(
        "scored %d conversations: %d warned, %d flagged",
        len(scored.scores),
        sum(s.alert for s in scored.scores),
        sum(s.score >= model.threshold for s in scored.scores),
    )
    return 0


def _follow(args: argparse.Namespace) -> int:
    model, detector = _load(args.model)
    scorer = StreamScorer(model, detector=detector)
    reporter = _Reporter()
    name = str(args.input) if args.input is not None else "<stdin>"
    source: IO[bytes]
    sink: IO[str]
    try:
        source = open(args.input, "rb") if args.input is not None else sys.stdin.buffer  # noqa: SIM115
    except OSError as error:
        raise DataError(f"{args.input}: cannot open the message stream ({error.strerror or type(error).__name__})") from None
    try:
        sink = open(args.out, "w", encoding="utf-8") if args.out is not None else sys.stdout  # noqa: SIM115
    except OSError as error:
        raise DataError(f"{args.out}: cannot write the warnings ({error.strerror or type(error).__name__})") from None
    try:
        follow(source, sink, scorer=scorer, name=name, report=reporter)
    except BrokenPipeError:  # the reader of the warnings went away (e.g. `| head -1`)
        if sink is not sys.stdout:
            raise
        _silence_stdout()
    finally:
        reporter.close("problems")
        if source is not sys.stdin.buffer:
            source.close()
        if sink is not sys.stdout:
            sink.close()
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    """``cesagram evaluate --model DIR INPUT [--predators FILE] [--out FILE]``.

    Prints the figures as JSON on stdout and, with ``--out``, writes the same JSON there.
    """
    model, detector = _load(args.model)
    if args.predators is None and detect_format(args.input) == "pan12":
        raise DataError(
            f"{args.input}: a PAN-2012 XML file has no labels of its own; pass its ground truth with --predators FILE"
        )
    reporter = _Reporter()
    result = _read(args.input, predators=args.predators, reporter=reporter)
    scored = _scored(args.input, Scorer(model, detector=detector), result, reporter)
    predators = read_predators(args.predators) if args.predators is not None else None
    report: dict[str, Any] = {
        "model": str(args.model),
        "input": str(args.input),
        "encoder": model.encoder.id,
        "threshold": model.threshold,
        "rule": {"k": model.rule.k, "last": model.rule.last, "window": model.rule.window},
        "skipped_records": result.total_issues,
        **evaluation_report(scored, result.conversations, threshold=model.threshold, rule=model.rule, predators=predators),
    }
    if report["data"]["positives"] == 0:
        logger.warning("%s holds no grooming conversation: recall, AUPRC and F-scores say nothing", args.input)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        _write(args.out, text + "\n")
    return 0
