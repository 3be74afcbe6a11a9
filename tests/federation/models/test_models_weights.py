"""Head weights as arrays and safetensors files, with and without Opacus's wrapper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from opacus import GradSampleModule
from safetensors.torch import load_file

from federation.errors import ModelBundleError
from federation.models.heads import AttentionWindowHead, NgramHead
from federation.models.weights import head_arrays, load_head_arrays, load_weights, save_weights

DIM = 6


def _head(seed: int, hidden: int = 8) -> AttentionWindowHead:
    torch.manual_seed(seed)
    return AttentionWindowHead(dim_in=DIM, hidden=hidden, window=2, dropout=0.0).eval()


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(99)
    return torch.randn(3, 4, DIM), torch.ones(3, 4, dtype=torch.bool), torch.randint(0, 3, (3, 4))


def test_arrays_follow_state_dict_order_as_float32() -> None:
    head = _head(0)
    arrays = head_arrays(head)
    state = head.state_dict()
    assert len(arrays) == len(state)
    for array, (name, tensor) in zip(arrays, state.items(), strict=True):
        assert array.dtype == np.float32, name
        np.testing.assert_array_equal(array, tensor.numpy())
    arrays[0][...] = 0.0  # copies, not views of the live weights
    assert head.state_dict()[next(iter(state))].abs().sum() > 0


def test_arrays_round_trip_keeps_parameter_objects() -> None:
    source, target = _head(0), _head(1)
    x, mask, speaker = _inputs()
    before = [id(p) for p in target.parameters()]
    assert not torch.allclose(source(x, mask, speaker), target(x, mask, speaker))
    load_head_arrays(target, head_arrays(source))
    torch.testing.assert_close(target(x, mask, speaker), source(x, mask, speaker))
    assert [id(p) for p in target.parameters()] == before


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_opacus_prefix_is_stripped_both_ways(tmp_path: Path) -> None:
    head = _head(0)
    wrapped = GradSampleModule(head)
    assert any(k.startswith("_module.") for k in wrapped.state_dict())
    for a, b in zip(head_arrays(wrapped), head_arrays(head), strict=True):
        np.testing.assert_array_equal(a, b)
    save_weights(tmp_path / "w.safetensors", wrapped)
    names = set(load_file(str(tmp_path / "w.safetensors")))
    assert names == set(head.state_dict()) and not any(n.startswith("_module.") for n in names)
    other = GradSampleModule(_head(5))
    load_weights(tmp_path / "w.safetensors", other)
    load_head_arrays(other, head_arrays(head))
    x, mask, speaker = _inputs()
    torch.testing.assert_close(other(x, mask, speaker), head(x, mask, speaker))


def test_safetensors_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = NgramHead(dim_in=DIM, hidden=3)
    target = NgramHead(dim_in=DIM, hidden=3)
    path = tmp_path / "bundle" / "weights.safetensors"
    save_weights(path, source)
    load_weights(path, target)
    for a, b in zip(head_arrays(source), head_arrays(target), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mismatches_are_clear_errors(tmp_path: Path) -> None:
    head = _head(0)
    arrays = head_arrays(head)
    with pytest.raises(ModelBundleError, match="weight arrays"):
        load_head_arrays(head, arrays[:-1])
    with pytest.raises(ModelBundleError, match=r"project\.weight.*shape"):
        load_head_arrays(head, head_arrays(_head(0, hidden=4)))
    broken = [a.copy() for a in arrays]
    broken[1][0] = np.nan
    with pytest.raises(ModelBundleError, match="NaN"):
        load_head_arrays(head, broken)
    np.testing.assert_array_equal(head_arrays(head)[0], arrays[0])  # nothing half-loaded

    save_weights(tmp_path / "small.safetensors", _head(0, hidden=4))
    with pytest.raises(ModelBundleError, match="small.safetensors"):
        load_weights(tmp_path / "small.safetensors", head)
    save_weights(tmp_path / "ngram.safetensors", NgramHead(dim_in=DIM))
    with pytest.raises(ModelBundleError, match="missing: "):
        load_weights(tmp_path / "ngram.safetensors", head)
    with pytest.raises(ModelBundleError, match="not found"):
        load_weights(tmp_path / "absent.safetensors", head)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00\x01 not a tensor file")
    with pytest.raises(ModelBundleError, match="not a readable safetensors"):
        load_weights(tmp_path / "junk.safetensors", head)
