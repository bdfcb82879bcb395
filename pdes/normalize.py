"""Per-channel Gaussian normalisation of PDE fields.

The statistics are one scalar mean and one scalar standard deviation per channel, taken over
all samples and all grid points. Unlike a pointwise normaliser (one mean per grid point, as in
the original FNO code), they do not depend on the grid, so a model trained at one resolution can
be evaluated on a finer grid with the same encoding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from pdes.errors import TransferTuneError

__all__ = ["GaussianNormalizer"]

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def _check_rank(x: torch.Tensor | np.ndarray, n_channels: int | None, what: str) -> None:
    if x.ndim < 3:
        raise TransferTuneError(
            f"{what} expects an array shaped (N, C, *grid) with at least one grid axis; "
            f"got shape {tuple(x.shape)}. Add the channel axis, e.g. x[:, None]."
        )
    if n_channels is not None and x.shape[1] != n_channels:
        raise TransferTuneError(
            f"{what}: the normaliser has {n_channels} channel(s) but the array shaped "
            f"{tuple(x.shape)} has {x.shape[1]} on axis 1; use the normaliser fitted on "
            "data with the same channels."
        )


@dataclass(frozen=True)
class GaussianNormalizer:
    """Per-channel affine map ``(x - mean) / std`` for arrays shaped ``(N, C, *grid)``.

    Parameters
    ----------
    mean, std : sequence of float
        One value per channel. ``std`` must be positive.

    Notes
    -----
    Fit it on the training split only (:meth:`fit`), then apply it to every split. A channel
    that is constant in the training data gets ``std = 1`` (it is only centred).
    :meth:`encode` and :meth:`decode` accept torch tensors (any device and floating dtype) or
    numpy arrays and return the same kind; :meth:`decode` inverts :meth:`encode` to floating
    point round-off of the input's dtype.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        mean = tuple(float(m) for m in self.mean)
        std = tuple(float(s) for s in self.std)
        if len(mean) != len(std) or not mean:
            raise TransferTuneError(
                f"GaussianNormalizer needs one mean and one std per channel; got "
                f"{len(mean)} mean(s) and {len(std)} std(s)."
            )
        if not all(math.isfinite(m) for m in mean) or not all(
            math.isfinite(s) and s > 0 for s in std
        ):
            raise TransferTuneError(
                f"GaussianNormalizer needs finite means and positive finite stds; got "
                f"mean={list(mean)}, std={list(std)}."
            )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def n_channels(self) -> int:
        """Number of channels the normaliser applies to."""
        return len(self.mean)

    @classmethod
    def fit(cls, x: torch.Tensor | np.ndarray) -> GaussianNormalizer:
        """Fit per-channel mean and (population) standard deviation.

        Parameters
        ----------
        x : torch.Tensor or numpy.ndarray
            Training data shaped ``(N, C, *grid)``. Statistics are accumulated in float64
            over the sample axis and every grid axis.

        Returns
        -------
        GaussianNormalizer

        Raises
        ------
        TransferTuneError
            If the array has the wrong rank, no samples, or non-finite values.
        """
        _check_rank(x, None, "GaussianNormalizer.fit")
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if a.shape[0] == 0:
            raise TransferTuneError(
                "GaussianNormalizer.fit got an empty array (0 samples); fit it on a "
                "training split with n_train >= 1."
            )
        a = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1).astype(np.float64)
        if not np.isfinite(a).all():
            raise TransferTuneError(
                "GaussianNormalizer.fit: the data contains NaN or inf values; check the "
                "dataset (a diverged solve or a corrupted file)."
            )
        mean = a.mean(axis=1)
        std = np.sqrt(((a - mean[:, None]) ** 2).mean(axis=1))
        std = np.where(std > 0, std, 1.0)
        return cls(tuple(mean.tolist()), tuple(std.tolist()))

    def _stats(self, x: ArrayT) -> tuple[ArrayT, ArrayT]:
        shape = (1, self.n_channels) + (1,) * (x.ndim - 2)
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.float32
            mean = torch.tensor(self.mean, dtype=dtype, device=x.device).reshape(shape)
            std = torch.tensor(self.std, dtype=dtype, device=x.device).reshape(shape)
            return mean, std
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return (
            np.asarray(self.mean, dtype=dtype).reshape(shape),
            np.asarray(self.std, dtype=dtype).reshape(shape),
        )

    def encode(self, x: ArrayT) -> ArrayT:
        """Return ``(x - mean) / std`` per channel.

        Parameters
        ----------
        x : torch.Tensor or numpy.ndarray
            Shaped ``(N, C, *grid)`` with ``C == n_channels``.

        Returns
        -------
        torch.Tensor or numpy.ndarray
            Same kind, shape, device and (floating) dtype as ``x``.
        """
        _check_rank(x, self.n_channels, "GaussianNormalizer.encode")
        mean, std = self._stats(x)
        return (x - mean) / std

    def decode(self, x: ArrayT) -> ArrayT:
        """Invert :meth:`encode`: return ``x * std + mean`` per channel.

        Parameters
        ----------
        x : torch.Tensor or numpy.ndarray
            Normalised data shaped ``(N, C, *grid)``.

        Returns
        -------
        torch.Tensor or numpy.ndarray
            Data in physical units, same kind, shape, device and dtype as ``x``.
        """
        _check_rank(x, self.n_channels, "GaussianNormalizer.decode")
        mean, std = self._stats(x)
        return x * std + mean

    def state_dict(self) -> dict[str, list[float]]:
        """Return the statistics as plain, JSON-able lists of floats."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Sequence[float]]) -> GaussianNormalizer:
        """Rebuild a normaliser from :meth:`state_dict` output.

        Parameters
        ----------
        state : mapping
            With keys ``"mean"`` and ``"std"``, each a list of floats (one per channel).
        """
        try:
            return cls(tuple(state["mean"]), tuple(state["std"]))
        except (KeyError, TypeError) as err:
            raise TransferTuneError(
                f"GaussianNormalizer.from_state_dict expects {{'mean': [...], 'std': [...]}}; "
                f"got {state!r}."
            ) from err

    def __repr__(self) -> str:
        def fmt(v: tuple[float, ...]) -> str:
            return "[" + ", ".join(f"{e:.6g}" for e in v) + "]"

        return f"GaussianNormalizer(mean={fmt(self.mean)}, std={fmt(self.std)})"
