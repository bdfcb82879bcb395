"""Storage URL -> Optuna storage: embedded SQLite (default), journal file, or PostgreSQL.

=====================================  ==========================================================
URL                                    storage
=====================================  ==========================================================
``None``                               ``$TRANSFER_TUNE_STORAGE``, else
                                       ``sqlite:///<cwd>/studies/transfer_tune.db``
``sqlite:///path.db`` or ``path.db``   Optuna's RDB storage on an SQLite file (one machine, few
                                       writers; heartbeats work)
``journal:PATH`` or ``PATH.journal``   Optuna's journal-file storage (several processes on one
                                       machine)
``postgresql://user@host/db``          Optuna's RDB storage on PostgreSQL (many machines); the
                                       driver is psycopg (3) or, if only it is installed,
                                       psycopg2 (``postgresql+psycopg2://``)
=====================================  ==========================================================

Artifacts (figures, checkpoints) live in a folder next to the storage file:
:func:`artifact_dir` and :func:`checkpoint_dir`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from pdes.checks import as_int
from transfer_tune.errors import TransferTuneError

ENV_VAR = "TRANSFER_TUNE_STORAGE"
DEFAULT_FILE = Path("studies") / "transfer_tune.db"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_JOURNAL_SUFFIXES = (".journal", ".log")


def default_storage_url() -> str:
    """``$TRANSFER_TUNE_STORAGE`` if set, else an SQLite file under ``studies/`` of the cwd."""
    env = os.environ.get(ENV_VAR)
    if env:
        return normalize_url(env)
    return f"sqlite:///{(Path.cwd() / DEFAULT_FILE).resolve()}"


def normalize_url(url: str | os.PathLike | None) -> str:
    """Canonical URL: bare file paths become ``sqlite:///ABS`` or ``journal:ABS``.

    Raises
    ------
    TransferTuneError
        When the URL is of no supported kind.
    """
    if url is None:
        return default_storage_url()
    if not isinstance(url, (str, os.PathLike)):  # its value is not echoed: it may hold a secret
        raise TransferTuneError(
            f"a storage URL must be a string such as sqlite:///PATH.db, got a {type(url).__name__}"
        )
    text = os.fspath(url)
    if not isinstance(text, str):  # a bytes path
        raise TransferTuneError(
            f"a storage URL must be a string, got {type(text).__name__}: decode it first"
        )
    text = text.strip()
    if not text:
        raise TransferTuneError("empty storage URL; omit it to use the default SQLite file")
    if text.startswith("journal:"):
        path = text[len("journal:") :]
        if not path:
            raise TransferTuneError("journal storage needs a file: journal:PATH")
        return f"journal:{_absolute(path)}"
    if text.startswith("sqlite:///"):
        path = text[len("sqlite:///") :]
        if not path:
            raise TransferTuneError("sqlite storage needs a file: sqlite:///PATH.db")
        return f"sqlite:///{_absolute(path)}"
    if text.startswith(("postgresql://", "postgresql+", "postgres://")):
        return _postgres_url(text)
    if "://" not in text:
        suffix = Path(text).suffix.lower()
        if suffix in _SQLITE_SUFFIXES:
            return f"sqlite:///{_absolute(text)}"
        if suffix in _JOURNAL_SUFFIXES:
            return f"journal:{_absolute(text)}"
    raise TransferTuneError(
        f"unsupported storage {redact_url(text)!r}: use sqlite:///PATH.db (or PATH.db), "
        "journal:PATH (or PATH.journal), or postgresql://USER:PASSWORD@HOST:PORT/DB"
    )


def _postgres_url(text: str) -> str:
    """``postgres://`` -> ``postgresql://``, with the psycopg2 driver when only it is installed.

    SQLAlchemy 2.1 connects a bare ``postgresql://`` URL with psycopg (version 3); with only
    psycopg2 installed (``pip install psycopg2-binary``) the URL must name it.
    """
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    if text.startswith("postgresql://"):
        from importlib.util import find_spec

        if find_spec("psycopg") is None and find_spec("psycopg2") is not None:
            text = "postgresql+psycopg2://" + text[len("postgresql://") :]
    return text


def _absolute(path: str) -> Path:
    """The absolute form of a storage file path (``~`` expanded, links resolved)."""
    try:
        return Path(path).expanduser().resolve()
    except (ValueError, OSError, RuntimeError) as exc:  # NUL byte, unknown ~user, link loop
        raise TransferTuneError(f"invalid storage file path {path!r}: {exc}") from exc


def storage_file(url: str | None) -> Path | None:
    """The file behind an SQLite or journal URL; ``None`` for a database server."""
    url = normalize_url(url)
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if url.startswith("journal:"):
        return Path(url[len("journal:") :])
    return None


def _sibling_dir(url: str | None, suffix: str) -> Path:
    path = storage_file(url)
    if path is None:
        return (Path.cwd() / "studies" / suffix.strip("_")).resolve()
    return path.with_name(f"{path.stem}{suffix}")


def artifact_dir(url: str | None) -> Path:
    """Folder for the file-system artifact store next to the storage (not created)."""
    return _sibling_dir(url, "_artifacts")


def checkpoint_dir(url: str | None) -> Path:
    """Folder for target-run checkpoints next to the storage (not created)."""
    return _sibling_dir(url, "_checkpoints")


def dashboard_command(url: str | None) -> str:
    """The shell command that opens optuna-dashboard on this storage and its artifacts.

    A password in the URL is shown as ``***`` (keep it in ``~/.pgpass``).
    """
    url = normalize_url(url)
    target = str(storage_file(url)) if url.startswith("journal:") else redact_url(url)
    return f"optuna-dashboard {target} --host 127.0.0.1 --artifact-dir {artifact_dir(url)}"


def get_storage(
    url: str | os.PathLike | None = None,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    retry_stale_trials: int | None = None,
    must_exist: bool = False,
    read_only: bool = False,
) -> BaseStorage:
    """Open (creating if needed) the Optuna storage behind ``url``.

    Parameters
    ----------
    url : str or path, optional
        See the module docstring; ``None`` means :func:`default_storage_url`.
    heartbeat_interval, grace_period : int, optional
        Seconds; turn on heartbeats so a killed worker's RUNNING trial is failed (RDB only).
    retry_stale_trials : int, optional
        With heartbeats, re-queue a stale trial up to this many times
        (Optuna's ``RetryHeartbeatStaleTrialCallback``).
    must_exist : bool
        Refuse (instead of creating) a missing SQLite or journal file: for commands that read
        an existing study.
    read_only : bool
        For commands that only read (``transfer --plan-only``, ``horizon``, ``dashboard``):
        implies ``must_exist``; the file and its folder need not be writable (a snapshot, a
        read-only mount) and nothing is created or repaired.

    A journal file whose last record was cut (disk full, a kill mid-write) is repaired on
    open: the fragment is moved to ``<file>.torn-<time>`` and the file ends at the last whole
    record.

    Raises
    ------
    TransferTuneError
        On an unsupported URL, a missing database driver or a server that cannot be reached.
    """
    url = normalize_url(url)
    path = storage_file(url)
    if (must_exist or read_only) and path is not None and not path.is_file():
        raise TransferTuneError(
            f"no storage file at {path}: run `transfer-tune tune` first, or check --storage "
            "(or $TRANSFER_TUNE_STORAGE)"
        )
    if path is not None and not read_only:
        _prepare_folder(path)
    if url.startswith("journal:"):
        lock = optuna.storages.journal.JournalFileOpenLock(str(path))
        if not read_only:  # a reader skips a torn last record (Optuna ignores it)
            _repair_torn_journal(path, lock)
        try:
            return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
        except OSError as exc:
            raise TransferTuneError(f"cannot open the journal file {path}: {exc}") from exc
        except ValueError as exc:  # a damaged record in the middle of the file
            raise TransferTuneError(
                f"the journal file {path} is damaged ({exc}); restore it from a backup"
            ) from exc
    if heartbeat_interval is not None:
        as_int(heartbeat_interval, "heartbeat_interval (seconds)")
        if grace_period is None:
            grace_period = 2 * heartbeat_interval  # Optuna's own default
        as_int(grace_period, "grace_period (seconds)")
        if grace_period < heartbeat_interval:
            raise TransferTuneError(
                f"grace_period ({grace_period} s) must be at least the heartbeat interval "
                f"({heartbeat_interval} s); a few intervals is usual"
            )
    elif grace_period is not None:
        raise TransferTuneError("grace_period needs heartbeat_interval")
    kwargs: dict = {}
    if heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = heartbeat_interval
        kwargs["grace_period"] = grace_period
        if retry_stale_trials:
            with warnings.catch_warnings():  # "experimental" in Optuna's terms
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=retry_stale_trials
                )
            kwargs["heartbeat_stale_trial_callback"] = retry
    engine_kwargs: dict = {}
    if url.startswith("sqlite:///"):
        engine_kwargs["connect_args"] = {"timeout": 60}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's terms
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except ImportError as exc:
        raise TransferTuneError(
            f"the database driver for {url.split(':', 1)[0]} is not installed; "
            "for PostgreSQL run: pip install psycopg2-binary"
        ) from exc
    except Exception as exc:  # sqlalchemy's OperationalError and friends
        first = str(exc).splitlines()[0] if str(exc) else ""
        if path is not None:
            raise TransferTuneError(
                f"cannot open the SQLite storage {path}: {first or type(exc).__name__}. The "
                "file may be damaged or "
                "not an Optuna database: move it aside or choose another --storage"
            ) from exc
        raise TransferTuneError(
            f"cannot open storage {redact_url(url)}: {type(exc).__name__}: "
            f"{redact_text(first, url)}. Check the URL, that the server runs and accepts "
            "connections, and the credentials."
        ) from exc


def _prepare_folder(path: Path) -> None:
    """Create the storage file's folder, or say in one line why it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TransferTuneError(
            f"cannot create the folder {path.parent} for the storage file: {exc.strerror or exc}"
        ) from exc
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK):
        raise TransferTuneError(
            f"{target} is not writable: choose a storage in a folder you can write to "
            "(--storage or $TRANSFER_TUNE_STORAGE)"
        )


