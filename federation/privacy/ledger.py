"""The persistent per-node privacy ledger: what a node has spent, across runs and restarts.

One human-readable JSON file per node holds the node's delta and cap, the noise plan
of every run and one entry per training call. The file is the only memory of spend a
node has, so it is written atomically, loaded strictly and, when anything is wrong
with it, the node trains nothing (fail closed): a missing or corrupt ledger must never
turn into a fresh budget.

Every entry keeps its ``(noise_multiplier, sample_rate, steps)``, so the node's spend is
always recomposed from the whole history by the ledger's accountant (``rdp`` or ``prv``,
see :mod:`federation.privacy.accounting`). The accountant changes only by an explicit
operator command (:meth:`PrivacyLedger.switch_accountant`, ``cesagram node budget LEDGER
--switch-accountant prv``), which is recorded under ``accountant_changes``; a ledger whose
accountant differs from the one its entries were recorded with, without such a record,
is refused.

Example of a ledger file::

    {
      "accountant": "rdp",
      "accountant_changes": [],
      "cap": 8.0,
      "delta": 1e-05,
      "entries": [{"accountant": "rdp", "epsilon_after": 0.91, "noise_multiplier": 1.3,
                   "recorded_at": "...", "round": 1, "run": "run-7", "sample_rate": 0.25,
                   "steps": 4}],
      "node": "helpline-a",
      "runs": {"run-7": {"created": "...", "noise_multiplier": 1.3, "planned_steps": 20,
                         "sample_rate": 0.25, "target_epsilon": 3.0}},
      "schema": 2,
      "unit": "conversation"
    }

Schema 1 ledgers (before the accountant could change) are read as schema 2 with every
entry recorded by ``rdp``, and written as schema 2 at their next change.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError, LedgerError
from federation.io import atomic_write_json
from federation.privacy.accounting import (
    ACCOUNTANT,
    ACCOUNTANTS,
    ORDERS,
    Step,
    epsilon_from_rdp,
    epsilon_of,
    rdp_of,
    validate_accountant,
    validate_delta,
)
from federation.privacy.plan import RunPlan

__all__ = [
    "SCHEMA_VERSION",
    "UNIT",
    "AccountantChange",
    "LedgerEntry",
    "PrivacyLedger",
    "format_ledger",
    "ledger_lock",
    "lock_path",
    "open_or_create",
    "utc_now",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
UNIT = "conversation"
_EPSILON_TOLERANCE = 1e-9
#: PRV's epsilon comes out of an FFT: equal to a few ulps on one machine, not across builds.
_PRV_TOLERANCE = 1e-6
_TOP_KEYS_V1 = frozenset({"schema", "node", "delta", "cap", "accountant", "unit", "runs", "entries"})
_TOP_KEYS = _TOP_KEYS_V1 | {"accountant_changes"}
_HISTORY_KEYS = ("noise_multiplier", "sample_rate", "steps")
_RUN_KEYS = frozenset(field for field in RunPlan.__dataclass_fields__)
_FIX = "the file was edited or damaged: restore it from a backup; the node trains nothing until then"


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds, as written into ledgers."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One training call's spend: ``steps`` DP-SGD steps of ``run`` in ``round``.

    ``epsilon_after`` is the node's total epsilon (all runs) once these steps are counted,
    composed by ``accountant``, the ledger's accountant when the entry was recorded.
    """

    run: str
    round: int
    steps: int
    noise_multiplier: float
    sample_rate: float
    epsilon_after: float
    recorded_at: str
    accountant: str = ACCOUNTANT

    @property
    def step(self) -> Step:
        """The entry as an accountant history triple."""
        return (self.noise_multiplier, self.sample_rate, self.steps)


@dataclass(frozen=True, slots=True)
class AccountantChange:
    """An operator's switch of the ledger's accountant, with the spend it read before and after."""

    previous: str
    accountant: str
    at: str
    spent_before: float
    spent_after: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.previous,
            "to": self.accountant,
            "at": self.at,
            "spent_before": self.spent_before,
            "spent_after": self.spent_after,
        }


