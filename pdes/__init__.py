"""PDE problems and data for transfer-tune.

``get_problem(name, **overrides)`` returns a :class:`Problem` whose ``dataset(split)`` gives
normalised ``(x, y)`` tensors shaped ``(N, C, *grid)``. Generated problems ("burgers",
"darcy", "navier_stokes") are solved once per split and cached on disk by config hash
(:mod:`pdes.cache`); ``get_problem("file", path=...)`` reads a file the user already has
(:func:`load_pairs`: FNO ``.mat``, PDEBench HDF5, neuraloperator ``.pt``, ``.npz``), and
``from_arrays(x_train, y_train, ...)`` makes one of arrays in memory (stored once in the cache
by content hash, so its config rebuilds it in any process).

The lowest layer of transfer-tune: it imports nothing from :mod:`transfer_tune`.

Modules: ``registry`` (register/list/get_problem, load_problem), ``spec`` (ProblemSpec), ``problem``
(the Problem: splits, cache, normalisers, config), ``file_problem`` (the "file" problem:
split defaults, super-resolution test files), ``arrays`` (``from_arrays``),
``burgers``, ``darcy``, ``navier_stokes`` (solvers), ``generation`` (what every solver's
``generate`` shares), ``grf`` (Gaussian random fields), ``cache`` (checked disk cache),
``loaders`` (input/output pairs from files) over ``formats`` (file readers), ``normalize``,
``checks`` (argument checks), ``errors`` (TransferTuneError).
"""

from pdes.arrays import from_arrays
from pdes.errors import TransferTuneError
from pdes.loaders import inspect_pairs, load_pairs
from pdes.normalize import GaussianNormalizer
from pdes.problem import Problem
from pdes.registry import get_problem, list_problems, load_problem, register_problem

__all__ = [
    "GaussianNormalizer",
    "Problem",
    "from_arrays",
    "get_problem",
    "inspect_pairs",
    "list_problems",
    "load_pairs",
    "load_problem",
    "register_problem",
    "TransferTuneError",
]
