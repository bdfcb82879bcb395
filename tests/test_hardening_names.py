"""Names and secrets, round 2 (issue 20, items 1-4).

1. a study name never becomes a path, also when the dashboard annotations are written;
2. a name that cannot be a study's (too long, not UTF-8, control characters) is refused up
   front, before any study or training;
3. a password in any URL-ish storage string, whatever its scheme, never reaches a message;
4. a worker imports a model factory named by a study only when this machine allows it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.artifacts import get_all_artifact_meta

from tests.sizes import CLI_SPEC_TOML, TINY_BURGERS, WORKFLOW
from transfer_tune.api import tune_then_transfer
from transfer_tune.cli import main
from transfer_tune.core import factory
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.proxy import run_worker
from transfer_tune.search.storage import (
    MAX_NAME_LENGTH,
    check_study_name,
    get_storage,
    normalize_url,
    redact_url,
    safe_filename,
)
from transfer_tune.search.transfer import transfer
from transfer_tune.search.tune import tune

SHAPE = dict(dim=1, modes=4, width=8, n_layers=2, in_channels=1, out_channels=1)


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- 1. paths
def test_annotating_studies_named_like_paths_writes_no_file_outside(tmp_path, monkeypatch):
    """The history, curve and plan files named after the studies stay in the temp folder."""
    scratch = tmp_path / "scratch"  # every TemporaryDirectory of the annotation lies in it
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    url = f"sqlite:///{tmp_path / 'store' / 's.db'}"
    proxy = f"{tmp_path}/absolute/ABSRUN"  # an absolute name
    target = "../escaped/RUN.ESC"  # a relative one, climbing out of the temp folder
    tune_then_transfer(
        "burgers",
        target_modes=8,
        storage=url,
        study_name=proxy,
        target_study_name=target,
        problem_overrides=TINY_BURGERS,
        **{**WORKFLOW, "annotate": True},
    )
    assert not (tmp_path / "absolute").exists()
    assert not (scratch / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert not _files(scratch)  # nothing left behind either
    outside = {p for p in _files(tmp_path) if not p.is_relative_to(tmp_path / "store")}
    assert not outside
    names = {
        study: {
            m.filename
            for m in get_all_artifact_meta(optuna.load_study(study_name=study, storage=url))
        }
        for study in (proxy, target)
    }
    assert names[proxy] == {safe_filename(f"{proxy}_history", ".html")}
    assert names[target] >= {
        safe_filename(f"{target}_curve", ".html"),  # the dot of RUN.ESC is kept
        safe_filename(f"{target}_plan", ".json"),
    }


# --------------------------------------------------------------------------- 2. names
@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("x" * 300, "300 characters"),
        ("\udcff\udcfe", "UTF-8"),
        ("proxy\nnext line", "control character"),
        ("   ", "non-empty"),
    ],
)
def test_bad_names_are_refused_before_any_study(tmp_path, name, words):
    url = f"sqlite:///{tmp_path / 's.db'}"
    kwargs = dict(storage=url, problem_overrides=TINY_BURGERS, **WORKFLOW)
    for key in ("study_name", "target_study_name"):
        with pytest.raises(TransferTuneError, match=words) as info:
            tune_then_transfer("burgers", target_modes=8, **{key: name}, **kwargs)
        assert "\udcff" not in str(info.value)  # the message itself prints
        assert not (tmp_path / "s.db").exists()  # refused before any study (or training)
    with pytest.raises(TransferTuneError, match=words):
        tune("burgers", 4, 8, 2, 1, 1, storage=url, study_name=name, device="cpu")
    with pytest.raises(TransferTuneError, match=words):
        transfer(name, 8, url)
    with pytest.raises(TransferTuneError, match=words):
        run_worker(name, url, 1)
    assert not (tmp_path / "s.db").exists()


def test_ordinary_names_pass_unchanged():
    for name in ("burgers-proxy-K4", "sweep/mup/K8", "../x", "Ünïcode ✓", "y" * MAX_NAME_LENGTH):
        assert check_study_name(name) == name


@pytest.mark.subprocess
def test_cli_refuses_undecodable_and_long_names_in_one_line(tmp_path):
    spec = tmp_path / "tiny.toml"
    spec.write_text(CLI_SPEC_TOML)
    db = tmp_path / "s.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    for args in (
        [b"tune", str(spec).encode(), b"--study-name", b"\xff\xfe", b"--storage", bytes(db)],
        [b"transfer", b"\xff\xfe", b"--modes", b"8", b"--storage", bytes(db)],
        [b"transfer", b"cli", b"--modes", b"8", b"--target-study", b"t" * 300],
    ):
        proc = subprocess.run(
            [sys.executable.encode(), b"-m", b"transfer_tune.cli", *args],
            capture_output=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 2, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "study name" in err
    assert not db.exists()


def test_spec_with_a_long_study_name_is_refused_when_read(tmp_path, capsys):
    spec = tmp_path / "long.toml"
    spec.write_text(CLI_SPEC_TOML.replace('study_name = "cli"', f'study_name = "{"n" * 300}"'))
    assert main(["run", str(spec), "--storage", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err
    assert "300 characters" in err and str(spec) in err
    assert not (tmp_path / "s.db").exists()


# --------------------------------------------------------------------------- 3. secrets
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:ab/cdS3cretPW@host/db",
        "postgresql://user:a@b/S3cretPW@host:5432/db",
        "postgressql://u:S3cretPW@h/db",
        "postgresql:/user:S3cretPW@h/db",
        "postgresql:user:S3cretPW@h/db",
        "mysql://u:S3cretPW@h/db",
        "u:S3cretPW@h/db",
        "redis://:S3cretPW@h:6379/0",
    ],
)
def test_any_scheme_and_odd_password_is_redacted(url):
    out = redact_url(url)
    assert "S3cretPW" not in out and "***" in out
    assert out.endswith(url.rsplit("@", 1)[1])  # the host is still shown


@pytest.mark.parametrize(
    "url",
    ["postgressql://u:S3cretPW@h/db", "postgresql:/user:S3cretPW@h/db", "mysql://u:S3cretPW@h/db"],
)
def test_unsupported_storage_message_hides_the_password(url):
    with pytest.raises(TransferTuneError, match="unsupported storage") as info:
        normalize_url(url)
    assert "S3cretPW" not in str(info.value) and "***" in str(info.value)


def test_cannot_open_storage_hides_a_password_with_a_slash():
    url = "postgresql+psycopg2://user:ab/cdS3cretPW@127.0.0.1:1/db"
    with pytest.raises(TransferTuneError, match="cannot open storage") as info:
        get_storage(url)
    assert "cdS3cretPW" not in str(info.value) and "ab/" not in str(info.value)


def test_a_bytes_storage_url_is_not_echoed():
    with pytest.raises(TransferTuneError) as info:
        normalize_url(b"postgresql://u:S3cretPW@h/db")
    assert "S3cretPW" not in str(info.value)


@settings(max_examples=300, deadline=None)
@given(
    user=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    password=st.from_regex(r"[A-Za-z0-9!$%^*()_+=./:@?#&-]{4,24}", fullmatch=True),
    host=st.sampled_from(["db", "10.0.0.5", "db.example.org:5433"]),
    scheme=st.sampled_from(["postgresql", "postgressql", "mysql", "postgresql+psycopg2"]),
    sep=st.sampled_from(["://", ":/", ":"]),
)
def test_any_password_in_any_url_ish_string_is_redacted(user, password, host, scheme, sep):
    url = f"{scheme}{sep}{user}:{password}@{host}/transfer_tune"
    # ``scheme:user:pw@`` cannot tell a scheme from a user: all of it before the @ is hidden
    shown = f"{scheme}{sep}{user}:***" if sep != ":" else f"{scheme}:***"
    assert redact_url(url) == f"{shown}@{host}/transfer_tune"


# --------------------------------------------------------------------------- 4. factories
EVIL = """
from pathlib import Path
Path({imported!r}).write_text("imported")

