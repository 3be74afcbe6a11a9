"""The one local training loop and the one evaluation, DP or not.

Nodes (the Flower ClientApp), the centralised and local-only baselines and the tests
all call :func:`train` and :func:`evaluate`; a node that must account for its privacy
spend calls :func:`train_with_ledger`, which wraps :func:`train` between a budget check
and a ledger write.

Each step, each sampled conversation contributes one random window of up to
``train_window`` consecutive messages ending at a random message: the head learns to
score conversations that are still growing (early detection), while one conversation
stays one unit of privacy.
"""

from __future__ import annotations

import copy
import logging
import math
import secrets
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from federation.errors import ConfigError, DataError, LedgerError, PrivacyBudgetExceeded
from federation.models.features import Batch, FeatureSet
from federation.models.weights import head_arrays, load_head_arrays
from federation.models.windows import highest_scores, window_scores
from federation.privacy.accounting import ACCOUNTANT, epsilon_of, validate_delta
from federation.privacy.audit import CANARY_NORM, CanaryState, audit_path_for, load_canaries, save_canaries
from federation.privacy.ledger import PrivacyLedger, ledger_lock, utc_now
from federation.privacy.plan import plan_run

if TYPE_CHECKING:  # Opacus is imported where DP-SGD runs: an evaluating ClientApp process never pays for it
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

__all__ = [
    "DPParams",
    "EvalResult",
    "TrainResult",
    "TrainSettings",
    "evaluate",
    "steps_per_call",
    "train",
    "train_audit_control",
    "train_with_ledger",
]

logger = logging.getLogger(__name__)

OptimizerName = Literal["adam", "sgd"]
_OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
_CAP_SLACK = 1e-9
_HOOK_WARNING = "Full backward hook is firing when gradients are computed with respect to module outputs"


def _bad(field: str, value: object, need: str) -> ConfigError:
    return ConfigError(f"training setting {field} must be {need}, got {value!r}")


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


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

    def __post_init__(self) -> None:
        if not _is_number(self.local_epochs) or self.local_epochs <= 0:
            raise _bad("local_epochs", self.local_epochs, "a positive number")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise _bad("batch_size", self.batch_size, "a positive integer")
        if not _is_number(self.learning_rate) or self.learning_rate <= 0:
            raise _bad("learning_rate", self.learning_rate, "a positive number")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            raise _bad("weight_decay", self.weight_decay, "a number >= 0")
        if self.optimizer not in _OPTIMIZERS:
            raise _bad("optimizer", self.optimizer, f"one of {', '.join(_OPTIMIZERS)}")
        if not _is_number(self.momentum) or not 0 <= self.momentum < 1:
            raise _bad("momentum", self.momentum, "a number in [0, 1)")
        if not _is_number(self.proximal_mu) or self.proximal_mu < 0:
            raise _bad("proximal_mu", self.proximal_mu, "a number >= 0 (0 turns FedProx off)")
        if not _is_int(self.train_window) or self.train_window < 1:
            raise _bad("train_window", self.train_window, "a positive integer")
        if not _is_int(self.seed):
            raise _bad("seed", self.seed, "an integer")


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
        elif not _is_number(self.noise_multiplier) or self.noise_multiplier <= 0:
            raise ConfigError(
                f"privacy noise_multiplier must be a positive number, got {self.noise_multiplier!r}; "
                "train without DP explicitly instead of with zero noise"
            )
        if not _is_number(self.max_grad_norm) or self.max_grad_norm <= 0:
            raise ConfigError(f"privacy max_grad_norm must be a positive number, got {self.max_grad_norm!r}")
        validate_delta(self.delta, name="privacy delta")
        if self.noise_seed is not None and not _is_int(self.noise_seed):
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


def _effective_batch(settings: TrainSettings, n: int) -> int:
    return min(settings.batch_size, n)


