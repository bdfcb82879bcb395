"""The FNO: ``from transfer_tune.model import FNO`` is its documented (public) import path.

The code lives in :mod:`transfer_tune.core.model` (the roles vocabulary ``ROLES`` and
``modes_of`` in :mod:`transfer_tune.core.adapters`, ``build_model`` and ``allow_models`` in
:mod:`transfer_tune.core.factory`); this module is the home users import from, and the one
README, examples and docstrings name. ``import transfer_tune; transfer_tune.FNO`` is the same class.

``modes_of(model)`` reads a model's K (transfer-tune's or neuraloperator's FNO);
``build_model(config)`` rebuilds a checkpoint's model from its ``model_config``;
``allow_models([...])`` lets this process import the named model factories.
"""

from transfer_tune.core.adapters import ROLES, modes_of
from transfer_tune.core.factory import allow_models, build_model
from transfer_tune.core.model import FNO, SpectralConv, check_modes, mode_shape

__all__ = [
    "FNO",
    "ROLES",
    "SpectralConv",
    "allow_models",
    "build_model",
    "check_modes",
    "mode_shape",
    "modes_of",
]
