"""Hostile and careless input: names never become paths, passwords never printed, early checks.

Each test reproduces an attack or a mistake found on an earlier main and asserts what happens
now (issue "Harden it").
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sizes import TINY_BURGERS, WORKFLOW
from transfer_tune.api import tune_then_transfer
from transfer_tune.errors import TransferTuneError
from transfer_tune.search.samplers import make_sampler
from transfer_tune.search.storage import checkpoint_dir, get_storage, redact_url, safe_filename
from transfer_tune.search.transfer import transfer


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A finished proxy study (and its K=16 target) in an SQLite file of its own folder."""
    folder = tmp_path_factory.mktemp("hardening") / "deep" / "er"
    url = f"sqlite:///{folder / 'a.db'}"
    tune_then_transfer(
        "burgers",
        target_modes=16,
        storage=url,
        study_name="tiny",
        problem_overrides=TINY_BURGERS,
        **WORKFLOW,
    )
    return url, folder


# --------------------------------------------------------------------------- names -> paths
@pytest.mark.parametrize(
    "name",
    ["../../../tgt_escape", "/tmp/absolute_evil", "a/b/../../c", "..", "x" * 300, "µP run"],
)
def test_safe_filename_stays_in_its_folder(tmp_path, name):
    out = safe_filename(name, ".state.pt")
    assert "/" not in out and not out.startswith(".") and len(out) <= 120
    assert (tmp_path / out).resolve().parent == tmp_path.resolve()
    assert out != safe_filename(name + "x", ".state.pt")  # distinct names, distinct files


def test_plain_names_keep_their_file_name():
    assert safe_filename("burgers-proxy-K4-target-K32", ".pt") == "burgers-proxy-K4-target-K32.pt"
    with pytest.raises(TransferTuneError, match="non-empty"):
        safe_filename("  ")


def test_a_target_study_named_like_a_path_writes_inside_the_checkpoint_folder(tuned):
    url, folder = tuned
    for name in ("../../../tgt_escape", "/tmp/tt_abs_escape", "y" * 200):  # longest allowed
        _, target = transfer(
            "tiny", 8, url, epochs=1, device="cpu", progress=False, study_name=name
        )
        ckpt = Path(target.checkpoint).resolve()
        assert ckpt.parent == checkpoint_dir(url).resolve()
        assert ckpt.is_file()
        assert optuna.load_study(study_name=name, storage=url).user_attrs["kind"] == "target"
    # every file named after them lies in the checkpoint folder, none above the storage's
    written = list(folder.parent.parent.glob("**/tgt_escape*"))
    assert written and {p.parent for p in written} == {checkpoint_dir(url)}
    assert not Path("/tmp/tt_abs_escape.pt").exists()


# --------------------------------------------------------------------------- passwords
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://tt:S3cretPW@db.example:5432/transfer_tune",
        "postgresql+psycopg2://tt:S3cretPW@127.0.0.1/db",
        "postgresql://tt@127.0.0.1/db?sslmode=disable&password=S3cretPW",
        "postgresql://tt:ab/cdS3cretPW@db.example/transfer_tune",  # "/" in the password
        "postgresql://tt:a@b:S3cretPW@db.example/transfer_tune",  # "@" and ":" in it
        "postgressql://tt:S3cretPW@db.example/transfer_tune",  # scheme typos
        "mysql://tt:S3cretPW@db.example/transfer_tune",
    ],
)
def test_redaction_hides_every_password_form(url):
    out = redact_url(url)
    assert "S3cretPW" not in out and "***" in out
    assert out.split("://")[0] == url.split("://")[0]


def test_unreachable_postgres_error_does_not_print_the_password():
    with pytest.raises(TransferTuneError) as info:
        transfer("tiny", 8, "postgresql+psycopg2://tt:S3cretPW@127.0.0.1:1/db")
    assert "S3cretPW" not in str(info.value) and "***" in str(info.value)


# --------------------------------------------------------------------------- early checks
def _no_trials(url: str) -> bool:
    summaries = optuna.get_all_study_summaries(url, include_best_trial=False)
    return all(s.n_trials == 0 for s in summaries)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_epochs": -1}, "target epochs must be a positive integer"),
        ({"target": {"modes": 1}}, "target modes"),  # None means "not said": K 32
        ({"target_modes": 1}, "target_modes"),
        ({"target_modes": "32"}, "target_modes"),
        ({"target_modes": 64}, "K"),  # more modes than the 64-point grid allows
        ({"eval_resolution": 12}, "resolution"),  # not a grid the solver can give
        ({"problem_overrides": {**TINY_BURGERS, "n_test": 0}}, "test split"),
    ],
)
def test_target_mistakes_fail_before_the_proxy_search(tmp_path, kwargs, message):
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = {"target_modes": 16, "problem_overrides": TINY_BURGERS, **WORKFLOW, **kwargs}
    with pytest.raises(TransferTuneError, match=message):
        tune_then_transfer("burgers", storage=url, study_name="early", **args)
    assert _no_trials(url)


