"""The dashboard: notes, figures and artifacts on our studies; the server; a real browser.

The storage is made by the real workflow (a landscape sweep, ``tune`` and ``transfer`` on tiny
problems, once per module); the tests check what is written against the stored studies and
the µP formula, never against numbers they wrote themselves.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from optuna_dashboard import get_note

from tests.conftest import TINY_BURGERS
from tests.synthetic import operator_task
from transfer_tune.analysis.landscape import (
    LandscapeRow,
    SweepResult,
    load_sweep,
    study_name,
    sweep,
)
from transfer_tune.analysis.optimum import analyze_optimum
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.core.train import TrainData
from transfer_tune.errors import TransferTuneError
from transfer_tune.report.dashboard import (
    annotate_all,
    annotate_proxy_study,
    annotate_sweep,
    dashboard_url,
    serve,
    sweep_note,
)
from transfer_tune.report.figures import tuning_history_figure
from transfer_tune.report.readers import open_study, read_proxy_history, read_target
from transfer_tune.search.storage import artifact_dir, get_storage
from transfer_tune.search.transfer import transfer
from transfer_tune.search.tune import tune

SWEEP = "dash"
PROXY = "proxy-K4"
TARGET = "proxy-K4-target-K16"


def find_chromium() -> str | None:
    """A Chromium (or Chrome) executable: $BROWSER_PATH, else the usual names on PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).is_file() and os.access(env, os.X_OK):
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find_chromium()


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> str:
    """A sweep, a proxy study (K = 4) and its transferred target (K = 16), all real runs."""
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'studies.db'}"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y = operator_task(32, 32, 0)
        xv, yv = operator_task(16, 32, 1)
        sweep(
            TrainData(x, y, xv, yv),
            modes=[2, 4],
            values=[1e-3, 1e-2, 30.0],  # lr = 30 diverges
            seeds=[0],
            epochs=1,
            storage=url,
            sweep_name=SWEEP,
            width=8,
            n_layers=2,
            model_options={"projection_width": 16},
            hparams={"batch_size": 8},
            device="cpu",
            progress=False,
        )
        tune(
            "burgers",
            proxy_modes=4,
            width=8,
            n_layers=2,
            n_trials=3,
            epochs=2,
            search_space={"batch_size": [8, 16]},
            storage=url,
            study_name=PROXY,
            device="cpu",
            problem_overrides=TINY_BURGERS,
            progress=False,
        )
        transfer(PROXY, 16, url, epochs=2, device="cpu", progress=False)
    finally:
        torch.set_num_threads(before)
    formats = ("png",) if CHROMIUM else ()
    annotate_sweep(url, SWEEP, image_formats=formats)
    annotate_proxy_study(url, PROXY, image_formats=())  # one Chromium start is enough
    return url


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=get_storage(url))


def system_attr_keys(url: str, name: str) -> set[str]:
    """The study's system attribute keys, through the public storage API."""
    store = get_storage(url)
    return set(store.get_study_system_attrs(store.get_study_id_from_name(name)))


def fmt(value) -> str:
    """How notes print a number (4 significant digits; integers as they are)."""
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def test_sweep_notes_figures_and_artifacts_are_written(storage):
    result = load_sweep(storage, SWEEP)
    analysis = analyze_optimum(result)
    rows = result.select("mup", 4)
    diverged = sum(r.diverged for r in rows)
    assert diverged == sum(r.point["lr"] == 30.0 for r in rows) == 1  # lr = 30, and only it
    note = get_note(load(storage, study_name(SWEEP, "mup", 4)))
    assert note.startswith(f"## Landscape sweep `{SWEEP}`: µP, K = 4")
    assert f"{len(rows)}/{len(result.points) * len(result.seeds)} runs finished, " in note
    assert f"finished, {diverged} diverged" in note
    for kind in ("mup", "sp"):  # the verdicts of the stored sweep, whatever they are
        assert analysis.verdicts[kind].line in note
    keys = system_attr_keys(storage, study_name(SWEEP, "mup", 4))
    assert any(k.startswith("dashboard:plot_data:landscape:") for k in keys)
    assert any(k.startswith("dashboard:plot_data:optimum:") for k in keys)

    anchor = load(storage, study_name(SWEEP, "mup", 2))
    names = sorted(a.filename for a in get_all_artifact_meta(anchor))
    expected = [f"{SWEEP}_landscape.html", f"{SWEEP}_optimum.html"]
    if CHROMIUM:
        expected += [f"{SWEEP}_landscape.png", f"{SWEEP}_optimum.png"]
    assert names == sorted(expected)
    for meta in get_all_artifact_meta(anchor):
        assert (artifact_dir(storage) / meta.artifact_id).stat().st_size > 0


