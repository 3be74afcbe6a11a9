"""Head weights as plain arrays (for Flower messages) and as safetensors files (for bundles).

Names and order come from the head's ``state_dict``, with the ``_module.`` prefix Opacus
adds when it wraps a module stripped, so a wrapped and an unwrapped head exchange weights.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from federation.errors import ModelBundleError
from federation.io import atomic_write_bytes

logger = logging.getLogger(__name__)

_WRAPPER_PREFIX = "_module."


def _strip(name: str) -> str:
    while name.startswith(_WRAPPER_PREFIX):
        name = name[len(_WRAPPER_PREFIX) :]
    return name


def _named_state(head: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """State entries (parameters and buffers, live tensors) with wrapper prefixes stripped."""
    return [(_strip(name), tensor) for name, tensor in head.state_dict(keep_vars=True).items()]


def head_arrays(head: nn.Module) -> list[np.ndarray]:
    """The head's weights as float32 arrays, in ``state_dict`` order.

    Notes
    -----
    These are what a node sends back after local training. With DP-SGD they are
    already privatised by the optimizer; this function adds no protection of its own.
    """
    return [
        tensor.detach().to("cpu", torch.float32).numpy().copy() for _, tensor in _named_state(head)
    ]


def load_head_arrays(head: nn.Module, arrays: Sequence[np.ndarray]) -> None:
    """Copy arrays into the head's weights in place, checking count, shape and values.

    The head's parameter objects are kept (only their values change), so an optimizer
    or Opacus wrapper built on the head stays valid.

    Raises
    ------
    ModelBundleError
        When the number of arrays or a shape differs from the head's, or a value is not
        finite: the weights were made for another model spec, or are damaged.
    """
    state = _named_state(head)
    if len(arrays) != len(state):
        raise ModelBundleError(
            f"got {len(arrays)} weight arrays for a head with {len(state)} tensors; "
            "the weights were made for another model spec (check model.name and model.hidden)"
        )
    checked: list[tuple[torch.Tensor, np.ndarray]] = []
    for (name, tensor), array in zip(state, arrays, strict=True):
        array = np.asarray(array)
        if tuple(array.shape) != tuple(tensor.shape):
            raise ModelBundleError(
                f"weight {name!r} has shape {tuple(array.shape)}, the head expects "
                f"{tuple(tensor.shape)}; the weights were made for another model spec "
                "(check model.hidden, model.window and the encoder)"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ModelBundleError(
                f"weight {name!r} holds NaN or infinite values; refusing to load it"
            )
        checked.append((tensor, array))
    with torch.no_grad():
        for tensor, array in checked:
            tensor.copy_(torch.as_tensor(array, dtype=tensor.dtype, device=tensor.device))


def save_weights(path: Path, head: nn.Module) -> None:
    """Write the head's weights to a safetensors file, atomically.

    Tensor names are the ``state_dict`` keys without Opacus's ``_module.`` prefix.
    """
    from safetensors.torch import save

    tensors = {
        name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in _named_state(head)
    }
    atomic_write_bytes(Path(path), save(tensors))
    logger.debug("saved %d weight tensors to %s", len(tensors), path)


def load_weights(path: Path, head: nn.Module) -> None:
    """Load a safetensors file written by :func:`save_weights` into the head.

    Raises
    ------
    ModelBundleError
        When the file is missing or unreadable, or its tensor names or shapes differ
        from the head's.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelBundleError(f"weights file {path} not found; export the model bundle again")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelBundleError(
            f"weights file {path} is not a readable safetensors file ({exc}); "
            "export the model bundle again"
        ) from exc
    names = [name for name, _ in _named_state(head)]
    missing = sorted(set(names) - set(tensors))
    unexpected = sorted(set(tensors) - set(names))
    if missing or unexpected:
        raise ModelBundleError(
            f"weights file {path} does not fit this head (missing: {', '.join(missing) or 'none'}; "
            f"unexpected: {', '.join(unexpected) or 'none'}); it was made for another model spec"
        )
    try:
        load_head_arrays(head, [tensors[name].numpy() for name in names])
    except ModelBundleError as exc:
        raise ModelBundleError(f"weights file {path}: {exc}") from exc