@pytest.mark.parametrize(("split", "bad"), [("val", np.nan), ("test", np.inf), ("train", -np.inf)])
def test_non_finite_data_fails_before_the_proxy_search(tmp_path, split, bad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 32)).astype(np.float32)
    y = np.cumsum(x, axis=-1).astype(np.float32)
    index = {"train": 0, "val": 17, "test": 22}[split]  # splits in order: 16 / 4 / 4
    y[index, 3] = bad
    path = tmp_path / "pairs.npz"
    np.savez(path, x=x, y=y)
    url = f"sqlite:///{tmp_path / 's.db'}"
    overrides = {"path": str(path), "n_train": 16, "n_val": 4, "n_test": 4}
    # the train split is caught first by the normaliser's fit, the others by check_data
    pattern = "NaN or inf" if split == "train" else f"{split} split .* NaN or inf"
    with pytest.raises(TransferTuneError, match=pattern):
        tune_then_transfer(
            "file",
            target_modes=8,
            storage=url,
            study_name="nan",
            problem_overrides=overrides,
            **WORKFLOW,
        )
    assert _no_trials(url)


# --------------------------------------------------------------------------- file system
@pytest.fixture
def small_mount(tmp_path):
    """A 256 KiB tmpfs of the test's own, skipped where mounting is denied."""
    point = tmp_path / "mnt"
    point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(point)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({proc.stderr.strip()}): needs root or CAP_SYS_ADMIN"
        )

    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.subprocess
def test_read_only_folders_give_one_clear_line(small_mount):
    (small_mount / "x.db").write_bytes(b"")
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    for url, words in [
        (f"sqlite:///{small_mount / 'missing' / 'a.db'}", "cannot create the folder"),
        (f"journal:{small_mount / 'j.journal'}", "not writable"),
        (f"sqlite:///{small_mount / 'x.db'}", "not writable"),
    ]:
        with pytest.raises(TransferTuneError, match=words):
            get_storage(url)


@pytest.mark.subprocess
def test_a_full_disk_is_one_line_from_the_cli(small_mount):
    url = f"sqlite:///{small_mount / 'full.db'}"
    (small_mount / "filler").write_bytes(b"\0" * (240 * 1024))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "transfer_tune.cli",
            "transfer",
            "nope",
            "--modes",
            "8",
            "--storage",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_missing_storage_file_is_not_created_by_transfer(tmp_path):
    path = tmp_path / "typo.db"
    with pytest.raises(TransferTuneError, match="no storage file"):
        transfer("tiny", 8, f"sqlite:///{path}")
    assert not path.exists()


def test_a_corrupt_database_says_so(tmp_path):
    path = tmp_path / "c.db"
    path.write_bytes(b"not a database " * 100)
    with pytest.raises(TransferTuneError, match="damaged or not an Optuna database"):
        get_storage(f"sqlite:///{path}")


def test_a_torn_journal_is_repaired_with_a_backup(tmp_path):
    path = tmp_path / "t.journal"
    study = optuna.create_study(storage=get_storage(f"journal:{path}"), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    whole = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(b'{"op_code": 4, "worker_id": "cut-he')  # a kill mid-write
    with pytest.warns(UserWarning, match="torn record"):
        storage = get_storage(f"journal:{path}")
    assert path.read_bytes() == whole
    (backup,) = tmp_path.glob("t.journal.torn-*")
    assert backup.read_bytes().startswith(b'{"op_code": 4')
    study = optuna.load_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    reopened = optuna.load_study(study_name="s", storage=get_storage(f"journal:{path}"))
    assert len(reopened.trials) == 3


def test_a_whole_last_record_without_newline_is_kept(tmp_path):
    path = tmp_path / "n.journal"
    study = optuna.create_study(storage=get_storage(f"journal:{path}"), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    storage = get_storage(f"journal:{path}")
    assert path.read_bytes().endswith(b"\n") and not list(tmp_path.glob("*.torn-*"))
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 2


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"heartbeat_interval": 30, "grace_period": 10}, "at least the heartbeat interval"),
        ({"heartbeat_interval": True}, "heartbeat_interval"),
        ({"grace_period": 10}, "needs heartbeat_interval"),
    ],
)
def test_heartbeat_settings_are_checked(tmp_path, kwargs, words):
    with pytest.raises(TransferTuneError, match=words):
        get_storage(f"sqlite:///{tmp_path / 'h.db'}", **kwargs)


