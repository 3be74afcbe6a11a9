"""What a reader reports about a data file: one issue per bad record, and the records it kept.

Readers never stop at the first bad record: a node operator fixing a file wants every
problem at once (up to a limit), each as ``file:line: what is wrong``. Issue texts name
the key path and the shape that was wrong, never the chat text or an author id, so they
can be pasted into a support ticket or a log.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from federation.checks import is_integer
from federation.data.types import Conversation
from federation.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: How many problems of one record are spelt out in its issue; the rest are counted.
PROBLEMS_PER_RECORD = 3


@dataclass(frozen=True)
class RecordIssue:
    """One bad record (or a problem with the whole file) at a 1-based line.

    ``str()`` gives ``path:line: what`` or, without a line, ``path: what``.
    """

    path: str
    line: int | None
    what: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.what}"
        return f"{self.path}:{self.line}: {self.what}"


@dataclass
class ReadResult:
    """The valid conversations of a file, the issues found, and how many issues were not stored.

    ``more_issues`` counts the issues beyond the reader's ``max_issues``: they were found
    but not kept, so a file with millions of bad lines does not fill memory.
    """

    conversations: list[Conversation]
    issues: list[RecordIssue]
    more_issues: int

    @property
    def total_issues(self) -> int:
        """Every issue found, stored or only counted."""
        return len(self.issues) + self.more_issues

    @property
    def ok(self) -> bool:
        """Whether the file had no issue at all."""
        return self.total_issues == 0


@dataclass
class IssueCollector:
    """Keeps the first ``max_issues`` issues of one file and counts the rest."""

    path: str
    max_issues: int
    issues: list[RecordIssue] = field(default_factory=list)
    more_issues: int = 0

    def __post_init__(self) -> None:
        if not is_integer(self.max_issues, numpy=False) or self.max_issues < 0:
            raise ConfigError(f"max_issues: expected an integer of 0 or more, got {self.max_issues!r}")

    def add(self, line: int | None, what: str) -> None:
        """Record one issue at ``line`` (1-based, or ``None`` for the whole file)."""
        if len(self.issues) < self.max_issues:
            self.issues.append(RecordIssue(self.path, line, what))
        else:
            self.more_issues += 1

    def add_problems(self, problems: list[tuple[int | None, str]]) -> None:
        """Record one bad record from its problems, at the line of the first one.

        Notes
        -----
        A record with thousands of bad messages yields one issue, so it cannot crowd out
        the other records' issues; later problems at other lines say their line.
        """
        if not problems:
            return
        first_line = problems[0][0]
        parts = []
        for line, text in problems[:PROBLEMS_PER_RECORD]:
            parts.append(text if line == first_line or line is None else f"line {line}: {text}")
        what = "; ".join(parts)
        if len(problems) > PROBLEMS_PER_RECORD:
            what += f" (and {len(problems) - PROBLEMS_PER_RECORD} more in this record)"
        self.add(first_line, what)

    @property
    def total(self) -> int:
        return len(self.issues) + self.more_issues

    def result(self, conversations: list[Conversation]) -> ReadResult:
        """The :class:`ReadResult` of the file; a file with nothing in it gets an issue too."""
        if not conversations and self.total == 0:
            self.add(None, "no conversations found; expected at least one record")
        return ReadResult(conversations=conversations, issues=self.issues, more_issues=self.more_issues)


def open_data_file(path: Path, *, what: str = "data file") -> BinaryIO:
    """Open ``path`` for binary reading, or raise a one-line :class:`DataError` saying why not.

    Why one helper: every reader should say "no such file" or "is a directory" the same
    way, naming the path as the user wrote it and the fix, never with a traceback.
    """
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what}; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory; pass a {what}, not a folder") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied; make the {what} readable by this user") from None
    except OSError as error:
        raise DataError(f"{path}: cannot open the {what} ({_os_reason(error)})") from None


def read_failed(path: Path, error: OSError, *, what: str = "data file") -> DataError:
    """The one-line :class:`DataError` for an OS error in the middle of reading ``path``."""
    return DataError(f"{path}: cannot read the {what} ({_os_reason(error)})")


def _os_reason(error: OSError) -> str:
    if error.errno is not None and error.errno in errno.errorcode:
        return error.strerror or errno.errorcode[error.errno]
    return type(error).__name__