def _repair_torn_journal(path: Path, lock: Any) -> None:
    """Cut a journal's torn last record (no final newline) into a backup file.

    Writers append whole lines under ``lock``, so holding it no write is half done. A last
    line that is valid JSON only lacks its newline, which is added back instead.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
    lock.acquire()
    try:
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        fragment = data[cut:]
        try:
            json.loads(fragment)
        except ValueError:
            backup = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
            backup.write_bytes(fragment)
            with open(path, "r+b") as fh:
                fh.truncate(cut)
            warnings.warn(
                f"the journal {path} ended in a torn record ({len(fragment)} bytes, e.g. a "
                f"kill mid-write); moved it to {backup} and went on",
                stacklevel=3,
            )
        else:
            with open(path, "ab") as fh:
                fh.write(b"\n")
    finally:
        lock.release()


_SAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_PASSWORD_IN_QUERY = re.compile(r"(?i)([?&;]password=)[^&;]*")
#: A scheme and the ``:`` / ``:/`` / ``://`` after it (``postgresql://``, ``mysql:/``, ``x:``).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(/*)")
_MAX_STEM = 80
#: The longest study name accepted from a user (derived names add a few characters; Optuna's
#: RDB storages take 512 and every file name goes through :func:`safe_filename`).
MAX_NAME_LENGTH = 200


def _userinfo_end(text: str) -> tuple[int, int] | None:
    """Where the ``user:secret`` before the last ``@`` of ``text`` starts and ends, if any.

    After ``scheme:/`` or ``scheme://`` the user part starts there; without a slash
    (``user:PW@host``, ``scheme:user:PW@host``) a scheme cannot be told from a user, so the
    whole text before the ``@`` counts.
    """
    at = text.rfind("@")
    if at < 0:
        return None
    scheme = _SCHEME.match(text)
    start = scheme.end() if scheme and scheme.group(1) else 0
    return (start, at) if start < at else None


def redact_url(url: str | os.PathLike | None) -> str:
    """``url`` with any password replaced by ``***``, for every message, note and file.

    Works on any URL-ish string, whatever its scheme (a typo such as ``postgressql://`` or
    ``postgresql:/`` included): everything between the first ``:`` of the user part (after
    ``scheme://`` or ``scheme:/``) and the **last** ``@`` is secret, so a password holding
    ``/``, ``:`` or ``@`` is hidden whole; a ``password=`` query parameter is hidden too.
    Strings without credentials (file paths, ``sqlite:///...``) come back unchanged.
    """
    text = "" if url is None else os.fspath(url)
    if not isinstance(text, str):
        return f"<{type(text).__name__}>"
    text = _PASSWORD_IN_QUERY.sub(r"\1***", text)
    span = _userinfo_end(text)
    if span is None:
        return text
    start, at = span
    user, colon, _ = text[start:at].partition(":")
    if not colon:  # ``postgresql://tt@host``: a user, no password
        return text
    return f"{text[:start]}{user}:***{text[at:]}"


def redact_text(text: str, url: str | os.PathLike | None) -> str:
    """``text`` (e.g. a driver's error message) with the secret of ``url`` hidden in it.

    The password of ``url`` (as :func:`redact_url` finds it) is replaced wherever it appears,
    and so is the whole URL; then ``text`` itself is redacted as a URL-ish string.
    """
    raw = "" if url is None else os.fspath(url)
    if isinstance(raw, str) and raw:
        text = text.replace(raw, redact_url(raw))
        span = _userinfo_end(raw)
        secret = raw[span[0] : span[1]].partition(":")[2] if span else ""
        if len(secret) >= 4:  # a shorter one would star out ordinary words of the message
            text = text.replace(secret, "***")
    return redact_url(text)


def check_study_name(name: object, what: str = "study name") -> str:
    """``name`` if it can name a study (and, through :func:`safe_filename`, its files).

    The one check of user-given names (API, CLI, specs), made before any study or training:
    a non-empty string of printable UTF-8 text of at most :data:`MAX_NAME_LENGTH` characters.
    Path-like names (``../x``, ``/abs/x``, ``sweep/mup/K8``) are fine: no name ever becomes a
    path except through :func:`safe_filename`.

    Parameters
    ----------
    name : object
        The name to check.
    what : str
        What it names, for the message (``"study name"``, ``"target study name"``, ...).

    Returns
    -------
    str
        ``name``, unchanged.

    Raises
    ------
    TransferTuneError
        For anything else, naming the fix.
    """
    if not isinstance(name, str) or not name.strip():
        shown = repr(name) if isinstance(name, str) else f"a {type(name).__name__}"
        raise TransferTuneError(f"a {what} must be a non-empty string, got {shown}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise TransferTuneError(
            f"the {what} {ascii(name)} is not valid UTF-8 text (bytes the shell could not "
            "decode?); use letters, digits, '-', '_' or any UTF-8 text"
        ) from None
    if len(name) > MAX_NAME_LENGTH:
        raise TransferTuneError(
            f"the {what} {name[:40]!r}... is {len(name)} characters long; use at most "
            f"{MAX_NAME_LENGTH}"
        )
    if not name.isprintable():
        raise TransferTuneError(
            f"the {what} {name!r} holds a control character (newline, tab, escape ...); "
            "use printable text only"
        )
    return name


def safe_filename(name: str, suffix: str = "") -> str:
    """A file name made from a study name that stays inside the folder it is joined to.

    Names of letters, digits, ``.``, ``_`` and ``-`` (not starting with ``.``, at most 80
    characters) are kept as they are; any other name becomes a slug of those characters plus
    the first 10 hex digits of its SHA-256, so ``../../x`` or ``/etc/x`` can never leave the
    folder and two different names never share a file.

    Raises
    ------
    TransferTuneError
        For an empty or non-string name.
    """
    if not isinstance(name, str) or not name.strip():
        raise TransferTuneError(f"a study name must be a non-empty string, got {name!r}")
    slug = _SAFE_CHARS.sub("-", name).strip(".-") or "study"
    if slug != name or len(name) > _MAX_STEM:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        slug = f"{slug[:_MAX_STEM]}-{digest}"
    return slug + suffix
