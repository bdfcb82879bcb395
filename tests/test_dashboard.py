"""The dashboard: notes, figures and artifacts on our studies; the server; a real browser."""

from __future__ import annotations

import json
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
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import create_trial
from optuna_dashboard import get_note

from tests.synthetic import operator_task
from transfer_tune.analysis.landscape import study_name, sweep
from transfer_tune.core.train import TrainData
from transfer_tune.errors import TransferTuneError
from transfer_tune.report.dashboard import (
    annotate_all,
    annotate_proxy_study,
    annotate_sweep,
    dashboard_url,
    serve,
)
from transfer_tune.search.storage import artifact_dir, get_storage

SWEEP = "dash"


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


def add_proxy_and_target(url: str, checkpoint: Path) -> None:
    """A proxy study and its target study, written the way tune/transfer write them."""
    store = get_storage(url)
    proxy = optuna.create_study(storage=store, study_name="proxy-K4", direction="minimize")
    attrs = {
        "kind": "proxy",
        "problem": {"name": "burgers", "resolution": 64, "n_train": 32},
        "model": {"dim": 1, "modes": 4, "width": 8, "n_layers": 2},
        "parametrization": {"kind": "mup", "base_modes": 4, "spectral_std": None},
        "search_space": {},
        "train": {},
        "epochs": 2,
        "seed": 0,
    }
    for key, value in attrs.items():
        proxy.set_user_attr(key, value)
    dists = {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": IntDistribution(4, 32, log=True),
    }
    for lr, batch, value in [(1e-3, 8, 0.31), (4e-3, 16, 0.22), (2e-2, 8, 0.27)]:
        proxy.add_trial(
            create_trial(params={"lr": lr, "batch_size": batch}, distributions=dists, value=value)
        )
    target = optuna.create_study(storage=store, study_name="target-K16", direction="minimize")
    groups = [
        {"role": "spectral", "lr_multiplier": 0.7071, "init_multiplier": 0.7071, "lr": 2.83e-3},
        {"role": "lifting", "lr_multiplier": 1.0, "init_multiplier": 1.0, "lr": 4e-3},
    ]
    plan = {
        "modes": 16,
        "base_modes": 4,
        "lr": 4e-3,
        "batch_size": 16,
        "beta1": 0.9,
        "beta2": 0.999,
        "groups": groups,
    }
    metrics = {"modes": 16, "val_loss": 0.18, "test_loss": 0.19, "test_l2": 0.05, "seconds": 12.0}
    for key, value in {
        "kind": "target",
        "proxy_study": "proxy-K4",
        "plan": plan,
        "metrics": metrics,
        "checkpoint": str(checkpoint),
    }.items():
        target.set_user_attr(key, value)
    target.add_trial(create_trial(value=0.05, intermediate_values={0: 0.4, 1: 0.18}))
    proxy.set_user_attr("target_study", "target-K16")


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> str:
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
            values=[1e-3, 1e-2, 30.0],
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
    finally:
        torch.set_num_threads(before)
    checkpoint = folder / "target-K16.pt"
    checkpoint.write_bytes(b"not really a checkpoint")
    add_proxy_and_target(url, checkpoint)
    formats = ("png",) if CHROMIUM else ()
    annotate_sweep(url, SWEEP, image_formats=formats)
    annotate_proxy_study(url, "proxy-K4", image_formats=())  # one Chromium start is enough
    return url


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=get_storage(url))


def test_notes_figures_and_artifacts_are_written(storage):
    study = load(storage, study_name(SWEEP, "mup", 4))
    note = get_note(study)
    assert note.startswith(f"## Landscape sweep `{SWEEP}`: µP, K = 4")
    assert "3/3 runs finished, 1 diverged" in note
    assert "µP: transfers" in note or "µP: drifts" in note
    keys = study._storage.get_study_system_attrs(study._study_id)
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

    proxy = load(storage, "proxy-K4")
    note = get_note(proxy)
    assert "| lr | 0.004 |" in note and "| batch_size | 16 |" in note
    assert "| spectral | 0.707100 | 0.707100 | 2.8300e-03 |" in note
    assert "### Target run `target-K16` (K = 16)" in note and "| test_l2 | 0.05 |" in note
    assert "the search cost" in note
    target = load(storage, "target-K16")
    assert get_note(target).startswith("## Target of proxy study `proxy-K4`")
    target_files = {a.filename for a in get_all_artifact_meta(target)}
    assert {"target-K16.pt", "target-K16_plan.json"} <= target_files


def test_annotating_again_replaces_artifacts(storage):
    anchor = load(storage, study_name(SWEEP, "mup", 2))
    count = len(get_all_artifact_meta(anchor))
    done = annotate_all(storage, image_formats=())
    assert done == {"proxy": ["proxy-K4"], "landscape": [SWEEP]}
    names = [a.filename for a in get_all_artifact_meta(anchor)]
    assert len(names) == len(set(names)) <= count  # replaced, not piled up


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
        assert ours | {"proxy-K4", "target-K16"} <= set(by_name)
        attrs = {a["key"]: a["value"] for a in by_name[study_name(SWEEP, "sp", 4)]["user_attrs"]}
        assert attrs["kind"] == "landscape" and attrs["sweep"] == SWEEP
        sid = by_name[study_name(SWEEP, "mup", 4)]["study_id"]
        detail = get_json(f"{base}/api/studies/{sid}")
        assert detail["note"]["body"].startswith(f"## Landscape sweep `{SWEEP}`")
        assert {"landscape", "optimum"} <= {g["id"] for g in detail["plotly_graph_objects"]}
        proxy_id = by_name["proxy-K4"]["study_id"]
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
