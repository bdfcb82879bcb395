"""Checkpoint files: atomic, checked by SHA-256, read without unpickling (``weights_only``).

A checkpoint is an ordinary ``torch.save`` file of a dict, so ``torch.load(path,
weights_only=True)`` still reads it. Next to the payload it carries ``"integrity"``:
``{"format": FORMAT, "sha256": ...}``, a digest of every tensor's dtype, shape and bytes and of
every plain value, in key order. :func:`load` recomputes it and refuses a file whose digest
or format differs (a flipped bit in a weight, a truncated or foreign file) instead of loading
damaged weights silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from transfer_tune.errors import TransferTuneError

#: Version of the checkpoint layout; bumped when the payload's meaning changes.
FORMAT = 1
INTEGRITY_KEY = "integrity"


def _feed(h: Any, value: Any) -> None:
    """Feed ``value`` into the hash ``h`` in a canonical, type-tagged order."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.is_complex():
            t = torch.view_as_real(t)
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            h.update(f"K{type(key).__name__}:{key}".encode())
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{type(value).__name__}{len(value)}".encode())
        for item in value:
            _feed(h, item)
    else:
        h.update(f"V{type(value).__name__}:".encode())
        h.update(json.dumps(value, default=repr).encode())


def digest(payload: dict) -> str:
    """SHA-256 of ``payload`` without its ``"integrity"`` entry (see the module docstring)."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != INTEGRITY_KEY})
    return h.hexdigest()


def save(path: str | Path, payload: dict) -> Path:
    """``torch.save`` (with the integrity entry) to a temporary file, fsync, rename over ``path``.

    A crash at any point leaves either the previous file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {k: v for k, v in payload.items() if k != INTEGRITY_KEY}
    body[INTEGRITY_KEY] = {"format": FORMAT, "sha256": digest(body)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc  # the message names the file
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(path: str | Path) -> dict:
    """Read and check a checkpoint onto the CPU; only tensors and plain data (never pickles).

    Raises
    ------
    TransferTuneError
        When the file is missing, unreadable, of another format, or fails its SHA-256 check;
        the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise TransferTuneError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torn zip, foreign file, pickled objects refused by weights_only
        raise TransferTuneError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}; the file is damaged or not a "
            "transfer-tune checkpoint"
        ) from exc
    info = payload.get(INTEGRITY_KEY) if isinstance(payload, dict) else None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        found = info.get("format") if isinstance(info, dict) else None
        raise TransferTuneError(
            f"checkpoint {path} has format {found!r}, this version reads format {FORMAT}; "
            "it was written by another transfer-tune version or by something else"
        )
    if info.get("sha256") != digest(payload):
        raise TransferTuneError(
            f"checkpoint {path} fails its SHA-256 check: it was damaged after it was written "
            "(disk error, partial copy, edited by hand); it is not loaded"
        )
    return payload
