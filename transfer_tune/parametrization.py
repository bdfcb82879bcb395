"""Public home of the SP/µP table (``from transfer_tune.parametrization import ...``).

The code (and the only copy of the µP formula) lives in :mod:`transfer_tune.core.parametrization`;
this module keeps the documented import path.
"""

from transfer_tune.core.parametrization import KINDS, Parametrization, get_parametrization

__all__ = ["KINDS", "Parametrization", "get_parametrization"]
