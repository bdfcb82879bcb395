"""A PostgreSQL password never reaches any output, message or written file.

Runs the commands users run against the suite's own PostgreSQL server (trust
authentication on 127.0.0.1, so a password in the URL is accepted and ignored) with a
password in ``--storage`` and in ``$TRANSFER_TUNE_STORAGE``, and searches every byte they
printed and every file they wrote for it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sizes import CLI_SPEC_TOML

pytest_plugins = ("tests.pg",)  # the session fixture postgres_url
pytestmark = [pytest.mark.postgres, pytest.mark.subprocess]

PASSWORD = "Pw-4b1d/never-shown"  # SQLAlchemy takes a "/" in the password


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "transfer_tune.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_command_prints_or_writes_the_password(postgres_url, tmp_path):
    url = postgres_url.replace("transfer_tune@", f"transfer_tune:{PASSWORD}@", 1)
    assert PASSWORD in url
    spec = tmp_path / "tiny.toml"
    spec.write_text(CLI_SPEC_TOML.replace('study_name = "cli"', 'study_name = "secret-cli"'))
    outputs: list[str] = []

    def record(proc: subprocess.CompletedProcess, code: int) -> None:
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == code, proc.stdout + proc.stderr

    record(_cli("tune", str(spec), "--storage", url, "--device", "cpu", cwd=tmp_path), 0)
    assert "next: transfer-tune transfer secret-cli" in outputs[-1]
    assert "transfer_tune:***@" in outputs[-1]
    env = {"TRANSFER_TUNE_STORAGE": url}
    record(
        _cli("transfer", "secret-cli", "--modes", "8", "--device", "cpu", cwd=tmp_path, env=env), 0
    )
    record(_cli("transfer", "no-such-study", "--modes", "8", cwd=tmp_path, env=env), 2)
    assert "no study named 'no-such-study'" in outputs[-1]
    record(_cli("worker", "no-such-study", "--n-trials", "1", cwd=tmp_path, env=env), 2)
    changed = tmp_path / "changed.toml"
    changed.write_text(
        CLI_SPEC_TOML.replace('study_name = "cli"', 'study_name = "secret-cli"').replace(
            "width = 8", "width = 12"
        )
    )
    record(_cli("tune", str(changed), "--storage", url, cwd=tmp_path), 2)
    assert "exists with a different setup" in outputs[-1]
    run_spec = tmp_path / "run.toml"
    run_spec.write_text(CLI_SPEC_TOML.replace('study_name = "cli"', 'study_name = "secret-run"'))
    record(_cli("run", str(run_spec), "--device", "cpu", cwd=tmp_path, env=env), 0)

    # the dashboard's start-up line
    port = _free_port()
    dash = subprocess.Popen(
        [sys.executable, "-m", "transfer_tune.cli", "dashboard", url, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        banner = ""
        while time.monotonic() < deadline and "optuna-dashboard listening on" not in banner:
            banner += dash.stdout.readline()
        assert "optuna-dashboard listening on" in banner, banner
        outputs.append(banner)
    finally:
        dash.send_signal(signal.SIGINT)
        try:
            dash.wait(timeout=20)
        except subprocess.TimeoutExpired:
            dash.kill()

    for text in outputs:
        assert PASSWORD not in text
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".pt" for p in written)  # the target runs wrote checkpoints
    for path in written:
        assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_mistyped_storage_url_is_refused_without_its_password(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(CLI_SPEC_TOML)
    for url in (
        f"postgressql://tt:{PASSWORD}@db/transfer_tune",
        f"postgresql:/tt:{PASSWORD}@db/transfer_tune",
        f"mysql://tt:{PASSWORD}@db/transfer_tune",
    ):
        proc = _cli("tune", str(spec), "--storage", url, cwd=tmp_path)
        assert proc.returncode == 2 and "unsupported storage" in proc.stderr, proc.stderr
        assert PASSWORD not in proc.stdout + proc.stderr and "never" not in proc.stderr
        assert not list(tmp_path.rglob("*.db"))