def steps_per_call(settings: TrainSettings, *, num_examples: int) -> int:
    """Steps one call takes: ``ceil(local_epochs * N / min(batch_size, N))``."""
    if num_examples < 1:
        raise DataError("the node has no training conversations; give it data or leave it out of training")
    batch = _effective_batch(settings, num_examples)
    return max(1, math.ceil(settings.local_epochs * num_examples / batch))


def _window_ends(lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random end per conversation: half the time its last message, else uniform in [1, length].

    A training window is labelled with its conversation's label. The first messages of a
    grooming conversation are small talk, so prefixes alone would mostly teach noise;
    every prefix length must still be trained, because scoring reads a window after every
    message and an untrained short window would raise false warnings.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    uniform = np.minimum(lengths, 1 + np.floor(rng.random(lengths.shape) * lengths).astype(np.int64))
    return np.where(rng.random(lengths.shape) < 0.5, lengths, uniform)


def _shuffled_batches(n: int, batch: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless fixed-size batches over successive random permutations (non-DP sampling)."""
    pending = np.zeros(0, dtype=np.int64)
    while True:
        while pending.size < batch:
            pending = np.concatenate([pending, rng.permutation(n)])
        yield pending[:batch]
        pending = pending[batch:]


def _poisson_batches(n: int, rate: float, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless Poisson batches: each conversation in independently with probability ``rate``."""
    while True:
        yield np.flatnonzero(rng.random(n) < rate)


def _build_optimizer(params: Sequence[nn.Parameter], settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    return torch.optim.SGD(params, lr=settings.learning_rate, momentum=settings.momentum, weight_decay=settings.weight_decay)


def _add_proximal_gradient(
    params: Sequence[nn.Parameter], anchor: Sequence[torch.Tensor], mu: float
) -> None:
    """Add FedProx's ``mu * (w - w_global)`` to each gradient (data-independent)."""
    with torch.no_grad():
        for param, reference in zip(params, anchor, strict=True):
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            param.grad.add_(param.detach() - reference, alpha=mu)


def _loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    logits = model(batch.x, batch.mask, batch.speaker)
    return F.binary_cross_entropy_with_logits(logits, batch.labels)


def _device_of(head: nn.Module) -> torch.device:
    for param in head.parameters():
        return param.device
    return torch.device("cpu")


def _plain_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    *,
    params: Sequence[nn.Parameter],
    anchor: Sequence[torch.Tensor],
    mu: float,
) -> float:
    """One ordinary optimizer step; returns the batch loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = _loss(model, batch)
    loss.backward()
    if anchor:
        _add_proximal_gradient(params, anchor, mu)
    optimizer.step()
    return float(loss.detach())


@dataclass
class _Canaries:
    """The white-box canaries of one call: the audit coordinates and the scores they gather.

    The canaries live in ``m`` audit coordinates of their own (canary ``i`` points along
    the ``i``-th), one more parameter of the same DP optimizer: clipped, summed, noised and
    scaled by the very code that does it for the head, and never exported. No
    conversation's gradient touches them, so the canaries change nothing the head learns,
    and orthogonal directions keep every canary's score free of the others' (the default
    head has 388 weights: 1000 random directions among them could not be).
    """

    members: np.ndarray  # indices of the "in" canaries (the only ones ever sampled)
    coordinates: nn.Parameter
    scores: torch.Tensor

    def add_rows(self, params: Sequence[nn.Parameter], rows: int, sampled: np.ndarray, clip: float) -> None:
        """Append one per-record gradient per sampled canary (norm ``CANARY_NORM * clip``, before clipping)."""
        k = int(sampled.size)
        for param in params:
            zeros = torch.zeros((k, *param.shape), dtype=param.dtype, device=param.device)
            param.grad_sample = torch.cat([param.grad_sample, zeros]) if k else param.grad_sample
        grad = torch.zeros((rows + k, self.coordinates.numel()), dtype=self.coordinates.dtype, device=self.coordinates.device)
        if k:
            grad[torch.arange(rows, rows + k), torch.as_tensor(self.members[sampled], dtype=torch.long)] = CANARY_NORM * clip
        self.coordinates.grad_sample = grad

    def gather(self, expected_batch: float, clip: float) -> None:
        """Add this step's noisy sum along each canary (the optimizer divided it by the expected batch)."""
        self.scores += self.coordinates.grad.detach().double() * (expected_batch / clip)


def _dp_step(
    wrapped: GradSampleModule,
    optimizer: DPOptimizer,
    batch: Batch,
    *,
    params: Sequence[nn.Parameter],
    anchor: Sequence[torch.Tensor],
    mu: float,
    canaries: _Canaries | None = None,
    sampled: np.ndarray | None = None,
) -> float | None:
    """One DP-SGD step (clip, sum, noise, scale, update); returns the loss, None if empty.

    An empty Poisson sample is still a step of the mechanism: the clipped sum is zero,
    the noise is added as usual and the step is accounted. Sampled canaries (indices into
    ``canaries.members``) join the batch as records of their own, before clipping.
    """
    optimizer.zero_grad(set_to_none=True)
    loss: float | None = None
    if len(batch):
        value = _loss(wrapped, batch)
        value.backward()
        loss = float(value.detach())
    else:
        for param in params:
            param.grad_sample = torch.zeros((0, *param.shape), dtype=param.dtype, device=param.device)
    if canaries is not None:
        canaries.add_rows(params, len(batch), np.zeros(0, dtype=np.int64) if sampled is None else sampled, optimizer.max_grad_norm)
    if optimizer.pre_step():  # clip, sum, add noise, divide by the expected batch size
        if canaries is not None:
            canaries.gather(optimizer.expected_batch_size * optimizer.accumulated_iterations, optimizer.max_grad_norm)
        if anchor:  # FedProx after the noise: data-independent, so it costs no privacy
            _add_proximal_gradient(params, anchor, mu)
        optimizer.original_optimizer.step()
    return loss


def _unwrapped(head: nn.Module) -> nn.Module:
    """The module inside an Opacus ``GradSampleModule`` (none exists while Opacus is not imported)."""
    if "opacus" in sys.modules:
        from opacus import GradSampleModule

        if isinstance(head, GradSampleModule):
            return head._module
    return head


def train(
    *,
    head: nn.Module,
    data: FeatureSet,
    settings: TrainSettings,
    dp: DPParams | None,
    global_arrays: list[np.ndarray] | None = None,
    canaries: np.ndarray | None = None,
) -> TrainResult:
    """Train a copy of ``head`` on the node's conversations and return its weights.

    Parameters
    ----------
    head
        The model to start from; never modified (a deep copy is trained).
    data
        The node's training conversations.
    settings
        Loop settings.
    dp
        DP-SGD mechanism, or None for non-private training.
    global_arrays
        Weights to start from (the round's global model); also FedProx's anchor. When
        None, training starts from, and FedProx anchors at, ``head``'s weights.
    canaries
        White-box audit (needs ``dp``): ``[m]`` bool, the secret membership of ``m``
        gradient canaries. Each "in" canary is Poisson-sampled at every step at the rate
        of the conversations (in the same draw) and contributes a gradient along its own
        audit coordinate, clipped, summed and noised with theirs; the call returns every
        canary's score in ``canary_scores``. Canaries never count as conversations
        (``num_examples``, the sample rate and the expected batch are the conversations').

    Returns
    -------
    TrainResult

    Raises
    ------
    DataError
        If ``data`` holds no conversation.
    ConfigError
        If the head has layers Opacus cannot compute per-sample gradients for, or
        canaries are asked without DP-SGD.

    Notes
    -----
    With ``dp``: DP-SGD through Opacus (``GradSampleModule`` + ``DPOptimizer``). Each step
    Poisson-samples conversations at rate ``q = min(1, batch_size / N)`` (a step whose
    sample is empty still adds noise and counts), clips each conversation's gradient to
    ``max_grad_norm``, adds Gaussian noise of std ``noise_multiplier * max_grad_norm`` and
    divides by the expected batch size ``q * N``. One conversation is the unit of
    privacy: it contributes one window per step at most. Sampling and noise come from
    OS entropy unless ``dp.noise_seed`` is set (tests only).

    The FedProx term ``mu/2 * ||w - w_global||^2`` has gradient ``mu * (w - w_global)``,
    which does not depend on data; Opacus's per-sample gradients would not capture it
    anyway, so it is added to the gradient after clipping and noise, costing no privacy.
    Weight decay is likewise data-independent (applied by the inner optimizer).

    ``train_loss`` is a plain statistic of private data, not protected by DP.
    """
    n = len(data)
    steps = steps_per_call(settings, num_examples=n)
    batch_size = _effective_batch(settings, n)
    started = time.perf_counter()

    head = _unwrapped(head)  # never wrap a wrapped module (hooks would be added twice)
    model = copy.deepcopy(head)
    if global_arrays is not None:
        load_head_arrays(model, global_arrays)
    model.train()
    device = _device_of(model)
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params] if settings.proximal_mu > 0 else []
    optimizer = _build_optimizer(params, settings)
    window_rng = np.random.default_rng(settings.seed)
    lengths = data.lengths

    sample_rate: float | None = None
    wrapped: GradSampleModule | None = None
    dp_optimizer: DPOptimizer | None = None
    audit: _Canaries | None = None
    if canaries is not None and dp is None:
        raise ConfigError("a white-box audit needs DP-SGD's mechanism (dp); without DP use the audit control")
    if dp is None:
        batches = _shuffled_batches(n, batch_size, np.random.default_rng([settings.seed, 1]))
    else:
        sample_rate = batch_size / n
        secret = secrets.randbits(63) if dp.noise_seed is None else int(dp.noise_seed)
        if dp.noise_seed is not None:
            logger.warning("DP noise and sampling are seeded (noise_seed): no privacy guarantee, tests only")
        if canaries is not None:
            members = np.asarray(canaries, dtype=bool)
            coordinates = nn.Parameter(torch.zeros(members.size, device=device))
            optimizer.add_param_group({"params": [coordinates], "lr": 0.0, "weight_decay": 0.0})
            audit = _Canaries(
                members=np.flatnonzero(members),
                coordinates=coordinates,
                scores=torch.zeros(members.size, dtype=torch.float64, device=device),
            )
        # The "in" canaries are items n, n+1, ... of the same Poisson draw as the conversations.
        extra = 0 if audit is None else int(audit.members.size)
        batches = _poisson_batches(n + extra, sample_rate, np.random.default_rng([secret, 0]))
        generator = torch.Generator(device=device)
        generator.manual_seed(secret)
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        try:
            wrapped = GradSampleModule(model, batch_first=True, loss_reduction="mean")
        except Exception as error:  # noqa: BLE001 - opacus raises several types for unsupported layers
            raise ConfigError(
                f"head {type(head).__name__} cannot be trained with DP-SGD ({type(error).__name__}: {error}); "
                "use a head built from Opacus-supported layers"
            ) from None
        dp_optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=float(dp.noise_multiplier),
            max_grad_norm=dp.max_grad_norm,
            expected_batch_size=batch_size,
            loss_reduction="mean",
            generator=generator,
        )

    losses: list[tuple[float, int]] = []
    empty_steps = 0
    rng_devices = [] if device.type == "cpu" else [device]
    with torch.random.fork_rng(devices=rng_devices), warnings.catch_warnings():
        # Opacus's backward hooks on a first layer whose input needs no gradient: harmless.
        warnings.filterwarnings("ignore", message=_HOOK_WARNING)
        torch.manual_seed(settings.seed)  # dropout only; the DP noise has its own generator
        for _, drawn in zip(range(steps), batches):
            indices, sampled = drawn[drawn < n], drawn[drawn >= n] - n
            ends = _window_ends(lengths[indices], window_rng)
            batch = data.batch(indices, window=settings.train_window, ends=ends).to(device)
            proximal = {"params": params, "anchor": anchor, "mu": settings.proximal_mu}
            if dp_optimizer is None:
                loss = _plain_step(model, optimizer, batch, **proximal)
            else:
                loss = _dp_step(wrapped, dp_optimizer, batch, **proximal, canaries=audit, sampled=sampled)
            if loss is None:
                empty_steps += 1
            else:
                losses.append((loss, len(batch)))
    if wrapped is not None:
        dp_optimizer.zero_grad(set_to_none=True)
        wrapped.cleanup()
    model.eval()

    seen = sum(count for _, count in losses)
    train_loss = sum(value * count for value, count in losses) / seen if seen else math.nan
    result = TrainResult(
        arrays=head_arrays(model),
        num_examples=n,
        steps=steps,
        train_loss=float(train_loss),
        seconds=time.perf_counter() - started,
    )
    if dp is not None:
        result = replace(
            result,
            noise_multiplier=float(dp.noise_multiplier),
            sample_rate=sample_rate,
            epsilon=(
                math.inf
                if dp.audit_control
                else epsilon_of([(dp.noise_multiplier, sample_rate, steps)], delta=dp.delta, accountant=dp.accountant)
            ),
            delta=float(dp.delta),
            accountant=dp.accountant,
            canary_scores=None if audit is None else audit.scores.cpu().numpy(),
        )
    logger.debug(
        "trained %d steps on %d conversations (%d empty Poisson batches), loss %.4f, %.2f s",
        steps,
        n,
        empty_steps,
        result.train_loss,
        result.seconds,
    )
    return result


