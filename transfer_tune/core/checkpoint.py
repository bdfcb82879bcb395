"""Checkpoint files: written atomically, read without unpickling (``weights_only=True``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def save(path: str | Path, payload: dict) -> Path:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``.

    A crash at any point leaves either the previous file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(path: str | Path) -> dict:
    """Read a checkpoint onto the CPU; only tensors and plain data (never arbitrary pickles)."""
    return torch.load(path, map_location="cpu", weights_only=True)
