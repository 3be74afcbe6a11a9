"""A node's own policy: what it agrees to do for a run, from its operator's settings only.

A real node (SuperNode) reads its policy from its ``--node-config``, written by
``cesagram node start`` from the operator's flags. A virtual node of a simulation reads
it from the ``CESAGRAM_VIRTUAL_NODE_POLICY`` environment variable, which the simulation
sets from its ``federation.node_policy`` settings before Flower starts: the researcher
is every node's operator, and the ServerApp's run config never enters.

:func:`check_request` compares a run's settings with the policy; a request outside it
raises :class:`PolicyDeclined` with a one-line reason naming the setting. The node then
declines (as for an exhausted budget): nothing is loaded, trained, recorded or sent.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from federation.errors import ConfigError, LedgerError, PolicyDeclined
from federation.histograms import round_count
from federation.io import atomic_write_json
from federation.models.cache import CACHE_DIR_ENV
from federation.privacy.ledger import ledger_lock
from federation.runconfig import AUDIT_KINDS, INPUT_KINDS, PRIVACY_MODES, WHITE_KINDS, RunSettings

#: Environment variable holding the virtual nodes' policy (JSON) in a simulation.
VIRTUAL_POLICY_ENV = "CESAGRAM_VIRTUAL_NODE_POLICY"

#: Bounds on the validation share a node may choose (outside them either training or the
#: threshold choice has almost nothing to work with).
VALIDATION_FRACTION_BOUNDS = (0.05, 0.5)

#: The policy's fields the node fills itself (the secret from its file beside the ledger,
#: the split seed from the secret): no flag, config key or ``federation.node_policy`` sets them.
DERIVED_FIELDS = ("secret", "split_seed")

_MODE_WORDS = {
    "record": "record-level DP-SGD",
    "central": "central DP (client-level noise at the server)",
    "none": "no DP",
}




@dataclass(frozen=True)
class NodePolicy:
    """What this node agrees to; every field has the safe default.

    Attributes
    ----------
    accept_privacy
        Privacy modes the node trains under. Record-level DP-SGD only by default;
        ``central`` and ``none`` need the operator's explicit opt-in (test federations).
    cache_dir
        The only folder the node writes embeddings to; a run asking for another one
        outside it is declined. Empty: ``$CESAGRAM_CACHE_DIR`` or ``~/.cache/cesagram``.
    validation_fraction
        Share of the node's conversations kept for validation, within
        :data:`VALIDATION_FRACTION_BOUNDS`; the run's value is ignored.
    split_seed
        Seed of the validation split, derived from the node secret (never from the run).
    secret
        The node secret (hex) mixed into the split, window and dropout seeds; it never
        leaves the node. Empty only for virtual nodes that want reproducible simulations.
    max_histogram_bins
        The finest score histogram the node sends (bins per class).
    max_latency_bins
        Bins of the early-warning latency histogram the node sends (the last counts every
        later latency); every node of a federation must use the same value.
    max_evaluations_per_run, max_evaluations_per_day
        Evaluate calls the node answers per run and per UTC day (all runs).
    max_rounds
        The longest run (``rounds``) it joins.
    count_granularity
        Counts that leave the node (conversations, positives, examples) are rounded to
        a multiple of this (at least this, when not zero).
    histogram_noise
        When > 0, the score histograms leave under DP: Gaussian noise of this standard
        deviation on every bin, charged to the ledger (:mod:`federation.privacy.release`).
    accept_audit
        Audits the node runs (``off`` always included). ``white`` by default: its canaries
        live in audit coordinates of their own, so they change nothing the head learns and
        no conversation's gradient reaches what the audit reports; an operator who does
        not want the extra computation or the audit figures to leave sets ``off`` only.
    """

    accept_privacy: tuple[str, ...] = ("record",)
    cache_dir: str = ""
    validation_fraction: float = 0.2
    split_seed: int = 0
    secret: str = ""
    max_histogram_bins: int = 200
    max_latency_bins: int = 200
    max_evaluations_per_run: int = 50
    max_evaluations_per_day: int = 200
    max_rounds: int = 100
    count_granularity: int = 10
    histogram_noise: float = 0.0
    accept_audit: tuple[str, ...] = ("off", "white")

    def __post_init__(self) -> None:
        unknown_audits = [kind for kind in self.accept_audit if kind not in AUDIT_KINDS]
        if unknown_audits:
            raise ConfigError(
                f"node policy accept-audit={','.join(self.accept_audit)!r}: choose from {', '.join(AUDIT_KINDS)}"
            )
        if "off" not in self.accept_audit:
            object.__setattr__(self, "accept_audit", ("off", *self.accept_audit))
        unknown = [mode for mode in self.accept_privacy if mode not in PRIVACY_MODES]
        if unknown or not self.accept_privacy:
            raise ConfigError(
                f"node policy accept-privacy={','.join(self.accept_privacy)!r}: choose from {', '.join(PRIVACY_MODES)}"
            )
        low, high = VALIDATION_FRACTION_BOUNDS
        if not low <= self.validation_fraction <= high:
            raise ConfigError(
                f"node policy validation-fraction={self.validation_fraction!r} must be in [{low}, {high}]"
            )
        for name in (
            "max_histogram_bins",
            "max_latency_bins",
            "max_evaluations_per_run",
            "max_evaluations_per_day",
            "max_rounds",
            "count_granularity",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"node policy {name.replace('_', '-')}={getattr(self, name)!r} must be >= 1")
        if not 0 <= self.histogram_noise < float("inf"):
            raise ConfigError(f"node policy histogram-noise={self.histogram_noise!r} must be >= 0 (0: off)")
        if self.max_histogram_bins < 10:
            raise ConfigError(f"node policy max-histogram-bins={self.max_histogram_bins!r} must be >= 10")

    @property
    def cache_folder(self) -> Path:
        """The node's cache folder, resolved."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser().resolve()
        folder = os.environ.get(CACHE_DIR_ENV)
        return (Path(folder).expanduser() if folder else Path.home() / ".cache" / "cesagram").resolve()

    def seed(self, *parts: object) -> int:
        """A 32-bit seed from ``parts`` with the node secret mixed in (unpredictable without it)."""
        words = [self.secret, *parts] if self.secret else list(parts)
        digest = hashlib.sha256(":".join(map(str, words)).encode("utf-8")).digest()
        return int.from_bytes(digest[:4], "big")

    # -- node config transport ---------------------------------------------------------------
    def to_node_config(self) -> dict[str, str | int | float]:
        """The policy as flat ``--node-config`` entries (``policy.<key>``); the secret stays a file."""
        return {
            "policy.accept-privacy": ",".join(self.accept_privacy),
            "policy.cache-dir": str(self.cache_folder),
            "policy.validation-fraction": float(self.validation_fraction),
            "policy.max-histogram-bins": int(self.max_histogram_bins),
            "policy.max-latency-bins": int(self.max_latency_bins),
            "policy.max-evaluations-per-run": int(self.max_evaluations_per_run),
            "policy.max-evaluations-per-day": int(self.max_evaluations_per_day),
            "policy.max-rounds": int(self.max_rounds),
            "policy.count-granularity": int(self.count_granularity),
            "policy.histogram-noise": float(self.histogram_noise),
            "policy.accept-audit": ",".join(self.accept_audit),
        }


