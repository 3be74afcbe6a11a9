"""The white-box audit's canaries inside one training call: their coordinates and scores.

The run's canaries themselves (secret membership, scores so far) live in
:mod:`federation.privacy.audit`; this is their short-lived part that rides along the DP
optimizer for one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from federation.privacy.audit import CANARY_NORM

__all__ = ["CanaryCoordinates"]


@dataclass
class CanaryCoordinates:
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
