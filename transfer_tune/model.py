"""Public home of the FNO building blocks: ``from transfer_tune.model import FNO``.

The code lives in :mod:`transfer_tune.core.model`; this module keeps the documented import path.
"""

from transfer_tune.core.model import FNO, ROLES, SpectralConv, check_modes, mode_shape

__all__ = ["FNO", "ROLES", "SpectralConv", "check_modes", "mode_shape"]