_INT_FIELDS = {f.name for f in fields(NodePolicy) if f.type in ("int", int)}
_FLOAT_FIELDS = {f.name for f in fields(NodePolicy) if f.type in ("float", float)}


def policy_from_values(values: Mapping[str, Any], *, secret: str = "") -> NodePolicy:
    """Build a policy from kebab- or snake-case keys (unknown keys are an error, not ignored)."""
    kwargs: dict[str, Any] = {}
    known = {f.name for f in fields(NodePolicy)}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        if key not in known or key in DERIVED_FIELDS:
            raise ConfigError(f"node policy has no setting {raw_key!r}; known: {', '.join(sorted(known))}")
        try:
            if key in ("accept_privacy", "accept_audit"):
                items = value.split(",") if isinstance(value, str) else list(value)
                kwargs[key] = tuple(str(item).strip() for item in items if str(item).strip())
            elif key in _INT_FIELDS:
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise ValueError
                kwargs[key] = int(float(value))
            elif key in _FLOAT_FIELDS:
                kwargs[key] = float(value)
            else:
                kwargs[key] = str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"node policy {raw_key}={value!r} is not a valid value") from None
    split_seed = int.from_bytes(hashlib.sha256(f"split:{secret}".encode()).digest()[:8], "big") if secret else 0
    return NodePolicy(**kwargs, secret=secret, split_seed=split_seed)


