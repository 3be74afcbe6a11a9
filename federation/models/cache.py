"""An on-disk cache of message embeddings, shared by every process of one machine.

Encoding a chat line with MiniLM costs milliseconds; a simulation sweep encodes the same
lines in every run and every worker. The cache turns that into one encoding per text per
machine. It is keyed by the encoder's id and the SHA-256 of the text, so it never holds
chat text, and it is only a cache: deleting the file loses nothing but time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from federation.errors import DataError

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "CESAGRAM_CACHE_DIR"
"""Environment variable naming the folder of the default cache file."""

CACHE_FILE_NAME = "embeddings.sqlite"

_BUSY_TIMEOUT_S = 60.0
_CHUNK = 500  # keys per ``IN (...)`` query; below SQLite's bound-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    encoder_id TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (encoder_id, text_sha256)
) WITHOUT ROWID
"""


def default_cache_path() -> Path:
    """Where the embedding cache lives unless a caller says otherwise.

    Returns
    -------
    Path
        ``$CESAGRAM_CACHE_DIR/embeddings.sqlite`` when the variable is set, else
        ``~/.cache/cesagram/embeddings.sqlite``.
    """
    folder = os.environ.get(CACHE_DIR_ENV)
    base = Path(folder).expanduser() if folder else Path.home() / ".cache" / "cesagram"
    return base / CACHE_FILE_NAME


def cache_path_for(cache_dir: str | Path | None) -> Path:
    """The cache file of a run whose settings name ``cache_dir`` (empty: :func:`default_cache_path`)."""
    return Path(cache_dir) / CACHE_FILE_NAME if cache_dir else default_cache_path()


def text_key(text: str) -> str:
    """The cache key of a text: its UTF-8 SHA-256 in hex.

    Notes
    -----
    Only this digest reaches the disk. A short, guessable chat line can still be confirmed
    by hashing a guess, so the cache file belongs to the same machine and the same people
    as the data it was built from; it is never shipped with a model.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A SQLite table ``(encoder_id, sha256(text)) -> float32 vector``.

    Parameters
    ----------
    path
        The SQLite file; created with its folder on first use.

    Notes
    -----
    Several simulation workers share one file: the database runs in WAL mode with a
    60-second busy timeout, and each process opens its own connection lazily (the object
    pickles without its connection, so it can travel to worker processes). Writes use
    ``INSERT OR IGNORE``: two workers encoding the same text store the same vector.

    A file that SQLite cannot read raises :class:`~federation.errors.DataError` naming the
    path; the fix is to delete it, which costs only re-encoding.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    # -- connection -------------------------------------------------------------------

    def _corrupt(self, exc: BaseException) -> DataError:
        reason = str(exc).lower()
        if "locked" in reason or "busy" in reason:
            return DataError(
                f"embedding cache {self.path} stayed locked by another process for "
                f"{_BUSY_TIMEOUT_S:.0f} s ({exc}); retry, or point {CACHE_DIR_ENV} at a "
                "folder of its own"
            )
        if "unable to open" in reason or "readonly" in reason or "read-only" in reason:
            return DataError(
                f"cannot open the embedding cache {self.path} for writing ({exc}); "
                f"set {CACHE_DIR_ENV} to a writable folder"
            )
        return DataError(
            f"embedding cache {self.path} is unreadable ({exc}); it is only a cache: "
            "delete it to rebuild (with any -wal/-shm files beside it)"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"cannot create the embedding cache folder {self.path.parent} ({exc}); "
                f"set {CACHE_DIR_ENV} to a writable folder"
            ) from exc
        try:
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise self._corrupt(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._corrupt(exc) from exc
        self._conn, self._pid = conn, os.getpid()
        logger.debug("opened embedding cache %s", self.path)
        return conn

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._pid = None

    # -- queries ----------------------------------------------------------------------

    def get_many(self, encoder_id: str, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Look up vectors by text key.

        Parameters
        ----------
        encoder_id
            The encoder's :attr:`id`; vectors of other encoders never match.
        keys
            Text keys from :func:`text_key`.

        Returns
        -------
        dict
            Key to float32 vector for the keys found; missing keys are simply absent.
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        if not wanted:
            return found
        with self._lock:
            conn = self._connection()
            try:
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        "SELECT text_sha256, vector FROM embeddings "
                        f"WHERE encoder_id = ? AND text_sha256 IN ({marks})",
                        (encoder_id, *chunk),
                    ).fetchall()
                    for key, blob in rows:
                        found[key] = np.frombuffer(blob, dtype=np.float32).copy()
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(exc) from exc
        return found

    def put_many(
        self,
        encoder_id: str,
        items: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]],
    ) -> None:
        """Store vectors by text key, in one transaction.

        Parameters
        ----------
        encoder_id
            The encoder's :attr:`id`.
        items
            ``{key: vector}`` or ``(key, vector)`` pairs; vectors are stored as float32.
        """
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        if not pairs:
            return
        rows = [
            (encoder_id, key, np.ascontiguousarray(vector, dtype=np.float32).tobytes())
            for key, vector in pairs
        ]
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        "INSERT OR IGNORE INTO embeddings (encoder_id, text_sha256, vector) "
                        "VALUES (?, ?, ?)",
                        rows,
                    )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(exc) from exc

    def count(self, encoder_id: str | None = None) -> int:
        """Number of stored vectors (of one encoder when ``encoder_id`` is given)."""
        with self._lock:
            conn = self._connection()
            try:
                if encoder_id is None:
                    row = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()
                else:
                    row = conn.execute(
                        "SELECT COUNT(*) FROM embeddings WHERE encoder_id = ?", (encoder_id,)
                    ).fetchone()
            except sqlite3.DatabaseError as exc:
                raise self._corrupt(exc) from exc
        return int(row[0])