def known_sweep() -> SweepResult:
    """A sweep whose answer is known: µP's optimum sits at lr = 2^-9 for every K; SP's moves
    down one octave per doubling of K (grid step 2^(1/2), two seeds)."""
    lrs = (2.0 ** np.arange(-13, -4.5, 0.5)).tolist()
    modes, kinds, seeds = [4, 8, 16], ["mup", "sp"], [0, 1]
    rows, number = [], 0
    for kind in kinds:
        for k in modes:
            x_star = -9.0 - (math.log2(k / 4) if kind == "sp" else 0.0)
            for lr in lrs:
                for seed in seeds:
                    loss = 0.05 * math.exp(0.3 * (math.log2(lr) - x_star) ** 2) * (1 + 0.01 * seed)
                    point = {"lr": lr}
                    rows.append(
                        LandscapeRow(kind, k, point, seed, loss, loss, loss, False, number, 0.1)
                    )
                    number += 1
    config = {
        "params": ["lr"],
        "values": {"lr": lrs},
        "seeds": seeds,
        "modes": modes,
        "parametrizations": kinds,
        "base_modes": 4,
        "epochs": 1,
        "width": 8,
        "n_layers": 2,
        "problem": {"name": "synthetic"},
    }
    return SweepResult(name="known", config=config, rows=rows)


def test_sweep_note_states_the_known_verdicts():
    result = known_sweep()
    analysis = analyze_optimum(result, n_boot=50)
    note = sweep_note(result, analysis, "mup", 16)
    assert note.startswith("## Landscape sweep `known`: µP, K = 16")
    assert "- µP: transfers — " in note
    assert "- SP: drifts — the optimum lr moves -2.00 log2" in note  # K = 4 -> 16: 2 octaves
    assert "µP: drifts" not in note and "SP: transfers" not in note
    assert "**Optimum lr: 0.001953**" in note  # 2^-9, the µP optimum at K = 16


def test_proxy_note_reports_the_stored_runs_and_the_mup_rates(storage):
    proxy = load(storage, PROXY)
    target = load(storage, TARGET)
    note = get_note(proxy)
    assert note.startswith(f"## Proxy study `{PROXY}`")
    complete = proxy.get_trials(states=(TrialState.COMPLETE,))
    pruned = proxy.get_trials(states=(TrialState.PRUNED,))
    assert f"Trials: {len(complete)} complete, {len(pruned)} pruned, 0 failed" in note
    best = proxy.best_trial
    assert f"Best proxy values (trial {best.number}, objective {fmt(best.value)})" in note
    for key, value in best.params.items():
        assert f"| {key} | {fmt(value)} |" in note

    lr = best.params["lr"]
    plan = target.user_attrs["plan"]
    assert plan["lr"] == lr and plan["batch_size"] == best.params["batch_size"]
    factor = math.sqrt(math.log(4) / math.log(16))  # c(16) / c(4), the µP rule for R
    rates = get_parametrization("mup", base_modes=4).learning_rates(16, 1, lr)
    groups = {g["role"]: g for g in plan["groups"]}
    assert abs(groups["spectral"]["lr"] - lr * factor) <= 1e-12 * lr
    assert abs(groups["spectral"]["lr"] - rates["spectral"]) <= 1e-12 * lr
    assert abs(groups["spectral"]["init_multiplier"] - factor) <= 1e-12
    row = f"| spectral | {factor:.6f} | {factor:.6f} | {lr * factor:.4e} |"
    assert row in note
    for role in ("lifting", "pointwise", "projection", "bias"):
        assert groups[role]["lr"] == lr
        assert f"| {role} | 1.000000 | 1.000000 | {lr:.4e} |" in note

    metrics = target.user_attrs["metrics"]
    assert target.best_value == metrics["test_l2"]  # the target's objective: physical error
    assert f"### Target run `{TARGET}` (K = 16)" in note
    for key in ("val_loss", "test_loss", "test_l2"):
        assert f"| {key} | {fmt(metrics[key])} |" in note
    seconds = sum(t.duration.total_seconds() for t in proxy.trials if t.duration)
    assert f"Proxy search: {seconds:.1f} s" in note
    assert f"the search cost {seconds / metrics['seconds']:.2f}x the target run" in note

    assert get_note(target).startswith(f"## Target of proxy study `{PROXY}`")
    target_files = {a.filename for a in get_all_artifact_meta(target)}
    assert {f"{TARGET}.pt", f"{TARGET}_plan.json"} <= target_files
    assert any(
        k.startswith("dashboard:plot_data:tuning-history:")
        for k in system_attr_keys(storage, TARGET)
    )