def read_secret(path: Path) -> str:
    """The node secret at ``path`` (hex), or a one-line error naming the file and the fix."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise LedgerError(
            f"node secret {path}: cannot read it ({error.strerror}); create the node's files with "
            f"`cesagram node init LEDGER --cap EPSILON`"
        ) from None
    if len(text) < 32 or any(c not in "0123456789abcdef" for c in text):
        raise LedgerError(f"node secret {path} is damaged (not 32+ hex digits); restore it from the node's backup")
    return text


def create_secret(path: Path) -> Path:
    """Write a fresh 256-bit node secret with mode 0600; never overwrite one."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"node secret {path} already exists; a node keeps its secret for life") from None
    except OSError as error:
        raise ConfigError(f"node secret {path}: cannot create it ({error.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return path


def secret_path_for(ledger: Path) -> Path:
    """Where a node keeps its secret: beside its ledger, ``<ledger>.secret``."""
    ledger = Path(ledger)
    return ledger.with_name(ledger.name + ".secret")


def policy_from_node_config(node_config: Mapping[str, Any]) -> NodePolicy:
    """A real node's policy: the ``policy.*`` entries of its node config and its secret file.

    A node config without them gets the defaults (the safe ones); without ``secret-path``
    the seeds are not secret, which only test set-ups do.
    """
    values = {key[len("policy.") :]: value for key, value in node_config.items() if str(key).startswith("policy.")}
    secret = read_secret(Path(str(node_config["secret-path"]))) if "secret-path" in node_config else ""
    return policy_from_values(values, secret=secret)


def virtual_policy_env(values: Mapping[str, Any], *, split_seed: int, secret: str = "") -> dict[str, str]:
    """The environment entry that gives a simulation's virtual nodes their policy."""
    policy_from_values(values, secret=secret)  # validate now, in the researcher's process
    return {VIRTUAL_POLICY_ENV: json.dumps({"values": dict(values), "split_seed": int(split_seed), "secret": secret})}


def virtual_policy() -> NodePolicy:
    """A virtual node's policy from :data:`VIRTUAL_POLICY_ENV` (the defaults when unset)."""
    raw = os.environ.get(VIRTUAL_POLICY_ENV)
    if not raw:
        return NodePolicy()
    try:
        document = json.loads(raw)
        values, split_seed, secret = document["values"], int(document["split_seed"]), str(document["secret"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{VIRTUAL_POLICY_ENV} is not a node policy written by the simulation") from None
    policy = policy_from_values(values, secret=secret)
    return NodePolicy(**{**{f.name: getattr(policy, f.name) for f in fields(NodePolicy)}, "split_seed": split_seed})


# -- the checks --------------------------------------------------------------------------------
def _accepted(policy: NodePolicy) -> str:
    return " or ".join(_MODE_WORDS[mode] for mode in policy.accept_privacy)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


#: The most audit canaries a node mixes into its DP-SGD: a run asking for millions would turn
#: each step's extra coordinates into a memory exhaustion on the node's machine.
MAX_AUDIT_CANARIES = 100_000
#: The most canary conversations a black-box audit adds to the node's training data: each is
#: labelled at random on purpose, so thousands would drown the node's own conversations.
MAX_INPUT_CANARIES = 1_000


def check_request(policy: NodePolicy, run: RunSettings) -> None:
    """Raise :class:`PolicyDeclined` if the run asks for what the node does not agree to.

    ``privacy.accountant`` is not checked because it never reaches the node's accounting:
    the node composes with its own ledger's accountant, which only its operator changes.
    """
    mode = run.privacy.mode
    if mode not in policy.accept_privacy:
        raise PolicyDeclined(
            f"the run asks privacy={mode}; this node accepts {_accepted(policy)} only "
            f"(accept-privacy={','.join(policy.accept_privacy)})"
        )
    if run.privacy.audit not in policy.accept_audit:
        raise PolicyDeclined(
            f"the run asks privacy.audit={run.privacy.audit}; this node runs audits "
            f"{', '.join(policy.accept_audit)} only (accept-audit)"
        )
    if run.privacy.audit in WHITE_KINDS and run.privacy.audit_canaries > MAX_AUDIT_CANARIES:
        raise PolicyDeclined(
            f"the run asks privacy.audit_canaries={run.privacy.audit_canaries}; this node mixes in at most "
            f"{MAX_AUDIT_CANARIES:,} canaries (each adds a coordinate to every DP-SGD step)"
        )
    if run.privacy.audit in INPUT_KINDS and run.privacy.audit_input_canaries > MAX_INPUT_CANARIES:
        raise PolicyDeclined(
            f"the run asks privacy.audit_input_canaries={run.privacy.audit_input_canaries}; this node trains on at "
            f"most {MAX_INPUT_CANARIES:,} canary conversations (each is labelled at random on purpose)"
        )
    if run.rounds > policy.max_rounds:
        raise PolicyDeclined(
            f"the run asks rounds={run.rounds}; this node joins runs of at most {policy.max_rounds} (max-rounds)"
        )
    if run.cache_dir:
        asked = Path(run.cache_dir).expanduser().resolve()
        if not _inside(asked, policy.cache_folder):
            raise PolicyDeclined(
                f"the run asks cache-dir={run.cache_dir}; this node keeps its cache in {policy.cache_folder} only "
                "(cache-dir)"
            )


def check_evaluation(policy: NodePolicy, run: RunSettings) -> None:
    """Raise :class:`PolicyDeclined` if an evaluation would send more detail than the policy allows."""
    bins = run.evaluation.histogram_bins
    if bins > policy.max_histogram_bins:
        raise PolicyDeclined(
            f"the run asks evaluation.histogram_bins={bins}; this node sends at most "
            f"{policy.max_histogram_bins} bins (max-histogram-bins)"
        )


#: The noise multiplier a node reports is rounded up to a multiple of this: it follows from
#: the node's exact number of conversations, which only leaves rounded.
NOISE_MULTIPLIER_STEP = 0.25


def coarse_noise_multiplier(value: float | None) -> float:
    """``value`` rounded *up* to :data:`NOISE_MULTIPLIER_STEP` (0 without DP).

    Up, so that the server's bound on an honest update, which grows with the noise, stays a
    bound.
    """
    if not value:
        return 0.0
    return math.ceil(float(value) / NOISE_MULTIPLIER_STEP) * NOISE_MULTIPLIER_STEP


def coarse_count(value: int, policy: NodePolicy) -> int:
    """``value`` rounded to the policy's granularity (never 0 for a non-empty set)."""
    return round_count(value, policy.count_granularity)


# -- evaluation quota --------------------------------------------------------------------------
def quota_path_for(ledger: Path) -> Path:
    """Where a node counts the evaluate calls it answered: ``<ledger>.evaluations.json``."""
    ledger = Path(ledger)
    return ledger.with_name(ledger.name + ".evaluations.json")


def charge_evaluation(path: Path, *, run_id: str, day: str, policy: NodePolicy) -> int:
    """Count one evaluate call of ``run_id`` on ``day``; raise :class:`PolicyDeclined` past a limit.

    The counts live in a small JSON file beside the ledger, updated under its lock, so
    that restarts and parallel processes of the node share one quota. Returns the call's
    number within the run.
    """
    path = Path(path)
    with ledger_lock(path):
        try:
            document = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"runs": {}, "days": {}}
            runs = {str(k): int(v) for k, v in document["runs"].items()}
            days = {str(k): int(v) for k, v in document["days"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise LedgerError(
                f"evaluation counts {path} are damaged; restore the file from a backup (the node answers no "
                "evaluation until then)"
            ) from None
        if runs.get(run_id, 0) >= policy.max_evaluations_per_run:
            raise PolicyDeclined(
                f"this node has answered {runs[run_id]} evaluations of this run, its limit "
                f"(max-evaluations-per-run={policy.max_evaluations_per_run})"
            )
        if days.get(day, 0) >= policy.max_evaluations_per_day:
            raise PolicyDeclined(
                f"this node has answered {days[day]} evaluations today, its limit "
                f"(max-evaluations-per-day={policy.max_evaluations_per_day})"
            )
        runs[run_id] = runs.get(run_id, 0) + 1
        days[day] = days.get(day, 0) + 1
        recent = dict(sorted(days.items())[-31:])  # a month of days is enough to enforce "per day"
        atomic_write_json(path, {"runs": runs, "days": recent})
        return runs[run_id]
