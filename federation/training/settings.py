"""What one local training call takes and gives back: its settings, DP mechanism and results.

Plain frozen dataclasses that check their values on construction, so a wrong training
setting fails with a one-line :class:`~federation.errors.ConfigError` before any step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from federation.checks import is_finite_number, is_integer
from federation.errors import ConfigError, DataError
from federation.privacy.accounting import ACCOUNTANT, validate_delta
from federation.privacy.audit import CanaryState

__all__ = [
    "DPParams",
    "EvalResult",
    "OptimizerName",
    "TrainResult",
    "TrainSettings",
    "effective_batch",
    "steps_per_call",
]

OptimizerName = Literal["adam", "sgd"]
_OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")


def _bad(field: str, value: object, need: str) -> ConfigError:
    return ConfigError(f"training setting {field} must be {need}, got {value!r}")


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """How one local training call trains (the same for DP and non-DP training).

    Attributes
    ----------
    local_epochs
        Passes over the node's data per call; the call takes
        ``ceil(local_epochs * N / batch_size)`` steps (fractions allowed).
    batch_size
        Batch size; with DP the *expected* one, as the Poisson sample rate is
        ``batch_size / N`` (capped at 1).
    learning_rate, weight_decay
        Of the optimizer.
    optimizer
        ``"adam"`` or ``"sgd"``.
    momentum
        SGD momentum (ignored by Adam).
    proximal_mu
        FedProx's proximal weight (0 is plain FedAvg local training).
    train_window
        Messages per training window.
    seed
        Seeds window positions, dropout and (without DP) batch order. Never the DP
        sampling or noise, which are drawn from fresh OS entropy.
    max_step_noise
        The largest standard deviation of the DP noise one step may add to each weight,
        ``learning_rate * sigma * max_grad_norm / batch_size`` for SGD (noise multiplier
        ``sigma``). A call whose noise would exceed it takes smaller steps
        (:meth:`for_noise`), so a small budget gets steps no noisier than the default
        budget's. The default, 0.05, is the step noise of the defaults at epsilon 8 (sigma
        0.95-1.26 in the default federation: ``5 * 1.26 * 0.5 / 64 = 0.049``), where
        ``learning_rate`` was chosen; at epsilon 1 (sigma about 5) the step is about 1.2,
        and with ``batch_size=256`` (sigma about 11) about 2.4. None: the step size never
        follows the noise.

    The defaults are the ``train`` section of ``cesagram simulate``'s config (the Hydra
    schema takes them from here): SGD with momentum on clipped gradients, chosen on the
    nodes' validation F0.5 (Adam turns DP noise in idle coordinates into full-size steps).
    """

    local_epochs: float = 4.0
    batch_size: int = 64
    learning_rate: float = 5.0
    weight_decay: float = 0.0
    optimizer: OptimizerName = "sgd"
    momentum: float = 0.9
    proximal_mu: float = 0.0
    train_window: int = 50
    seed: int = 0
    max_step_noise: float | None = 0.05

    def __post_init__(self) -> None:
        if not is_finite_number(self.local_epochs) or self.local_epochs <= 0:
            raise _bad("local_epochs", self.local_epochs, "a positive number")
        if not is_integer(self.batch_size) or self.batch_size < 1:
            raise _bad("batch_size", self.batch_size, "a positive integer")
        if not is_finite_number(self.learning_rate) or self.learning_rate <= 0:
            raise _bad("learning_rate", self.learning_rate, "a positive number")
        if not is_finite_number(self.weight_decay) or self.weight_decay < 0:
            raise _bad("weight_decay", self.weight_decay, "a number >= 0")
        if self.optimizer not in _OPTIMIZERS:
            raise _bad("optimizer", self.optimizer, f"one of {', '.join(_OPTIMIZERS)}")
        if not is_finite_number(self.momentum) or not 0 <= self.momentum < 1:
            raise _bad("momentum", self.momentum, "a number in [0, 1)")
        if not is_finite_number(self.proximal_mu) or self.proximal_mu < 0:
            raise _bad("proximal_mu", self.proximal_mu, "a number >= 0 (0 turns FedProx off)")
        if not is_integer(self.train_window) or self.train_window < 1:
            raise _bad("train_window", self.train_window, "a positive integer")
        if not is_integer(self.seed):
            raise _bad("seed", self.seed, "an integer")
        if self.max_step_noise is not None and (not is_finite_number(self.max_step_noise) or self.max_step_noise <= 0):
            raise _bad("max_step_noise", self.max_step_noise, "a positive number or null")

    def for_noise(self, noise_multiplier: float, *, max_grad_norm: float, expected_batch: float) -> TrainSettings:
        """These settings for a DP-SGD call: the step size lowered until a step's noise is at most ``max_step_noise``."""
        step_noise = self.learning_rate * noise_multiplier * max_grad_norm / expected_batch
        if self.max_step_noise is None or step_noise <= self.max_step_noise:
            return self
        return replace(self, learning_rate=self.learning_rate * self.max_step_noise / step_noise)