def evaluate(*, head: nn.Module, data: FeatureSet, window: int) -> EvalResult:
    """Score each conversation as it would be in deployment and compute the loss.

    Parameters
    ----------
    head
        The model; its training mode is restored afterwards, its weights untouched.
    data
        Conversations to evaluate.
    window
        Messages per scored window.

    Returns
    -------
    EvalResult
        Conversation scores (the highest window score, as deployed) and the binary
        cross-entropy of those scores against the labels.
    """
    labels = np.asarray(data.labels, dtype=np.int64)
    if len(data) == 0:
        return EvalResult(loss=0.0, scores=np.zeros(0, dtype=np.float32), labels=labels, num_examples=0)
    head = _unwrapped(head)
    per_message = window_scores(head, data, window=window)
    scores = highest_scores(per_message)
    clipped = np.clip(scores.astype(np.float64), 1e-7, 1.0 - 1e-7)
    loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped)))
    return EvalResult(loss=loss, scores=scores, labels=labels, num_examples=len(data), per_message=per_message)


def train_with_ledger(
    *,
    ledger_path: Path,
    run_id: str,
    round: int,
    planned_rounds: int,
    run_epsilon: float,
    cap: float,
    delta: float,
    head: nn.Module,
    data: FeatureSet,
    settings: TrainSettings,
    dp_clip: float,
    global_arrays: list[np.ndarray] | None = None,
    lock_timeout_s: float = 3600.0,
    audit_canaries: int = 0,
) -> TrainResult:
    """DP-train under the node's privacy ledger: check the budget, train, record, return.

    Parameters
    ----------
    ledger_path
        The node's ledger; it must exist (see ``PrivacyLedger.create``).
    run_id
        The federation run; its noise plan is made at its first call and reused after.
    round
        Round number (1-based) of this call.
    planned_rounds
        Rounds the run plans; with the steps per call it sizes the run's noise plan.
    run_epsilon
        Epsilon the run may add to what the node has already spent.
    cap
        The node's own cap (node config, never the training config). The effective cap
        is the smaller of this and the ledger's cap.
    delta
        The node's delta; must equal the ledger's.
    head, data, settings, global_arrays
        As for :func:`train`.
    dp_clip
        Per-conversation clipping norm.
    lock_timeout_s
        How long to wait for another process holding the ledger.
    audit_canaries
        0 (no audit), or the number of the run's white-box canaries: drawn at the run's
        first call, kept in ``<ledger>.audit.json`` (their coin flips are the node's
        secret) and scored at every call, the mechanism of each call beside them.

    Returns
    -------
    TrainResult
        With ``epsilon`` the node's total spend after this call (all runs), at ``delta``;
        with an audit, ``canaries`` the run's canaries after the call.

    Raises
    ------
    LedgerError
        Missing, corrupt or inconsistent ledger, or another delta: nothing is trained.
    PrivacyBudgetExceeded
        If this call would take the node past its cap; nothing is changed (ledger bytes
        and ``head`` as before).

    Notes
    -----
    Holds an exclusive lock on ``<ledger>.lock`` from loading the ledger to recording
    the spend, so concurrent processes of one node cannot spend the same budget twice.
    The noise multiplier is fixed once per run from ``min(cap, spent + run_epsilon)`` and
    the steps of the rounds still to come (``planned_rounds - round + 1`` calls); a run
    resumed after a restart reuses it. Every call is checked against the cap with the
    sample rate and steps it really takes. The spend is written (atomically) before the
    weights are returned; if writing fails, the weights are discarded.
    """
    if not isinstance(run_id, str) or not run_id.strip():
        raise ConfigError(f"run id must be a non-empty string, got {run_id!r}")
    if not _is_int(round) or round < 1:
        raise ConfigError(f"round must be a positive integer, got {round!r}")
    if not _is_int(planned_rounds) or planned_rounds < 1:
        raise ConfigError(f"planned_rounds must be a positive integer, got {planned_rounds!r}")
    if not _is_number(cap) or cap <= 0:
        raise ConfigError(f"node privacy cap (epsilon) must be a positive number, got {cap!r}")
    if not _is_number(dp_clip) or dp_clip <= 0:
        raise ConfigError(f"privacy max_grad_norm must be a positive number, got {dp_clip!r}")
    delta = validate_delta(delta, name="privacy delta")
    n = len(data)
    steps = steps_per_call(settings, num_examples=n)
    sample_rate = _effective_batch(settings, n) / n

    with ledger_lock(Path(ledger_path), timeout_s=lock_timeout_s):
        ledger = PrivacyLedger.open(Path(ledger_path))
        if ledger.delta != delta:
            raise LedgerError(
                f"privacy ledger {ledger.path} was kept at delta {ledger.delta:g}, this node is configured "
                f"with delta {delta:g}; a ledger keeps one delta for life: set the node's delta back"
            )
        effective_cap = min(float(cap), ledger.cap)
        if cap > ledger.cap:
            logger.warning(
                "node cap %g is above the ledger's cap %g; using %g (raising a ledger's cap is an operator act)",
                cap,
                ledger.cap,
                ledger.cap,
            )
        history = ledger.history
        accountant = ledger.accountant  # the node's own, never the run's
        spent = epsilon_of(history, delta=delta, accountant=accountant)
        plan = ledger.runs.get(run_id)
        new_plan = None
        if plan is None:
            if round > planned_rounds:
                raise ConfigError(
                    f"round {round} is past the run's planned_rounds {planned_rounds}; "
                    "set planned_rounds to the run's number of rounds"
                )
            new_plan = plan = plan_run(
                history=history,
                delta=delta,
                cap=effective_cap,
                run_epsilon=run_epsilon,
                sample_rate=sample_rate,
                planned_steps=steps * (planned_rounds - round + 1),
                created=utc_now(),
                accountant=accountant,
            )
        elif plan.sample_rate != sample_rate:
            logger.warning(
                "sample rate %.4g differs from the run plan's %.4g (data size changed); accounting uses the real one",
                sample_rate,
                plan.sample_rate,
            )
        needed = epsilon_of([*history, (plan.noise_multiplier, sample_rate, steps)], delta=delta, accountant=accountant)
        if needed > effective_cap + _CAP_SLACK:
            raise PrivacyBudgetExceeded(
                f"privacy budget exceeded: this call ({steps} steps) would take the node from epsilon "
                f"{spent:.4f} to {needed:.4f}, past its cap {effective_cap:.4f} (delta {delta:g}); "
                "nothing was trained or recorded: stop training this node or have its operator raise the cap"
            )
        if needed > plan.target_epsilon + _CAP_SLACK:
            logger.warning(
                "run %s goes past its planned epsilon %.4f (now %.4f): more calls than planned",
                run_id,
                plan.target_epsilon,
                needed,
            )
        dp = DPParams(
            noise_multiplier=plan.noise_multiplier, max_grad_norm=float(dp_clip), delta=delta, accountant=accountant
        )
        audit_path = audit_path_for(Path(ledger_path))
        state = load_canaries(audit_path, run_id=run_id, canaries=audit_canaries) if audit_canaries else None
        members = None if state is None else state.members
        result = train(head=head, data=data, settings=settings, dp=dp, global_arrays=global_arrays, canaries=members)
        entry = ledger.record(
            run_id=run_id,
            round=round,
            steps=result.steps,
            noise_multiplier=plan.noise_multiplier,
            sample_rate=sample_rate,
            plan=new_plan,
        )
        if state is not None:  # after the spend is recorded: a call the audit saw is always accounted
            _score_call(state, result)
            save_canaries(audit_path, run_id=run_id, state=state)
    logger.info(
        "round %d: %d DP steps, node epsilon %.4f of cap %.4f (delta %g)",
        round,
        result.steps,
        entry.epsilon_after,
        effective_cap,
        delta,
    )
    return replace(result, epsilon=entry.epsilon_after, delta=delta, accountant=accountant, canaries=state)