def lock_path(path: Path) -> Path:
    """The lock file guarding ``path``: ``<ledger>.lock`` beside it (never deleted)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextmanager
def ledger_lock(path: Path, *, timeout_s: float = 3600.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<ledger>.lock`` for the duration of the block.

    Parameters
    ----------
    path
        The ledger file (the lock file sits beside it).
    timeout_s
        How long to wait for another process to release the ledger.

    Raises
    ------
    LedgerError
        If the lock cannot be taken within ``timeout_s`` or the lock file cannot be opened.

    Notes
    -----
    Training holds the lock from loading the ledger to recording the spend, so two
    processes of one node can never both spend the same remaining budget. The lock file
    is left in place: deleting it would let a third process lock a different inode.
    """
    target = lock_path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise LedgerError(
            f"cannot open lock file {target}: {error.strerror}; check the folder's permissions"
        ) from None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise LedgerError(f"cannot lock {target}: {error.strerror}") from None
                if time.monotonic() >= deadline:
                    raise LedgerError(
                        f"privacy ledger {path} is locked by another process for over {timeout_s:g} s; "
                        "wait for it to finish or stop it"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Reader:
    """Strict field checks that name the file and the key of a bad value."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> LedgerError:
        return LedgerError(f"privacy ledger {self.path}: {key} {problem}; {_FIX}")

    def keys(self, obj: Any, expected: frozenset[str], key: str) -> Mapping[str, Any]:
        if not isinstance(obj, dict):
            raise self.fail(key, f"must be an object, got {type(obj).__name__}")
        missing, unknown = sorted(expected - obj.keys()), sorted(obj.keys() - expected)
        if missing:
            raise self.fail(key, f"lacks {', '.join(missing)}")
        if unknown:
            raise self.fail(key, f"has unknown keys {', '.join(_short(name) for name in unknown)}")
        return obj

    def number(self, value: Any, key: str, *, low: float, high: float, low_open: bool = True) -> float:
        if not is_finite_number(value):
            raise self.fail(key, f"must be a finite number, got {_short(value)}")
        if value < low or (low_open and value == low) or value > high:
            raise self.fail(key, f"is out of range, got {_short(value)}")
        return float(value)

    def positive(self, value: Any, key: str) -> float:
        return self.number(value, key, low=0.0, high=math.inf)

    def integer(self, value: Any, key: str, *, low: int) -> int:
        if not is_integer(value, numpy=False) or value < low:
            raise self.fail(key, f"must be an integer >= {low}, got {_short(value)}")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {_short(value)}")
        return value

    def timestamp(self, value: Any, key: str) -> str:
        self.text(value, key)
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(key, f"is not an ISO 8601 time, got {_short(value)}") from None
        return value


class PrivacyLedger:
    """A node's privacy spend, backed by one JSON file.

    Use :meth:`create` (an explicit act, refused if the file exists) or :meth:`open`
    (strict: anything missing, malformed or inconsistent raises :class:`LedgerError`).
    Every change is written atomically before the object reflects it.

    Notes
    -----
    Unit of privacy: one conversation. Accountant: the ledger's own (``rdp`` or ``prv``,
    Opacus), composed over every entry of every run, at the ledger's ``delta``, which is
    fixed for the ledger's life; only :meth:`switch_accountant` changes the accountant.
    The cap in the file can be lowered freely with :meth:`set_cap`; raising it is an
    operator's act (``set_cap(..., allow_raise=True)``) and never comes from a training
    config, so a server cannot raise a node's cap. Callers use the smaller of the
    node's configured cap and the file's cap.
    """

    def __init__(
        self,
        *,
        path: Path,
        node: str,
        delta: float,
        cap: float,
        runs: Mapping[str, RunPlan],
        entries: list[LedgerEntry],
        accountant: str = ACCOUNTANT,
        changes: list[AccountantChange] | None = None,
    ) -> None:
        self._path = Path(path)
        self._node = node
        self._delta = delta
        self._cap = cap
        self._runs = dict(runs)
        self._entries = list(entries)
        self._accountant = accountant
        self._changes = list(changes or [])

    # -- reading ---------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._path

    @property
    def node(self) -> str:
        return self._node

    @property
    def delta(self) -> float:
        return self._delta

    @property
    def cap(self) -> float:
        """The cap stored in the file (see :meth:`set_cap`)."""
        return self._cap

    @property
    def accountant(self) -> str:
        """The accountant that composes this ledger's spend (``rdp`` or ``prv``)."""
        return self._accountant

    @property
    def accountant_changes(self) -> tuple[AccountantChange, ...]:
        """Every operator switch of the accountant, oldest first."""
        return tuple(self._changes)

    @property
    def runs(self) -> Mapping[str, RunPlan]:
        return dict(self._runs)

    @property
    def entries(self) -> tuple[LedgerEntry, ...]:
        return tuple(self._entries)

    @property
    def history(self) -> list[Step]:
        """Every recorded spend as ``(noise_multiplier, sample_rate, steps)`` triples."""
        return [entry.step for entry in self._entries]

    @property
    def spent(self) -> float:
        """Total epsilon spent by the node at the ledger's delta, by its accountant (0.0 when nothing yet)."""
        return epsilon_of(self.history, delta=self._delta, accountant=self._accountant)

    def remaining(self, cap: float | None = None) -> float:
        """Epsilon left under ``cap`` (the file's cap when None), never negative."""
        return max(0.0, (self._cap if cap is None else cap) - self.spent)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, as written to disk."""
        return {
            "schema": SCHEMA_VERSION,
            "node": self._node,
            "delta": self._delta,
            "cap": self._cap,
            "accountant": self._accountant,
            "accountant_changes": [change.to_dict() for change in self._changes],
            "unit": UNIT,
            "runs": {run: asdict(plan) for run, plan in self._runs.items()},
            "entries": [asdict(entry) for entry in self._entries],
        }

    # -- creating and opening --------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, *, node: str, cap: float, delta: float, accountant: str = ACCOUNTANT) -> PrivacyLedger:
        """Start a new, empty ledger at ``path`` kept by ``accountant``; refuse if any file is already there.

        Raises
        ------
        LedgerError
            If ``path`` exists (a present ledger is never silently replaced).
        ConfigError
            If ``node``, ``cap``, ``delta`` or ``accountant`` is invalid.
        """
        path = Path(path)
        if not isinstance(node, str) or not node.strip():
            raise ConfigError(f"node name must be a non-empty string, got {_short(node)}")
        delta, cap = validate_delta(delta), _check_cap(cap)
        accountant = validate_accountant(accountant, name="ledger accountant")
        ledger = cls(path=path, node=node, delta=delta, cap=cap, runs={}, entries=[], accountant=accountant)
        with ledger_lock(path):
            if path.exists() or path.is_symlink():
                raise LedgerError(
                    f"privacy ledger {path} already exists; open it instead of creating it, "
                    "or move it away if it belongs to another node"
                )
            ledger.save()
        logger.info(
            "created privacy ledger %s (cap epsilon %g, delta %g, accountant %s)", path, ledger.cap, ledger.delta, accountant
        )
        return ledger

    @classmethod
    def open(cls, path: Path) -> PrivacyLedger:
        """Load and fully check the ledger at ``path``.

        Raises
        ------
        LedgerError
            If the file is missing, unreadable, not JSON, of another schema, has a key
            missing, unknown or of the wrong type, or if an entry's ``epsilon_after`` does
            not match the accountant's recomputation: the node must not train (fail closed).
        """
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise LedgerError(
                f"privacy ledger {path} does not exist; a node never starts a fresh budget by itself: "
                "restore the ledger, or create a new one explicitly if this node has never trained"
            ) from None
        except OSError as error:
            raise LedgerError(f"privacy ledger {path} cannot be read: {error.strerror}; {_FIX}") from None
        try:
            document = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise LedgerError(f"privacy ledger {path} is not UTF-8 text; {_FIX}") from None
        except json.JSONDecodeError as error:
            raise LedgerError(
                f"privacy ledger {path} is not valid JSON (line {error.lineno}, column {error.colno}: "
                f"{error.msg}); {_FIX}"
            ) from None
        return cls._from_document(path, document)

    @classmethod
    def _from_document(cls, path: Path, document: Any) -> PrivacyLedger:
        read = _Reader(path)
        schema = document.get("schema") if isinstance(document, dict) else None
        if schema not in (1, SCHEMA_VERSION) or isinstance(schema, bool):
            raise read.fail("schema", f"must be 1 or {SCHEMA_VERSION}, got {_short(schema)}")
        top = read.keys(document, _TOP_KEYS_V1 if schema == 1 else _TOP_KEYS, "the top level")
        if schema == 1 and top["accountant"] != "rdp":
            raise read.fail("accountant", f"must be 'rdp' in a schema 1 ledger, got {_short(top['accountant'])}")
        if top["accountant"] not in ACCOUNTANTS:
            raise read.fail("accountant", f"must be one of {', '.join(ACCOUNTANTS)}, got {_short(top['accountant'])}")
        accountant = str(top["accountant"])
        if top["unit"] != UNIT:
            raise read.fail("unit", f"must be {UNIT!r}, got {_short(top['unit'])}")
        node = read.text(top["node"], "node")
        delta = read.number(top["delta"], "delta", low=0.0, high=1.0)
        if delta >= 1.0:
            raise read.fail("delta", f"must be below 1, got {_short(delta)}")
        cap = read.positive(top["cap"], "cap")
        changes = _read_changes(read, top.get("accountant_changes", []))
        # The accountants in force over the ledger's life: the first one, then each switch's.
        first = changes[0].previous if changes else accountant
        if changes and changes[-1].accountant != accountant:
            raise read.fail("accountant", f"is {accountant!r} but the last recorded switch was to {changes[-1].accountant!r}")
        in_force = {first, *(change.accountant for change in changes)}

        if not isinstance(top["runs"], dict):
            raise read.fail("runs", f"must be an object, got {type(top['runs']).__name__}")
        runs: dict[str, RunPlan] = {}
        for run_id, raw_plan in top["runs"].items():
            key = f"runs[{run_id!r}]" if len(run_id) <= 40 else "runs[...]"
            read.text(run_id, key)
            fields = read.keys(raw_plan, _RUN_KEYS, key)
            runs[run_id] = RunPlan(
                noise_multiplier=read.positive(fields["noise_multiplier"], f"{key}.noise_multiplier"),
                sample_rate=read.number(fields["sample_rate"], f"{key}.sample_rate", low=0.0, high=1.0),
                planned_steps=read.integer(fields["planned_steps"], f"{key}.planned_steps", low=1),
                target_epsilon=read.positive(fields["target_epsilon"], f"{key}.target_epsilon"),
                created=read.timestamp(fields["created"], f"{key}.created"),
            )

        if not isinstance(top["entries"], list):
            raise read.fail("entries", f"must be a list, got {type(top['entries']).__name__}")
        entry_keys = frozenset(LedgerEntry.__dataclass_fields__)
        if schema == 1:
            entry_keys = entry_keys - {"accountant"}
        entries: list[LedgerEntry] = []
        rdp = np.zeros(len(ORDERS))
        tolerance = {"rel_tol": _EPSILON_TOLERANCE, "abs_tol": _EPSILON_TOLERANCE}
        for index, raw_entry in enumerate(top["entries"]):
            key = f"entries[{index}]"
            if isinstance(raw_entry, dict) and any(name not in raw_entry for name in _HISTORY_KEYS):
                raise LedgerError(
                    f"privacy ledger {path}: {key} lacks its (noise_multiplier, sample_rate, steps), so the node's "
                    "spend cannot be recomposed from its history; restore the ledger from a backup that has them "
                    "(the node trains nothing until then)"
                )
            fields = read.keys(raw_entry, entry_keys, key)
            entry_accountant = fields.get("accountant", "rdp")
            if entry_accountant not in ACCOUNTANTS:
                raise read.fail(f"{key}.accountant", f"must be one of {', '.join(ACCOUNTANTS)}")
            if entry_accountant not in in_force:
                raise read.fail(
                    f"{key}.accountant",
                    f"is {entry_accountant!r}, an accountant this ledger never had: it was switched without a "
                    "recorded operator command",
                )
            entry = LedgerEntry(
                run=read.text(fields["run"], f"{key}.run"),
                round=read.integer(fields["round"], f"{key}.round", low=1),
                steps=read.integer(fields["steps"], f"{key}.steps", low=0),
                noise_multiplier=read.positive(fields["noise_multiplier"], f"{key}.noise_multiplier"),
                sample_rate=read.number(fields["sample_rate"], f"{key}.sample_rate", low=0.0, high=1.0),
                epsilon_after=read.number(
                    fields["epsilon_after"], f"{key}.epsilon_after", low=0.0, high=math.inf, low_open=False
                ),
                recorded_at=read.timestamp(fields["recorded_at"], f"{key}.recorded_at"),
                accountant=str(entry_accountant),
            )
            plan = runs.get(entry.run)
            if plan is None:
                raise read.fail(f"{key}.run", "names a run that has no plan under 'runs'")
            if entry.noise_multiplier != plan.noise_multiplier:
                raise read.fail(f"{key}.noise_multiplier", "differs from its run's planned noise multiplier")
            rdp = rdp + rdp_of([entry.step])
            if entry.accountant == "rdp":
                # RDP is cheap: every entry is checked against the recomposed history.
                expected = epsilon_from_rdp(rdp, delta=delta)
                if not math.isclose(entry.epsilon_after, expected, **tolerance):
                    raise read.fail(
                        f"{key}.epsilon_after",
                        f"is {entry.epsilon_after!r} but the recorded steps give {expected!r}",
                    )
            # PRV entries: only the last one is recomputed (below); one PRV composition takes
            # seconds, and any edit of an earlier entry's steps changes the last one's history.
            entries.append(entry)
        _check_last_prv(read, entries, delta)
        if schema == 1:
            logger.info(
                "privacy ledger %s is schema 1: read with its full history under the rdp accountant; it is "
                "written as schema %d at its next change",
                path,
                SCHEMA_VERSION,
            )
        return cls(
            path=path, node=node, delta=delta, cap=cap, runs=runs, entries=entries, accountant=accountant, changes=changes
        )

    # -- changing --------------------------------------------------------------------------
    def save(self) -> None:
        """Write the ledger atomically (a reader sees the old file or the new one)."""
        try:
            atomic_write_json(self._path, self.to_dict())
        except OSError as error:
            raise LedgerError(f"privacy ledger {self._path} cannot be written: {error.strerror}") from None

    def set_cap(self, cap: float, *, allow_raise: bool = False) -> None:
        """Change the cap stored in the file.

        Lowering is always allowed. Raising needs ``allow_raise=True``: it is a decision
        of the node's operator (more epsilon means less privacy for every conversation
        the node holds) and must never be triggered by a training config.

        Raises
        ------
        ConfigError
            If ``cap`` is not a positive finite number, or raises the cap without ``allow_raise``.
        """
        cap = _check_cap(cap)
        if cap > self._cap and not allow_raise:
            raise ConfigError(
                f"raising the privacy cap of {self._path} from {self._cap:g} to {cap:g} needs an explicit "
                f"operator decision (cesagram node budget {self._path} --set-cap {cap:g} --raise); "
                "lowering is always allowed"
            )
        previous = self._cap
        self._cap = cap
        try:
            self.save()
        except BaseException:
            self._cap = previous
            raise
        logger.warning("privacy cap of %s changed from %g to %g", self._path, previous, cap)

    def switch_accountant(self, accountant: str) -> AccountantChange:
        """Recompose the whole history with ``accountant`` from now on, and record the switch.

        This is the node operator's decision, never a training config's: ``rdp`` to
        ``prv`` lowers the spend the ledger reads (a tighter bound on the same steps), so
        it leaves more of the cap to spend. The switch, with the spend before and after,
        is written into ``accountant_changes``; entries keep the accountant they were
        recorded with.

        Raises
        ------
        ConfigError
            If ``accountant`` is unknown or already the ledger's.
        LedgerError
            If the file cannot be written (then nothing changed in memory either).
        """
        accountant = validate_accountant(accountant, name="--switch-accountant")
        if accountant == self._accountant:
            raise ConfigError(f"privacy ledger {self._path} is already kept by the {accountant} accountant")
        before = self.spent
        after = epsilon_of(self.history, delta=self._delta, accountant=accountant)
        change = AccountantChange(
            previous=self._accountant, accountant=accountant, at=utc_now(), spent_before=before, spent_after=after
        )
        previous, changes = self._accountant, self._changes
        self._accountant, self._changes = accountant, [*self._changes, change]
        try:
            self.save()
        except BaseException:
            self._accountant, self._changes = previous, changes
            raise
        logger.warning(
            "privacy ledger %s: accountant switched from %s to %s by its operator (spent epsilon %.4f -> %.4f)",
            self._path,
            previous,
            accountant,
            before,
            after,
        )
        return change

    def record(
        self,
        *,
        run_id: str,
        round: int,
        steps: int,
        noise_multiplier: float,
        sample_rate: float,
        plan: RunPlan | None = None,
    ) -> LedgerEntry:
        """Append one training call's spend (and its run's plan when new) and save atomically.

        Raises
        ------
        LedgerError
            If the run has no plan and none is given, if ``noise_multiplier`` is not the
            run's, or if the file cannot be written (then nothing changed in memory either).

        Notes
        -----
        Call this *before* the trained weights leave the node: a spend that is not on
        disk must not have a released model.
        """
        runs = dict(self._runs)
        if plan is not None:
            if run_id in runs and runs[run_id] != plan:
                raise LedgerError(f"privacy ledger {self._path} already holds a different plan for this run")
            runs[run_id] = plan
        if run_id not in runs:
            raise LedgerError(f"privacy ledger {self._path} has no noise plan for this run; plan it first")
        if noise_multiplier != runs[run_id].noise_multiplier:
            raise LedgerError(f"noise multiplier {noise_multiplier!r} is not the run's planned one")
        step = (float(noise_multiplier), float(sample_rate), int(steps))
        entry = LedgerEntry(
            run=run_id,
            round=int(round),
            steps=int(steps),
            noise_multiplier=float(noise_multiplier),
            sample_rate=float(sample_rate),
            epsilon_after=epsilon_of([*self.history, step], delta=self._delta, accountant=self._accountant),
            recorded_at=utc_now(),
            accountant=self._accountant,
        )
        before = (self._runs, self._entries)
        self._runs, self._entries = runs, [*self._entries, entry]
        try:
            self.save()
        except BaseException:
            self._runs, self._entries = before
            raise
        return entry


def open_or_create(path: Path, *, node: str, cap: float, delta: float, accountant: str = ACCOUNTANT) -> PrivacyLedger:
    """Open the ledger at ``path``, creating it (kept by ``accountant``) only if nothing at all is there.

    A file that is present but unreadable or corrupt still raises :class:`LedgerError`:
    only a node that has never had a ledger starts with a full budget. A present ledger
    keeps its own accountant, whatever ``accountant`` says.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        return PrivacyLedger.open(path)
    try:
        return PrivacyLedger.create(path, node=node, cap=cap, delta=delta, accountant=accountant)
    except LedgerError:
        if path.exists():  # another process created it between our check and our lock
            return PrivacyLedger.open(path)
        raise


