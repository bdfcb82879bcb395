"""GaussianNormalizer: per-channel statistics, exact inverse, JSON-able state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pdes import GaussianNormalizer
from transfer_tune.errors import TransferTuneError


def test_fit_matches_hand_computed_per_channel_statistics() -> None:
    # 2 samples, 2 channels, 3 grid points.
    x = torch.tensor(
        [
            [[1.0, 2.0, 3.0], [10.0, 10.0, 10.0]],
            [[4.0, 5.0, 6.0], [10.0, 10.0, 10.0]],
        ]
    )
    norm = GaussianNormalizer.fit(x)
    # channel 0 holds 1..6: mean 3.5, population variance 35/12.
    assert norm.mean == pytest.approx((3.5, 10.0), abs=1e-12)
    assert norm.std[0] == pytest.approx(np.sqrt(35.0 / 12.0), abs=1e-12)
    # A constant channel is only centred (std 1), never divided by zero.
    assert norm.std[1] == 1.0
    enc = norm.encode(x)
    assert torch.allclose(enc[:, 1], torch.zeros(2, 3))
    assert float(enc[0, 0, 0]) == pytest.approx((1.0 - 3.5) / np.sqrt(35.0 / 12.0), rel=1e-6)


def test_statistics_are_scalar_per_channel_not_pointwise() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 16, 16, generator=gen) * torch.tensor([1.0, 5.0, 0.1])[:, None, None]
    norm = GaussianNormalizer.fit(x)
    assert norm.n_channels == 3
    ref = x.double().transpose(0, 1).reshape(3, -1)
    assert np.allclose(norm.mean, ref.mean(dim=1).numpy(), atol=1e-12)
    assert np.allclose(norm.std, ref.std(dim=1, unbiased=False).numpy(), atol=1e-12)
    # Resolution independence: the same normaliser applies to a finer grid.
    fine = torch.randn(2, 3, 64, 64, generator=gen)
    assert norm.encode(fine).shape == fine.shape


def test_decode_inverts_encode_to_float32_roundoff() -> None:
    gen = torch.Generator().manual_seed(1)
    x = 3.0 + 7.0 * torch.randn(5, 2, 32, generator=gen)
    norm = GaussianNormalizer.fit(x)
    back = norm.decode(norm.encode(x))
    assert back.dtype == torch.float32
    assert torch.allclose(back, x, rtol=1e-6, atol=1e-5)
    enc = norm.encode(x)
    per_channel = enc.transpose(0, 1).reshape(2, -1)
    assert torch.allclose(per_channel.mean(dim=1), torch.zeros(2), atol=1e-5)
    assert torch.allclose(per_channel.std(dim=1, unbiased=False), torch.ones(2), atol=1e-5)


def test_numpy_and_float64_inputs_keep_their_kind() -> None:
    x = np.arange(24, dtype=np.float64).reshape(2, 2, 6)
    norm = GaussianNormalizer.fit(x)
    enc = norm.encode(x)
    assert isinstance(enc, np.ndarray) and enc.dtype == np.float64
    np.testing.assert_allclose(norm.decode(enc), x, atol=1e-12)
    t = torch.from_numpy(x)
    assert norm.encode(t).dtype == torch.float64


def test_state_dict_is_json_and_round_trips() -> None:
    norm = GaussianNormalizer.fit(torch.randn(4, 2, 8, generator=torch.Generator().manual_seed(2)))
    state = json.loads(json.dumps(norm.state_dict()))
    assert set(state) == {"mean", "std"}
    assert all(isinstance(v, float) for v in state["mean"] + state["std"])
    again = GaussianNormalizer.from_state_dict(state)
    assert again == norm
    x = torch.randn(3, 2, 8)
    assert torch.equal(again.encode(x), norm.encode(x))


def test_errors_name_the_problem() -> None:
    norm = GaussianNormalizer((0.0,), (1.0,))
    with pytest.raises(TransferTuneError, match="channel"):
        norm.encode(torch.zeros(2, 3, 4))
    with pytest.raises(TransferTuneError, match=r"\(N, C, \*grid\)"):
        GaussianNormalizer.fit(torch.zeros(4, 5))
    with pytest.raises(TransferTuneError, match="NaN"):
        GaussianNormalizer.fit(torch.tensor([[[1.0, float("nan")]]]))
    with pytest.raises(TransferTuneError, match="empty"):
        GaussianNormalizer.fit(torch.zeros(0, 1, 4))
    with pytest.raises(TransferTuneError, match="positive"):
        GaussianNormalizer((0.0,), (0.0,))
    with pytest.raises(TransferTuneError, match="from_state_dict"):
        GaussianNormalizer.from_state_dict({"mean": [0.0]})


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(2, 9)),
        elements=st.floats(-1e3, 1e3, width=32),
    )
)
def test_round_trip_property(a: np.ndarray) -> None:
    x = torch.from_numpy(a)
    norm = GaussianNormalizer.fit(x)
    back = norm.decode(norm.encode(x))
    scale = max(float(np.abs(a).max()), 1.0)
    assert torch.allclose(back, x, rtol=0, atol=1e-5 * scale)