# --------------------------------------------------------------------------- concurrency
@pytest.mark.parametrize("name", ["tpe", "random", "gp"])
def test_processes_with_the_same_seed_propose_different_configurations(tmp_path, name):
    """Two workers (two Study objects, as two processes have) on one journal, the same seed."""
    url = f"journal:{tmp_path / 'j.journal'}"
    optuna.create_study(storage=get_storage(url), study_name="s")
    workers = [
        optuna.load_study(study_name="s", storage=get_storage(url), sampler=make_sampler(name, 0))
        for _ in range(2)
    ]
    proposals = []
    for _ in range(3):
        for study in workers:  # interleaved, as simultaneous processes would be
            trial = study.ask()
            proposals.append(
                (trial.suggest_float("lr", 1e-5, 1e-1, log=True), trial.suggest_int("batch", 4, 64))
            )
            study.tell(trial, proposals[-1][0])
    assert len(set(proposals)) == 6


def test_one_process_stays_reproducible(tmp_path):
    def run(path: Path) -> list[float]:
        study = optuna.create_study(
            storage=get_storage(f"journal:{path}"), sampler=make_sampler("tpe", 3)
        )
        study.optimize(lambda t: (t.suggest_float("x", -3, 3) - 1) ** 2, n_trials=8)
        return [t.params["x"] for t in study.trials]

    assert run(tmp_path / "a.journal") == run(tmp_path / "b.journal")


# --------------------------------------------------------------------------- one line, exit 2
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "transfer_tune.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seed", "-5"], "seed"),
        (["--seed", str(2**32)], "seed"),
        (["--device", "meta"], "cannot train"),
        (["--heartbeat-interval", "0"], "heartbeat_interval"),
        (["--heartbeat-interval", "30", "--grace-period", "5"], "at least the heartbeat"),
    ],
)
@pytest.mark.subprocess
def test_worker_mistakes_are_one_line(tuned, tmp_path, args, words):
    url, _ = tuned
    shutil.copy(url.removeprefix("sqlite:///"), tmp_path / "copy.db")
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    before = len(optuna.load_study(study_name="tiny", storage=copy).trials)
    proc = _cli("worker", "tiny", "--n-trials", "9", "--storage", copy, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert len(optuna.load_study(study_name="tiny", storage=copy).trials) == before


@pytest.mark.subprocess
def test_dashboard_refuses_an_empty_host_and_a_busy_port(tuned, tmp_path):
    url, _ = tuned
    proc = _cli("dashboard", url, "--host", "", cwd=tmp_path)
    assert proc.returncode == 2 and "host must name an interface" in proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _cli("dashboard", url, "--port", str(port), cwd=tmp_path)
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"train": "x"}, "train must be a mapping"),
        ({"problem_overrides": [1]}, "overrides must be a mapping"),
    ],
)
def test_api_mistakes_are_our_error(tmp_path, kwargs, words):
    args = {"target_modes": 8, "problem_overrides": TINY_BURGERS, **WORKFLOW, **kwargs}
    with pytest.raises(TransferTuneError, match=words):
        tune_then_transfer("burgers", storage=f"sqlite:///{tmp_path / 's.db'}", **args)


def test_a_problem_dict_without_a_name_is_our_error(tmp_path):
    with pytest.raises(TransferTuneError, match="needs a 'name' key"):
        tune_then_transfer(
            {"resolution": 64}, target_modes=8, storage=f"sqlite:///{tmp_path / 's.db'}", **WORKFLOW
        )


# --------------------------------------------------------------------------- integrity
def test_a_flipped_bit_in_a_weight_is_refused(tmp_path):
    from transfer_tune.core import checkpoint

    marker = torch.full((64,), 1.2345678, dtype=torch.float32)
    path = checkpoint.save(tmp_path / "c.pt", {"model_state": {"w": marker}, "epochs": 3})
    ok = checkpoint.load(path)
    assert torch.equal(ok["model_state"]["w"], marker) and ok["epochs"] == 3
    assert torch.load(path, weights_only=True)["epochs"] == 3  # still a plain torch file
    data = bytearray(path.read_bytes())
    at = bytes(data).find(marker[:4].numpy().tobytes())
    assert at > 0
    data[at + 5] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(data))
    assert not torch.equal(torch.load(path, weights_only=True)["model_state"]["w"], marker)
    with pytest.raises(TransferTuneError, match="SHA-256"):
        checkpoint.load(path)


