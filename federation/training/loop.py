"""The one local training loop, DP-SGD or not: :func:`train`.

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
import time
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from federation.errors import ConfigError
from federation.models.features import FeatureSet
from federation.models.weights import head_arrays, load_head_arrays
from federation.privacy.accounting import epsilon_of
from federation.training import sampling
from federation.training.canaries import CanaryCoordinates
from federation.training.settings import DPParams, TrainResult, TrainSettings, effective_batch, steps_per_call
from federation.training.steps import build_optimizer, device_of, dp_step, plain_step, unwrapped

if TYPE_CHECKING:  # Opacus is imported where DP-SGD runs: an evaluating ClientApp process never pays for it
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

__all__ = ["train"]

logger = logging.getLogger(__name__)

_HOOK_WARNING = "Full backward hook is firing when gradients are computed with respect to module outputs"


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
    batch_size = effective_batch(settings, n)
    started = time.perf_counter()

    head = unwrapped(head)  # never wrap a wrapped module (hooks would be added twice)
    model = copy.deepcopy(head)
    if global_arrays is not None:
        load_head_arrays(model, global_arrays)
    model.train()
    device = device_of(model)
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = [p.detach().clone() for p in params] if settings.proximal_mu > 0 else []
    optimizer = build_optimizer(params, settings)
    window_rng = np.random.default_rng(settings.seed)
    lengths = data.lengths

    sample_rate: float | None = None
    wrapped: GradSampleModule | None = None
    dp_optimizer: DPOptimizer | None = None
    audit: CanaryCoordinates | None = None
    if canaries is not None and dp is None:
        raise ConfigError("a white-box audit needs DP-SGD's mechanism (dp); without DP use the audit control")
    if dp is None:
        batches = sampling.shuffled_batches(n, batch_size, np.random.default_rng([settings.seed, 1]))
    else:
        sample_rate = batch_size / n
        secret = secrets.randbits(63) if dp.noise_seed is None else int(dp.noise_seed)
        if dp.noise_seed is not None:
            logger.warning("DP noise and sampling are seeded (noise_seed): no privacy guarantee, tests only")
        if canaries is not None:
            members = np.asarray(canaries, dtype=bool)
            coordinates = nn.Parameter(torch.zeros(members.size, device=device))
            optimizer.add_param_group({"params": [coordinates], "lr": 0.0, "weight_decay": 0.0})
            audit = CanaryCoordinates(
                members=np.flatnonzero(members),
                coordinates=coordinates,
                scores=torch.zeros(members.size, dtype=torch.float64, device=device),
            )
        # The "in" canaries are items n, n+1, ... of the same Poisson draw as the conversations.
        extra = 0 if audit is None else int(audit.members.size)
        batches = sampling.poisson_batches(n + extra, sample_rate, np.random.default_rng([secret, 0]))
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
            earliest = None if data.evidence_from is None else data.evidence_from[indices]
            ends = sampling.window_ends(lengths[indices], window_rng, earliest)
            batch = data.batch(indices, window=settings.train_window, ends=ends).to(device)
            proximal = {"params": params, "anchor": anchor, "mu": settings.proximal_mu}
            if dp_optimizer is None:
                loss = plain_step(model, optimizer, batch, **proximal)
            else:
                loss = dp_step(wrapped, dp_optimizer, batch, **proximal, canaries=audit, sampled=sampled)
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