def make(**kwargs):
    Path({called!r}).write_text("called")
    return "not a module"
"""


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """A module ``evil_factory`` whose import and call each leave a marker file."""
    imported, called = tmp_path / "IMPORTED", tmp_path / "CALLED"
    (tmp_path / "evil_factory.py").write_text(
        EVIL.format(imported=str(imported), called=str(called))
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(factory.ALLOW_ENV, raising=False)
    monkeypatch.setattr(factory, "_ALLOWED", set())
    monkeypatch.delitem(sys.modules, "evil_factory", raising=False)
    return imported, called


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """A tuned proxy study (transfer-tune's FNO); tests rewrite its model in a copy."""
    folder = tmp_path_factory.mktemp("factory")
    url = f"sqlite:///{folder / 's.db'}"
    tune(
        "burgers", 4, 8, 2, 2, 1, storage=url, study_name="p", problem_overrides=TINY_BURGERS,
        search_space={"batch_size": [8, 16]}, device="cpu", progress=False,
    )  # fmt: skip
    return folder / "s.db"


def _hijacked(proxy: Path, tmp_path: Path, path: str) -> str:
    """A copy of the proxy study whose ``model`` someone with write access replaced."""
    db = tmp_path / "hijacked.db"
    db.write_bytes(proxy.read_bytes())
    url = f"sqlite:///{db}"
    study = optuna.load_study(study_name="p", storage=url)
    study.set_user_attr("model", {"kind": "factory", "factory": path, **SHAPE})
    return url


def test_os_system_is_refused_before_it_is_called(evil, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a, **k: calls.append(a) or 0)
    with pytest.raises(TransferTuneError, match="--allow-model") as info:
        factory.model_config("os:system", **SHAPE)
    assert factory.ALLOW_ENV in str(info.value) and not calls


def test_a_study_cannot_make_workers_import_its_factory(evil, proxy, tmp_path, capsys):
    imported, called = evil
    url = _hijacked(proxy, tmp_path, "evil_factory:make")
    with pytest.raises(TransferTuneError, match="not allowed") as info:
        run_worker("p", url, 3, device="cpu")
    assert "--allow-model evil_factory:make" in str(info.value)
    with pytest.raises(TransferTuneError, match="not allowed"):
        transfer("p", 8, url, epochs=1, device="cpu", progress=False)
    assert main(["worker", "p", "--n-trials", "3", "--storage", url, "--device", "cpu"]) == 2
    assert "not allowed" in capsys.readouterr().err
    assert not imported.exists() and not called.exists()
    assert "evil_factory" not in sys.modules


def test_an_allowed_factory_that_returns_no_module_is_a_clear_error(evil, proxy, tmp_path):
    imported, called = evil
    url = _hijacked(proxy, tmp_path, "evil_factory:make")
    os.environ[factory.ALLOW_ENV] = "other.module:f, evil_factory:make"
    try:
        with pytest.raises(TransferTuneError, match="not a torch.nn.Module"):
            run_worker("p", url, 3, device="cpu")
    finally:
        del os.environ[factory.ALLOW_ENV]
    assert imported.exists() and called.exists()  # the operator allowed it: it ran


def test_the_cli_flag_allows_a_factory(evil, proxy, tmp_path, capsys):
    imported, called = evil
    url = _hijacked(proxy, tmp_path, "evil_factory:make")
    args = ["worker", "p", "--n-trials", "3", "--storage", url, "--device", "cpu"]
    assert main([*args, "--allow-model", "evil_factory:make"]) == 2
    assert "not a torch.nn.Module" in capsys.readouterr().err
    assert called.exists()


def test_a_callable_given_in_process_is_allowed(evil):
    from transfer_tune.core.model import FNO

    config = factory.model_config(FNO, **SHAPE)  # the class itself: the user chose it here
    assert config["factory"] == "transfer_tune.core.model:FNO"
    assert isinstance(factory.build_model(config), FNO)
    with pytest.raises(TransferTuneError, match="does not take"):
        factory.model_config(os.getcwd, **SHAPE)  # allowed, but no model factory


def test_a_malformed_allowlist_is_a_clear_error(evil, monkeypatch):
    monkeypatch.setenv(factory.ALLOW_ENV, "evil_factory")
    with pytest.raises(TransferTuneError, match=r"package\.module:name"):
        factory.model_config("evil_factory:make", **SHAPE)