def test_readers_give_the_numbers_of_the_study_objects(storage):
    proxy, target = load(storage, PROXY), load(storage, TARGET)
    history = read_proxy_history(storage, PROXY)
    assert history.study_name == PROXY and history.user_attrs == proxy.user_attrs
    assert [t.number for t in history.trials] == [t.number for t in proxy.trials]
    assert [t.state for t in history.trials] == [t.state.name for t in proxy.trials]
    assert history.best.number == proxy.best_trial.number
    assert history.best.value == proxy.best_value and history.best.params == proxy.best_params
    assert history.counts["COMPLETE"] == len(proxy.get_trials(states=(TrialState.COMPLETE,)))
    assert history.modes == proxy.user_attrs["model"]["modes"] == 4

    run = history.target
    assert run == read_target(storage, TARGET)
    (trial,) = target.trials
    metrics = target.user_attrs["metrics"]
    assert run.name == TARGET and run.modes == 16
    assert run.value == target.best_value == trial.value
    assert run.test_loss == metrics["test_loss"] and run.val_loss == metrics["val_loss"]
    assert run.val_loss == trial.intermediate_values[max(trial.intermediate_values)]
    assert run.lr == proxy.best_params["lr"] and run.plan == target.user_attrs["plan"]
    assert run.checkpoint == target.user_attrs["checkpoint"] and Path(run.checkpoint).is_file()

    # the figure draws what the reader read
    fig = tuning_history_figure(history)
    roles = {t.meta["role"]: t for t in fig.data}
    assert roles["target"].y == (target.user_attrs["metrics"]["val_loss"],)
    assert roles["target"].x == (len(proxy.trials),)
    done = [t for t in proxy.trials if t.state == TrialState.COMPLETE]
    assert roles["trial"].y == tuple(t.value for t in done)
    assert roles["best"].y[-1] == proxy.best_value

    assert read_target(storage, "no-such-study") is None
    with pytest.raises(TransferTuneError, match="no study named 'nope'.*" + PROXY):
        read_proxy_history(storage, "nope")
    assert open_study(get_storage(storage), PROXY).study_name == PROXY


def test_annotating_again_replaces_artifacts(storage):
    anchor = load(storage, study_name(SWEEP, "mup", 2))
    count = len(get_all_artifact_meta(anchor))
    target_count = len(get_all_artifact_meta(load(storage, TARGET)))
    done = annotate_all(storage, image_formats=())
    assert done == {"proxy": [PROXY], "landscape": [SWEEP]}
    names = [a.filename for a in get_all_artifact_meta(anchor)]
    assert len(names) == len(set(names)) <= count  # replaced, not piled up
    target_names = [a.filename for a in get_all_artifact_meta(load(storage, TARGET))]
    assert len(target_names) == len(set(target_names)) == target_count