def test_other_formats_and_foreign_files_are_refused(tmp_path):
    from transfer_tune.core import checkpoint

    torch.save({"model_state": {}, "integrity": {"format": 99, "sha256": "0"}}, tmp_path / "f.pt")
    with pytest.raises(TransferTuneError, match="format 99"):
        checkpoint.load(tmp_path / "f.pt")
    torch.save({"model_state": {}}, tmp_path / "plain.pt")
    with pytest.raises(TransferTuneError, match="format None"):
        checkpoint.load(tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00junk" * 10)
    with pytest.raises(TransferTuneError, match="damaged or not a transfer-tune checkpoint"):
        checkpoint.load(tmp_path / "junk.pt")


# --------------------------------------------------------------------------- a live target run
@pytest.mark.subprocess
def test_a_running_target_is_not_taken_over(tuned):
    url, _ = tuned
    study = optuna.create_study(storage=url, study_name="busy")
    trial = study.ask()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{alive.pid}")
        with pytest.raises(TransferTuneError, match="being trained right now"):
            transfer("tiny", 8, url, epochs=1, device="cpu", progress=False, study_name="busy")
        assert study.trials[0].state == optuna.trial.TrialState.RUNNING  # left alone
    finally:
        alive.kill()
        alive.wait()
    # the same process gone: the next launch resumes (fails the orphan, runs once more)
    _, target = transfer("tiny", 8, url, epochs=1, device="cpu", progress=False, study_name="busy")
    states = [t.state.name for t in optuna.load_study(study_name="busy", storage=url).trials]
    assert states == ["FAIL", "COMPLETE"] and target.metrics["modes"] == 8


def test_another_machines_run_needs_take_over(tuned):
    url, _ = tuned
    study = optuna.create_study(storage=url, study_name="remote")
    study.ask().set_user_attr("worker", "some-other-host:4242")
    with pytest.raises(TransferTuneError, match="take_over=True"):
        transfer("tiny", 8, url, epochs=1, device="cpu", progress=False, study_name="remote")
    transfer(
        "tiny", 8, url, epochs=1, device="cpu", progress=False, study_name="remote", take_over=True
    )
    states = [t.state.name for t in optuna.load_study(study_name="remote", storage=url).trials]
    assert states == ["FAIL", "COMPLETE"]


# --------------------------------------------------------------------------- the dataset cache
def test_cache_files_are_readable_by_a_team(tmp_path):
    from pdes import get_problem

    problem = get_problem("burgers", cache_dir=tmp_path, **TINY_BURGERS)
    problem.dataset("train")
    mask = os.umask(0)
    os.umask(mask)
    files = list(tmp_path.rglob("*.npz")) + list(tmp_path.rglob("*.json"))
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


@pytest.mark.subprocess
def test_data_into_a_read_only_cache_fails_loudly(small_mount, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    proc = _cli(
        "data",
        "burgers",
        "--n-train",
        "4",
        "--n-val",
        "2",
        "--n-test",
        "2",
        "--resolution",
        "64",
        "--cache-dir",
        str(small_mount),
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "not generated yet" not in proc.stdout
    assert str(small_mount) in proc.stderr


# --------------------------------------------------------------------------- properties
@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=400).filter(lambda s: s.strip()))
def test_any_study_name_gives_a_file_inside_its_folder(name):
    out = safe_filename(name, ".pt")
    folder = Path("/srv/checkpoints")
    assert (folder / out).parent == folder and out not in (".pt", "..pt")
    assert not out.startswith(".") and len(out.encode()) < 255
    assert out == safe_filename(name, ".pt")


@settings(max_examples=300, deadline=None)
@given(
    user=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    password=st.from_regex(r"[A-Za-z0-9!$%^*()_+=./:@?#-]{4,24}", fullmatch=True),
    host=st.sampled_from(["db", "10.0.0.5", "db.example.org:5433"]),
    driver=st.sampled_from(["postgresql", "postgresql+psycopg2", "postgres", "mysql", "pg"]),
)
def test_any_password_is_redacted(user, password, host, driver):
    url = f"{driver}://{user}:{password}@{host}/transfer_tune"
    assert redact_url(url) == f"{driver}://{user}:***@{host}/transfer_tune"
    query = f"postgresql://{user}@{host}/db?password={password}&sslmode=require"
    assert redact_url(query) == f"postgresql://{user}@{host}/db?password=***&sslmode=require"
