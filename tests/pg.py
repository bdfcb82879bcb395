"""A throw-away PostgreSQL server for the tests: ``postgres_url`` (session-scoped fixture).

It runs ``initdb`` into a fresh temporary directory, starts the server with ``pg_ctl`` on
127.0.0.1 and a free port (its Unix socket in the same directory, trust authentication for
loopback only), creates a database and yields its SQLAlchemy URL
``postgresql+psycopg2://transfer_tune@127.0.0.1:PORT/transfer_tune``. At the end of the
session the server is stopped (``pg_ctl stop -m fast``) and the directory removed, whatever
happened in between.

PostgreSQL refuses to run as root: under root the server runs as the ``postgres`` user (made
by Debian's package) through ``runuser`` (or ``su``), and the directory is chowned to it.

The binaries are looked up on ``PATH`` (``initdb``, ``pg_ctl``) and then under Debian's
``/usr/lib/postgresql/<version>/bin``. Without them (or without psycopg2) the tests that need
the server are skipped with the reason, except under CI (``CI=true``), where they fail:
``.ci/run`` installs Debian's ``postgresql`` package.

Use it from a test module with ``pytest_plugins = ("tests.pg",)``; a test that stops and
restarts its own server uses :func:`pg_server`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

USER = "transfer_tune"
DATABASE = "transfer_tune"
#: Seconds allowed for initdb, for the server to start and for it to stop.
TIMEOUT = 120


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str):
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: .ci/run installs Debian's postgresql; not skipping)")
    pytest.skip(reason)


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or ``None``."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent

    def version(path: str) -> tuple:
        v = Path(path).parent.parent.name
        return tuple(int(p) if p.isdigit() else 0 for p in v.split("."))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    for initdb in reversed(candidates):
        folder = Path(initdb).parent
        if (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user() -> tuple[list[str], str | None]:
    """Command prefix that runs a program as a non-root user, and that user's name."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("running as root and there is no 'postgres' user to run PostgreSQL as")
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"], "postgres"
    return ["su", "postgres", "-s", "/bin/sh", "-c"], "postgres"


def _run(
    prefix: list[str], args: list[str], timeout: float, cwd: Path
) -> subprocess.CompletedProcess:
    if prefix and prefix[0] == "su":  # su takes one shell string
        cmd = [*prefix, " ".join(shlex.quote(a) for a in args)]
    else:
        cmd = [*prefix, *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


def _check(proc: subprocess.CompletedProcess, what: str, log: Path | None = None) -> None:
    if proc.returncode != 0:
        extra = log.read_text(errors="replace")[-3000:] if log and log.is_file() else ""
        raise RuntimeError(
            f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{extra}"
        )


class Server:
    """A running throw-away server: its URL, and ``stop`` / ``start`` (same data, same port)."""

    def __init__(self, prefix: list[str], pg_ctl: str, data: Path, log: Path, root: Path):
        self.prefix, self.pg_ctl, self.data, self.log, self.root = prefix, pg_ctl, data, log, root
        self.port = 0
        self.url = ""
        self._last: subprocess.CompletedProcess | None = None

    def start(self, port: int | None = None) -> bool:
        """Start the server (on ``port``, or the last one); whether it started."""
        self.port = port or self.port
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=100"
        )
        cmd = [self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options]
        proc = _run(self.prefix, [*cmd, "-w", "-t", "60", "start"], TIMEOUT, self.root)
        self.url = f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"
        self._last = proc
        return proc.returncode == 0

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``; ``immediate`` as a last resort, or when asked)."""
        stop = [self.pg_ctl, "-D", str(self.data), "-w", "stop", "-m"]
        if _run(self.prefix, [*stop, mode], TIMEOUT, self.root).returncode != 0:
            _run(self.prefix, [*stop, "immediate"], TIMEOUT, self.root)


@contextmanager
def pg_server() -> Iterator[Server]:
    """A fresh PostgreSQL server with an empty database, stopped and removed on exit."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _unavailable("psycopg2 is not installed (pip install psycopg2-binary)")
    bindir = find_pg_bin()
    if bindir is None:
        _unavailable("PostgreSQL binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    prefix, owner = _as_server_user()
    # another user must reach the folder: /tmp, not a root-only $TMPDIR
    parent = "/tmp" if owner is not None and os.path.isdir("/tmp") else None
    root = Path(tempfile.mkdtemp(prefix="transfer-tune-pg-", dir=parent))
    data, log = root / "data", root / "server.log"
    if owner is not None:
        shutil.chown(root, user=owner, group=pwd.getpwnam(owner).pw_gid)
    server = Server(prefix, str(bindir / "pg_ctl"), data, log, root)
    started = False
    try:
        proc = _run(
            prefix,
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            TIMEOUT,
            root,
        )
        _check(proc, "initdb")
        for _attempt in range(3):  # another process may take the free port before us
            started = server.start(_free_port())
            if started:
                break
        _check(server._last, "pg_ctl start", log)
        _create_database(server.port)
        yield server
    finally:
        if started or (data / "postmaster.pid").exists():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a fresh database on a PostgreSQL server started for this test session."""
    with pg_server() as server:
        yield server.url


def _create_database(port: int) -> None:
    import psycopg2

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=port, user=USER, dbname="postgres")
            break
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        conn.close()