def _read_changes(read: _Reader, raw: Any) -> list[AccountantChange]:
    """The recorded accountant switches, each from the accountant in force before it."""
    if not isinstance(raw, list):
        raise read.fail("accountant_changes", f"must be a list, got {type(raw).__name__}")
    changes: list[AccountantChange] = []
    for index, item in enumerate(raw):
        key = f"accountant_changes[{index}]"
        fields = read.keys(item, frozenset({"from", "to", "at", "spent_before", "spent_after"}), key)
        for name in ("from", "to"):
            if fields[name] not in ACCOUNTANTS:
                raise read.fail(f"{key}.{name}", f"must be one of {', '.join(ACCOUNTANTS)}")
        if fields["from"] == fields["to"] or (changes and changes[-1].accountant != fields["from"]):
            raise read.fail(f"{key}.from", "does not follow from the switch before it")
        changes.append(
            AccountantChange(
                previous=str(fields["from"]),
                accountant=str(fields["to"]),
                at=read.timestamp(fields["at"], f"{key}.at"),
                spent_before=read.number(fields["spent_before"], f"{key}.spent_before", low=0.0, high=math.inf, low_open=False),
                spent_after=read.number(fields["spent_after"], f"{key}.spent_after", low=0.0, high=math.inf, low_open=False),
            )
        )
    return changes


