"""PDE problems and data for transfer-tune.

``get_problem(name, **overrides)`` returns a :class:`Problem` whose ``dataset(split)`` gives
normalised ``(x, y)`` tensors shaped ``(N, C, *grid)``. Generated problems ("burgers",
"darcy", "navier_stokes") are solved once per split and cached on disk by config hash
(:mod:`pdes.cache`); ``get_problem("file", path=...)`` reads a file the user already has
(:func:`load_pairs`: FNO ``.mat``, PDEBench HDF5, neuraloperator ``.pt``, ``.npz``).
"""

from pdes.errors import TransferTuneError
from pdes.loaders import load_pairs
from pdes.normalize import GaussianNormalizer
from pdes.registry import Problem, get_problem, list_problems, load_problem, register_problem

__all__ = [
    "GaussianNormalizer",
    "Problem",
    "get_problem",
    "list_problems",
    "load_pairs",
    "load_problem",
    "register_problem",
    "TransferTuneError",
]
