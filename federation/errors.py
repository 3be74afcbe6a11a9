"""One exception root for everything a user can get wrong.

Entry points catch :class:`CesagramError`, print its one-line message and exit with
``exit_code``; nothing below them prints tracebacks for bad input. Messages name the
file, line or config key and the fix, and never contain chat text or author ids.
"""

from __future__ import annotations


class CesagramError(Exception):
    """Root of the project's expected errors (bad input, bad config, exhausted budget)."""

    exit_code: int = 1


class ConfigError(CesagramError):
    """A configuration value is missing, of the wrong type or out of range."""

    exit_code = 2


class DataError(CesagramError):
    """A data file is missing, unreadable or holds invalid records."""


class PrivacyBudgetExceeded(CesagramError):
    """Training would take a node past its own privacy cap; nothing was changed."""

    exit_code = 3


class LedgerError(CesagramError):
    """A privacy ledger is missing, corrupt or inconsistent: fail closed, train nothing."""

    exit_code = 3


class ModelBundleError(CesagramError):
    """A model bundle is missing, corrupt or was trained with another encoder."""


class DeploymentError(CesagramError):
    """A Flower process could not be started, reached or trusted."""

    exit_code = 4


class PolicyDeclined(CesagramError):
    """The run asks for something outside this node's policy: the node declines the round."""

    exit_code = 3


class CheckpointError(CesagramError):
    """A checkpoint is missing, corrupt or belongs to another run."""

    exit_code = 2


class RuntimeFailure(CesagramError):
    """Flower's runtime could not be started or the run failed inside it."""