def _check_last_prv(read: _Reader, entries: list[LedgerEntry], delta: float) -> None:
    """Check the last PRV entry against its recomposed history (one PRV computation, not one per entry).

    Any edit of an earlier entry's steps changes that history, so it is caught here too.
    """
    last = max((i for i, entry in enumerate(entries) if entry.accountant == "prv"), default=None)
    if last is None:
        return
    expected = epsilon_of([entry.step for entry in entries[: last + 1]], delta=delta, accountant="prv")
    if not math.isclose(entries[last].epsilon_after, expected, rel_tol=_PRV_TOLERANCE, abs_tol=_PRV_TOLERANCE):
        raise read.fail(
            f"entries[{last}].epsilon_after", f"is {entries[last].epsilon_after!r} but the recorded steps give {expected!r}"
        )


def _check_cap(cap: float) -> float:
    if not is_finite_number(cap) or cap <= 0:
        raise ConfigError(f"privacy cap (epsilon) must be a positive finite number, got {_short(cap)}")
    return float(cap)


def format_ledger(ledger: PrivacyLedger) -> str:
    """A person-readable summary: total spend, cap, what is left and each run's share."""
    spent = ledger.spent
    lines = [
        f"privacy ledger {ledger.path} (node {ledger.node})",
        f"  spent      epsilon {spent:.4f} at delta {ledger.delta:g} (accountant {ledger.accountant}, "
        f"unit: one {UNIT})",
        f"  cap        epsilon {ledger.cap:.4f}",
        f"  remaining  epsilon {ledger.remaining():.4f}",
    ]
    for change in ledger.accountant_changes:
        lines.append(
            f"  switched   accountant {change.previous} -> {change.accountant} at {change.at} by the operator "
            f"(spent read {change.spent_before:.4f} -> {change.spent_after:.4f})"
        )
    runs = ledger.runs
    if not runs:
        lines.append("  runs       none yet")
        return "\n".join(lines)
    lines.append("  runs")
    for run_id, plan in runs.items():
        entries = [entry for entry in ledger.entries if entry.run == run_id]
        rounds = sorted({entry.round for entry in entries})
        steps = sum(entry.steps for entry in entries)
        after = entries[-1].epsilon_after if entries else spent
        lines.append(
            f"    {run_id}: {len(rounds)} round(s) {_round_span(rounds)}, "
            f"{steps} steps of {plan.planned_steps} planned, "
            f"epsilon after {after:.4f} (run target {plan.target_epsilon:.4f}), "
            f"noise multiplier {plan.noise_multiplier:.4f}, sample rate {plan.sample_rate:.4g}"
        )
    return "\n".join(lines)


def _round_span(rounds: list[int]) -> str:
    if not rounds:
        return "(none)"
    if rounds == list(range(rounds[0], rounds[-1] + 1)):
        return f"({rounds[0]}-{rounds[-1]})" if len(rounds) > 1 else f"({rounds[0]})"
    return "(" + ", ".join(str(r) for r in rounds) + ")"