def _score_call(state: CanaryState, result: TrainResult) -> None:
    """Add one call's canary scores and its mechanism to the run's canaries."""
    state.scores = state.scores + np.asarray(result.canary_scores, dtype=np.float64)
    state.history.append((float(result.noise_multiplier or 0.0), float(result.sample_rate or 0.0), int(result.steps)))


def train_audit_control(
    *,
    audit_path: Path,
    run_id: str,
    audit_canaries: int,
    head: nn.Module,
    data: FeatureSet,
    settings: TrainSettings,
    dp_clip: float,
    delta: float,
    global_arrays: list[np.ndarray] | None = None,
) -> TrainResult:
    """The audit's control: DP-SGD's Poisson sampling and clipping with no noise, and the run's canaries.

    No privacy at all (``epsilon`` is infinite); it exists to show that the audit finds a
    large lower bound when the mechanism has no noise. Nothing is charged to a ledger.
    """
    if not _is_number(dp_clip) or dp_clip <= 0:
        raise ConfigError(f"privacy max_grad_norm must be a positive number, got {dp_clip!r}")
    audit_path = Path(audit_path)
    with ledger_lock(audit_path):
        state = load_canaries(audit_path, run_id=run_id, canaries=audit_canaries)
        dp = DPParams(noise_multiplier=0.0, max_grad_norm=float(dp_clip), delta=delta, audit_control=True)
        result = train(
            head=head, data=data, settings=settings, dp=dp, global_arrays=global_arrays, canaries=state.members
        )
        _score_call(state, result)
        save_canaries(audit_path, run_id=run_id, state=state)
    logger.warning("audit control: %d DP-SGD steps without noise (no privacy)", result.steps)
    return replace(result, canaries=state)
