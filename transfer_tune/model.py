"""The FNO: ``from transfer_tune.model import FNO`` is its documented (public) import path.

The code lives in :mod:`transfer_tune.core.model` (the roles vocabulary ``ROLES`` in
:mod:`transfer_tune.core.adapters`); this module is the home users import from, and the one
README, examples and docstrings name. ``import transfer_tune; transfer_tune.FNO`` is the same class.
"""

from transfer_tune.core.adapters import ROLES
from transfer_tune.core.model import FNO, SpectralConv, check_modes, mode_shape

__all__ = ["FNO", "ROLES", "SpectralConv", "check_modes", "mode_shape"]