@dataclass(frozen=True, slots=True)
class DPParams:
    """DP-SGD mechanism of one training call.

    Attributes
    ----------
    noise_multiplier
        Noise standard deviation over ``max_grad_norm``; must be positive (use
        ``dp=None`` for non-private training).
    max_grad_norm
        Per-conversation gradient clipping norm.
    delta
        Delta at which the call's epsilon is reported.
    accountant
        Accountant of the call's reported epsilon (``rdp`` or ``prv``); under a ledger,
        the ledger's.
    noise_seed
        Tests only: seeds Poisson sampling and noise. ``None`` (the default) draws them
        from OS entropy. Anyone who knows the seed can subtract the noise, so a seeded
        run has no privacy guarantee.
    audit_control
        The audit's control only: DP-SGD's sampling and clipping with ``noise_multiplier``
        0, so no privacy at all (epsilon infinite); it shows that the audit detects a
        mechanism without noise.
    """

    noise_multiplier: float
    max_grad_norm: float
    delta: float
    noise_seed: int | None = None
    accountant: str = ACCOUNTANT
    audit_control: bool = False

    def __post_init__(self) -> None:
        if self.audit_control:
            if self.noise_multiplier != 0:
                raise ConfigError("the audit control runs DP-SGD without noise: its noise_multiplier must be 0")
        elif not is_finite_number(self.noise_multiplier) or self.noise_multiplier <= 0:
            raise ConfigError(
                f"privacy noise_multiplier must be a positive number, got {self.noise_multiplier!r}; "
                "train without DP explicitly instead of with zero noise"
            )
        if not is_finite_number(self.max_grad_norm) or self.max_grad_norm <= 0:
            raise ConfigError(f"privacy max_grad_norm must be a positive number, got {self.max_grad_norm!r}")
        validate_delta(self.delta, name="privacy delta")
        if self.noise_seed is not None and not is_integer(self.noise_seed):
            raise ConfigError(f"noise_seed must be an integer or None, got {self.noise_seed!r}")


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What one training call gives back.

    Attributes
    ----------
    arrays
        The trained head's weights (``head_arrays`` order, no ``_module.`` prefix).
    num_examples
        Conversations at the node (N), the FedAvg weight.
    steps
        Optimizer steps taken (with DP, also the steps accounted).
    train_loss
        Mean training loss over the steps' batches (NaN if every batch was empty).
        Computed on private data and *not* covered by DP.
    seconds
        Wall time of the call.
    noise_multiplier, sample_rate
        The DP mechanism (None without DP).
    epsilon, delta, accountant
        With DP: epsilon at ``delta`` (by ``accountant``: the call's, or the ledger's). From :func:`train`, the spend of
        this call alone; from :func:`train_with_ledger`, the node's total after the call.
    canary_scores
        With a white-box audit: this call's score of every canary (the sum over steps of
        the noisy summed gradient along its direction, in clipping norms). Node-side only.
    canaries
        From :func:`train_with_ledger` with an audit: the run's canaries after the call.
    """

    arrays: list[np.ndarray]
    num_examples: int
    steps: int
    train_loss: float
    seconds: float
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    epsilon: float | None = None
    delta: float | None = None
    accountant: str | None = None
    canary_scores: np.ndarray | None = None
    canaries: CanaryState | None = None


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Evaluation of a head on a node's conversations.

    Attributes
    ----------
    loss
        Mean binary cross-entropy of the conversation scores (0.0 when there is no
        conversation, with ``num_examples`` 0).
    scores
        float32 ``[N]`` conversation scores: the highest sigmoid score over the windows
        ending at each message.
    labels
        int64 ``[N]``.
    num_examples
        N.
    per_message
        Per conversation, float32 ``[length]``: the score of the window ending at each
        message (what early warnings are decided on).

    Notes
    -----
    ``scores``, ``labels`` and ``per_message`` are per conversation: they stay in the
    node's process, callers turn them into aggregate metrics before anything leaves the
    node.
    """

    loss: float
    scores: np.ndarray
    labels: np.ndarray
    num_examples: int
    per_message: list[np.ndarray] = field(default_factory=list)


def effective_batch(settings: TrainSettings, n: int) -> int:
    """The batch a call of ``n`` conversations uses: never more than all of them."""
    return min(settings.batch_size, n)


def steps_per_call(settings: TrainSettings, *, num_examples: int) -> int:
    """Steps one call takes: ``ceil(local_epochs * N / min(batch_size, N))``."""
    if num_examples < 1:
        raise DataError("the node has no training conversations; give it data or leave it out of training")
    batch = effective_batch(settings, num_examples)
    return max(1, math.ceil(settings.local_epochs * num_examples / batch))

