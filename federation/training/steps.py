"""One optimizer step, plain or DP-SGD, and the optimizer and Opacus wrapping they share.

FedProx's proximal gradient is data-independent: the plain step adds it before the
update, the DP step after clipping and noise, so it costs no privacy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from federation.models.features import Batch
from federation.training.canaries import CanaryCoordinates
from federation.training.settings import TrainSettings

if TYPE_CHECKING:  # Opacus is imported where DP-SGD runs: an evaluating ClientApp process never pays for it
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

__all__ = [
    "add_proximal_gradient",
    "batch_loss",
    "build_optimizer",
    "device_of",
    "dp_step",
    "plain_step",
    "unwrapped",
]


def build_optimizer(params: Sequence[nn.Parameter], settings: TrainSettings) -> torch.optim.Optimizer:
    """The settings' optimizer over ``params`` (under DP, the one Opacus's optimizer wraps)."""
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    return torch.optim.SGD(params, lr=settings.learning_rate, momentum=settings.momentum, weight_decay=settings.weight_decay)


def add_proximal_gradient(
    params: Sequence[nn.Parameter], anchor: Sequence[torch.Tensor], mu: float
) -> None:
    """Add FedProx's ``mu * (w - w_global)`` to each gradient (data-independent)."""
    with torch.no_grad():
        for param, reference in zip(params, anchor, strict=True):
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            param.grad.add_(param.detach() - reference, alpha=mu)


def batch_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean binary cross-entropy of the batch's window logits (the mean Opacus is told of)."""
    logits = model(batch.x, batch.mask, batch.speaker)
    return F.binary_cross_entropy_with_logits(logits, batch.labels)


def device_of(head: nn.Module) -> torch.device:
    """Where the head's weights are (CPU for a head without any)."""
    for param in head.parameters():
        return param.device
    return torch.device("cpu")


def plain_step(
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
    loss = batch_loss(model, batch)
    loss.backward()
    if anchor:
        add_proximal_gradient(params, anchor, mu)
    optimizer.step()
    return float(loss.detach())


def dp_step(
    wrapped: GradSampleModule,
    optimizer: DPOptimizer,
    batch: Batch,
    *,
    params: Sequence[nn.Parameter],
    anchor: Sequence[torch.Tensor],
    mu: float,
    canaries: CanaryCoordinates | None = None,
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
        value = batch_loss(wrapped, batch)
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
            add_proximal_gradient(params, anchor, mu)
        optimizer.original_optimizer.step()
    return loss


def unwrapped(head: nn.Module) -> nn.Module:
    """The module inside an Opacus ``GradSampleModule`` (none exists while Opacus is not imported)."""
    if "opacus" in sys.modules:
        from opacus import GradSampleModule

        if isinstance(head, GradSampleModule):
            return head._module
    return head

