"""A synthetic operator-learning task shared by the tests (and tests/scripts)."""

import math

import torch


def operator_task(n: int, res: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A smoothed derivative: a linear Fourier multiplier on band-limited random inputs.

    Inputs keep their first 8 Fourier modes, so an FNO with K >= 8 can represent the map
    exactly and training must lower the error a lot.
    """
    g = torch.Generator().manual_seed(seed)
    k = torch.arange(res // 2 + 1)
    coef = torch.randn(n, 1, res // 2 + 1, generator=g, dtype=torch.cfloat) / (1 + k) ** 1.5
    coef[..., 8:] = 0
    x = torch.fft.irfft(coef, n=res) * res
    y = torch.fft.irfft(coef * (2j * math.pi * k / (1 + (k / 4.0) ** 2)), n=res) * res / 10
    return x.float(), y.float()
