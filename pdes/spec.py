"""What a solver module provides: :class:`ProblemSpec`, how to generate one PDE problem.

Registered by name with :func:`pdes.registry.register_problem`; a :class:`~pdes.problem.Problem`
of a generated problem keeps its spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from pdes.errors import TransferTuneError

__all__ = ["ProblemSpec"]


@dataclass(frozen=True)
class ProblemSpec:
    """How to generate one PDE problem (what a solver module provides).

    Parameters
    ----------
    name : str
        Canonical problem name.
    dim : int
        Spatial dimension.
    defaults : mapping
        JSON-able solver parameters and their defaults; every one may be overridden.
    generate : callable
        ``generate(n_samples, resolution, seed, *, progress, n_jobs, **params) -> (x, y)``,
        float32 arrays shaped ``(n, C, *grid)`` with ``resolution`` points per axis;
        deterministic in ``seed``.
    check_resolution : callable
        ``check_resolution(resolution, **params)``; raises ``TransferTuneError`` if the
        solver cannot produce that grid.
    default_resolution : int
        Preferred resolution; the nearest one ``check_resolution`` accepts is used.
    in_channels, out_channels : int, optional
        Channel counts if known in advance (otherwise read from the train split).
    version : str
        Part of every cache key: bump it when the solver's output changes.
    """

    name: str
    dim: int
    defaults: Mapping[str, Any]
    generate: Callable[..., tuple[np.ndarray, np.ndarray]]
    check_resolution: Callable[..., None]
    default_resolution: int
    in_channels: int | None = None
    out_channels: int | None = None
    version: str = "1"
    #: ``fine_grid_for(resolution, params) -> dict``: solver parameters (e.g. ``n_fine``) that
    #: make ``resolution`` possible, used when the user did not set them; ``None``: none.
    fine_grid_for: Callable[..., dict[str, Any]] | None = None
    #: ``physics_loss(x, y, **params) -> (N,)``: the equation's residual loss in physical
    #: units (:mod:`pdes.physics`); ``None``: the problem defines none (no PINO training).
    physics_loss: Callable[..., Any] | None = None

    @classmethod
    def from_module(
        cls, name: str, module: ModuleType, default_resolution: int | None = None
    ) -> ProblemSpec:
        """Build a spec from a solver module (``DEFAULTS``, ``DIM``, ``generate``,
        ``check_resolution``; optional ``DEFAULT_RESOLUTION``, ``IN_CHANNELS``,
        ``OUT_CHANNELS``, ``VERSION``, ``fine_grid_for``, ``physics_loss``)."""
        missing = [
            a for a in ("DEFAULTS", "DIM", "generate", "check_resolution") if not hasattr(module, a)
        ]
        if missing:
            raise TransferTuneError(
                f"solver module {module.__name__} for problem {name!r} lacks {missing}; a "
                "solver module must define DEFAULTS, DIM, generate and check_resolution."
            )
        res = default_resolution or getattr(module, "DEFAULT_RESOLUTION", None)
        if res is None:
            raise TransferTuneError(
                f"problem {name!r}: pass default_resolution= to register_problem or define "
                f"DEFAULT_RESOLUTION in {module.__name__}."
            )
        return cls(
            name=name,
            dim=int(module.DIM),
            defaults=dict(module.DEFAULTS),
            generate=module.generate,
            check_resolution=module.check_resolution,
            default_resolution=int(res),
            in_channels=getattr(module, "IN_CHANNELS", None),
            out_channels=getattr(module, "OUT_CHANNELS", None),
            version=str(getattr(module, "VERSION", "1")),
            fine_grid_for=getattr(module, "fine_grid_for", None),
            physics_loss=getattr(module, "physics_loss", None),
        )
