"""Argument checks shared by :mod:`pdes` and :mod:`transfer_tune` (one home for each rule).

Each check returns the value in its canonical Python type or raises
:class:`~pdes.TransferTuneError` with the argument's name, the rule and what was given.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from pdes.errors import TransferTuneError


def as_int(value: Any, name: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``, or a clear error.

    Accepts Python and NumPy integers and integral floats (``4.0``, as TOML and JSON give);
    rejects ``bool``, strings, non-integral numbers and values out of range.

    Parameters
    ----------
    value : Any
        What the user gave.
    name : str
        The argument's name, for the message.
    minimum, maximum : int or None
        Inclusive bounds; ``None`` for no bound. The default asks for a positive integer.
    """
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        if float(value).is_integer():
            value = int(value)
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and minimum is not None and value < minimum:
        ok = False
    if ok and maximum is not None and value > maximum:
        ok = False
    if not ok:
        if minimum is not None and maximum is not None:
            rule = f"an integer in {minimum}..{maximum}"
        elif minimum == 1:
            rule = "a positive integer"
        elif minimum is not None:
            rule = f"an integer >= {minimum}"
        elif maximum is not None:
            rule = f"an integer <= {maximum}"
        else:
            rule = "an integer"
        raise TransferTuneError(f"{name} must be {rule}, got {value!r}")
    return value


def as_float(
    value: Any,
    name: str,
    *,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """``value`` as a finite ``float`` (optionally > 0, or within inclusive bounds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TransferTuneError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise TransferTuneError(f"{name} must be finite, got {value!r}")
    if positive and out <= 0:
        raise TransferTuneError(f"{name} must be > 0, got {value!r}")
    if minimum is not None and out < minimum:
        raise TransferTuneError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and out > maximum:
        raise TransferTuneError(f"{name} must be <= {maximum}, got {value!r}")
    return out


def as_stored(value: Any) -> Any:
    """``value`` as JSON storage gives it back (tuples become lists, keys strings).

    Compare configs through it: what a study's user attributes or a result file hold has
    made this round trip.
    """
    return json.loads(json.dumps(value))
