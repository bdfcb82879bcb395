"""The SP/µP table: ``from transfer_tune.parametrization import get_parametrization`` is its
documented (public) import path.

The code, and the only copy of the µP formula, lives in
:mod:`transfer_tune.core.parametrization`; this module is the home users import from, and the
one README, examples and docstrings name. ``transfer_tune.get_parametrization`` is the same
function.
"""

from transfer_tune.core.parametrization import KINDS, Parametrization, get_parametrization

__all__ = ["KINDS", "Parametrization", "get_parametrization"]