def test_serve_rejects_a_missing_storage(tmp_path):
    with pytest.raises(TransferTuneError, match="no storage at"):
        serve(tmp_path / "missing.db")
    assert dashboard_url("127.0.0.1", 8123) == "http://127.0.0.1:8123/dashboard/"
    assert dashboard_url("0.0.0.0", 80) == "http://127.0.0.1:80/dashboard/"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def png_pixels(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced PNG (what Chromium writes) to an (h, w, c) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat = 8, []
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            depth, color, interlace = body[8], body[9], body[12]
        elif kind == b"IDAT":
            idat.append(body)
    assert depth == 8 and interlace == 0 and color in (0, 2, 4, 6)
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, -1)
    out = np.zeros((height, width * ch), np.int64)
    prev = np.zeros(width * ch, np.int64)
    for row in range(height):
        kind, line = raw[row, 0], raw[row, 1:].astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum along the row, per channel
            cur = line.reshape(width, ch).cumsum(axis=0).reshape(-1) & 255
        elif kind == 2:  # Up
            cur = (line + prev) & 255
        else:  # Average or Paeth: sequential along the row
            cur = line.copy()
            for i in range(width * ch):
                a = int(cur[i - ch]) if i >= ch else 0
                b = int(prev[i])
                if kind == 3:
                    pred = (a + b) // 2
                else:
                    c = int(prev[i - ch]) if i >= ch else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + pred) & 255
        out[row] = cur
        prev = cur
    return out.reshape(height, width, ch).astype(np.uint8)


def listening_addresses(port: int) -> set[str]:
    """Addresses with a socket listening on ``port`` (from /proc/net/tcp*; IPv4 dotted)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                if len(address) == 8:
                    found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:  # IPv6: kept as the raw hex, never equal to "127.0.0.1"
                    found.add(address)
    return found


def test_dashboard_serves_our_studies_and_renders_in_a_browser(storage, tmp_path):
    port = free_port()
    code = f"from transfer_tune.report.dashboard import serve; serve({storage!r}, port={port})"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                summaries = get_json(f"{base}/api/studies")["study_summaries"]
                break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not answer in 60 s"
                time.sleep(0.2)
        assert listening_addresses(port) == {"127.0.0.1"}  # loopback only, by default
        by_name = {s["study_name"]: s for s in summaries}
        ours = {study_name(SWEEP, p, k) for p in ("mup", "sp") for k in (2, 4)}
        assert ours | {PROXY, TARGET} <= set(by_name)
        attrs = {a["key"]: a["value"] for a in by_name[study_name(SWEEP, "sp", 4)]["user_attrs"]}
        assert attrs["kind"] == "landscape" and attrs["sweep"] == SWEEP
        sid = by_name[study_name(SWEEP, "mup", 4)]["study_id"]
        detail = get_json(f"{base}/api/studies/{sid}")
        assert detail["note"]["body"].startswith(f"## Landscape sweep `{SWEEP}`")
        assert {"landscape", "optimum"} <= {g["id"] for g in detail["plotly_graph_objects"]}
        proxy_id = by_name[PROXY]["study_id"]
        assert "µP rescale table" in get_json(f"{base}/api/studies/{proxy_id}")["note"]["body"]

        if CHROMIUM is None:
            pytest.skip(
                "Chromium not found (no chromium, chromium-browser or google-chrome on PATH, "
                "no $BROWSER_PATH): the browser check needs Debian's chromium "
                "(apt-get install -y chromium; .ci/run installs it)"
            )
        shot = tmp_path / "study.png"
        profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
        browser = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                "--window-size=1024,768",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{base}/dashboard/studies/{sid}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shot.exists(), browser.stderr[-2000:]
        dom = browser.stdout
        assert f"{SWEEP}/mup/K4" in dom  # the study page of our study
        assert "final test loss (rel. L2) vs lr" in dom  # our landscape figure, rendered
        pixels = png_pixels(shot)[..., :3].reshape(-1, 3)
        colours = len(np.unique(pixels, axis=0))
        ink = float((pixels.min(axis=1) < 230).mean())
        print(f"screenshot: {colours} distinct colours, {ink:.1%} non-white pixels")
        assert colours > 50 and ink > 0.03, "the screenshot of the study page is blank"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    assert server.returncode is not None
    with pytest.raises(OSError):
        get_json(f"{base}/api/studies")  # stopped
