"""The dashboard: notes, figures and artifacts on our studies; the server; a real browser.

The storage is made by the real workflow (a landscape sweep, ``tune`` and ``transfer`` on tiny
problems, once per module); the tests check what is written against the stored studies and
the µP formula, never against numbers they wrote themselves. The browser check drives a
headless Chromium at a 1400 px window over the DevTools protocol on a pipe (no extra package)
and measures every rendered figure against its card.
"""

from __future__ import annotations

import base64
import json
import math
import os
import select
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

from tests.sizes import TINY_BURGERS
from tests.synthetic import operator_task
from transfer_tune.analysis.coord_check import coord_check
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
from transfer_tune.report import (
    annotate_all,
    annotate_proxy_study,
    annotate_sweep,
    read_proxy_history,
    serve,
    tuning_history_figure,
)
from transfer_tune.report.dashboard import dashboard_url
from transfer_tune.report.notes import sweep_note, with_workflow_link
from transfer_tune.report.readers import read_target, study_ids
from transfer_tune.search.storage import artifact_dir, get_storage
from transfer_tune.search.studies import open_study
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
        coord = coord_check(  # where `transfer-tune coord-check` writes it, next to the storage
            "burgers",
            [4, 8],
            width=8,
            n_layers=2,
            steps=1,
            seeds=[0],
            batch_size=8,
            problem_overrides=TINY_BURGERS,
        )
        (folder / "coord_check" / "tiny").mkdir(parents=True)
        (folder / "coord_check" / "tiny" / "coord_check.json").write_text(
            json.dumps(coord.to_dict())
        )
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
    assert note.startswith(f"## Proxy study `{PROXY}`: the whole workflow")
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

    # the workflow in a few lines, at the top: tuned, transferred (multipliers), reached
    head = note.split("### Proxy search")[0]
    ids = study_ids(storage)
    assert "1. **Tuned** lr [0.0001, 0.3] log, batch_size {8, 16}" in head
    assert f"best val rel-L2 (normalised) {fmt(best.value)} (trial {best.number})" in head
    assert f"beta2 {fmt(1 - best.params['one_minus_beta2'])}" in head
    assert (
        f"2. **Transferred** to K = 16 with µP (K_base = 4, d = 1): spectral: init x{factor:.4f}"
        in head
    )
    assert f"lr x{factor:.4f} (lr {lr * factor:.4g})" in head
    assert "lifting, pointwise, projection, bias: x1" in head
    link = f"[`{TARGET}`](/dashboard/studies/{ids[TARGET]})"
    assert (
        f"3. **Target** {link} reached test rel-L2 (physical units) {fmt(metrics['test_l2'])}"
        in head
    )
    assert f"- **Landscape** sweep `{SWEEP}` (problem `tensors`)" in head
    assert "- **Coord check** (`" in head and "verdict (spectral layers" in head
    proxy_keys = system_attr_keys(storage, PROXY)
    for graph in ("tuning-history", "target-curve", "plan", f"landscape-{SWEEP}", "coord-check"):
        assert any(k.startswith(f"dashboard:plot_data:{graph}:") for k in proxy_keys), graph
    proxy_files = {a.filename for a in get_all_artifact_meta(proxy)}
    assert {f"{PROXY}_history.html", f"{PROXY}_coord_check.html"} <= proxy_files

    # the target's note: its plan and result first, then the way back to the proxy, by name
    target_note = get_note(target)
    back = f"[`{PROXY}`](/dashboard/studies/{ids[PROXY]})"
    assert target_note.startswith(f"## Target run `{TARGET}` (K = 16), transferred from ")
    assert back in target_note.splitlines()[0] and back in target_note.strip().splitlines()[-1]
    assert target_note.index("µP rescale table") < target_note.index("| test_l2 |")
    assert row in target_note
    target_files = {a.filename for a in get_all_artifact_meta(target)}
    assert {f"{TARGET}.pt", f"{TARGET}_plan.json", f"{TARGET}_curve.html"} <= target_files
    target_keys = system_attr_keys(storage, TARGET)
    for graph in ("tuning-history", "target-curve", "plan"):
        assert any(k.startswith(f"dashboard:plot_data:{graph}:") for k in target_keys), graph
    sweep_study = load(storage, study_name(SWEEP, "sp", 4))
    assert f"proxy study {back}" in get_note(sweep_study)  # landscapes link back too


def test_a_sweep_note_written_before_its_proxy_gets_the_link_back():
    note = "## Landscape sweep `s`: µP, K = 4\n\nbody\n\n### All curves\n"
    linked = with_workflow_link(note, ["p"], {"p": 7})
    assert linked.splitlines()[:5] == [
        "## Landscape sweep `s`: µP, K = 4",
        "",
        "The whole workflow (tuning, transfer, target): proxy study [`p`](/dashboard/studies/7).",
        "",
        "body",
    ]
    assert with_workflow_link(linked, ["p"], {"p": 7}) == linked  # idempotent
    moved = with_workflow_link(linked, ["q"], None)  # replaced, not piled up
    assert moved.count("The whole workflow") == 1 and "proxy study `q`." in moved


def test_every_study_names_its_objective_in_its_units(storage):
    assert load(storage, PROXY).metric_names == ["val rel-L2 (normalised)"]
    assert load(storage, TARGET).metric_names == ["test rel-L2 (physical units)"]
    for kind in ("mup", "sp"):  # a sweep on tensors: their units, whatever they are
        assert load(storage, study_name(SWEEP, kind, 2)).metric_names == [
            "final test rel-L2 (as given)"
        ]


def test_the_target_trial_records_what_it_ran(storage):
    target, proxy = load(storage, TARGET), load(storage, PROXY)
    plan = target.user_attrs["plan"]
    (trial,) = target.trials
    values = {k: plan[k] for k in ("lr", "batch_size", "beta1", "beta2")}
    assert trial.params == values
    assert trial.params["beta2"] == 1 - proxy.best_params["one_minus_beta2"]
    dist = trial.distributions  # the proxy's ranges (beta2 as itself)
    assert dist["lr"] == proxy.best_trial.distributions["lr"]
    assert dist["batch_size"].choices == (8, 16)
    assert (dist["beta2"].low, dist["beta2"].high) == (0.9, 0.9999)
    for group in plan["groups"]:
        assert trial.user_attrs[f"lr_{group['role']}"] == group["lr"]
    history = read_proxy_history(storage, PROXY)
    assert history.target.params == values and history.target.metric_name == target.metric_names[0]
    assert history.target.curve == trial.intermediate_values


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
    opened = open_study(PROXY, get_storage(storage))  # a storage object works as a URL does
    assert opened.user_attrs == proxy.user_attrs
    assert [(t.number, t.value) for t in opened.trials] == [
        (t.number, t.value) for t in proxy.trials
    ]


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


#: Every plotly figure of the page: its SVG's size against its box and its card.
MEASURE_PLOTS = """JSON.stringify({
  text: document.body.textContent,
  plots: [...document.querySelectorAll('.js-plotly-plot')].map(p => {
    const svg = p.querySelector('svg.main-svg');
    const s = svg ? svg.getBoundingClientRect() : {width: 0, height: 0, right: 0};
    const box = p.getBoundingClientRect(), card = p.parentElement.getBoundingClientRect();
    return {id: p.id, title: (p.querySelector('.gtitle') || {}).textContent || '',
            rendered: !!svg, svg_width: s.width, svg_height: s.height, svg_right: s.right,
            box_width: box.width, box_height: box.height, card_right: card.right};
  })})"""


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (no extra package).

    ``--remote-debugging-pipe`` makes Chromium read JSON commands on fd 3 and answer on fd 4,
    each message ending in a NUL byte; one page is opened and driven through its session.
    """

    def __init__(self, chromium: str, folder: Path, width: int, height: int) -> None:
        to_chrome, self._chrome_in = os.pipe()
        self._chrome_out, from_chrome = os.pipe()

        def child() -> None:  # the pipe ends Chromium expects, on fds 3 and 4
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=folder)
        self.proc = subprocess.Popen(
            [
                chromium,
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
                f"--window-size={width},{height}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=child,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._id = b"", 0
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            self.session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self._chrome_in)
        os.close(self._chrome_out)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and wait (60 s at most) for its answer."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._chrome_in, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 60
        while True:
            while b"\0" not in self._buffer:
                ready, _, _ = select.select([self._chrome_out], [], [], 1.0)
                assert time.monotonic() < deadline, f"Chromium did not answer {method}"
                if ready:
                    chunk = os.read(self._chrome_out, 1 << 16)
                    assert chunk, "Chromium closed its DevTools pipe"
                    self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def evaluate(self, expression: str):
        result = self.send(
            "Runtime.evaluate", self.session, expression=expression, returnByValue=True
        )
        return result["result"].get("value")

    def open(self, url: str, graphs: set[str], timeout: float = 60) -> dict:
        """Load ``url`` and wait until the figures ``graphs`` (graph ids) have rendered."""
        self.send("Page.navigate", self.session, url=url)
        deadline = time.monotonic() + timeout
        while True:
            page = json.loads(self.evaluate(MEASURE_PLOTS) or '{"text": "", "plots": []}')
            drawn = {
                p["id"].removeprefix("user-defined-plot:") for p in page["plots"] if p["rendered"]
            }
            if graphs <= drawn and "plot-history" in drawn:
                time.sleep(0.5)  # let plotly finish its layout pass, then measure again
                return json.loads(self.evaluate(MEASURE_PLOTS))
            assert time.monotonic() < deadline, f"{url}: figures {graphs - drawn} never drew"
            time.sleep(0.25)

    def screenshot(self, path: Path) -> Path:
        data = self.send(
            "Page.captureScreenshot", self.session, format="png", captureBeyondViewport=True
        )["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@pytest.mark.browser
@pytest.mark.subprocess
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
        with Browser(CHROMIUM, tmp_path, width=1400, height=900) as browser:
            pages = {}
            for name, graphs in (
                (study_name(SWEEP, "mup", 4), {"landscape", "optimum"}),
                (
                    PROXY,
                    {"tuning-history", "target-curve", "plan", "coord-check", f"landscape-{SWEEP}"},
                ),
                (TARGET, {"tuning-history", "target-curve", "plan"}),
            ):
                page = browser.open(f"{base}/dashboard/studies/{by_name[name]['study_id']}", graphs)
                assert name in page["text"], name  # the study page of our study
                pages[name] = page
                for plot in page["plots"]:  # every figure, ours and the dashboard's: all visible
                    where = f"{name}: figure {plot['id']} ({plot['title']!r})"
                    assert plot["svg_width"] <= plot["box_width"] + 1, f"{where} is clipped"
                    assert plot["svg_right"] <= plot["card_right"] + 1, f"{where} overflows"
                    assert plot["svg_height"] <= plot["box_height"] + 1, f"{where} overflows"
            sweep_page = pages[study_name(SWEEP, "mup", 4)]
            assert "final test loss (rel. L2) vs lr" in sweep_page["text"]  # our figure, rendered
            assert "final test rel-L2 (as given)" in sweep_page["text"]  # the metric, named
            proxy_page, target_page = pages[PROXY], pages[TARGET]
            assert "val rel-L2 (normalised)" in proxy_page["text"]
            assert "Objective 0" not in proxy_page["text"] + target_page["text"]
            assert "test rel-L2 (physical units)" in target_page["text"]
            (trial,) = load(storage, TARGET).trials  # its Best Trial card lists what it ran
            params = ", ".join(f"{k}: {v}" for k, v in trial.params.items())
            assert f"Params = [{params}]" in target_page["text"]
            assert "Params = []" not in target_page["text"]
            card = {p["id"]: p for p in proxy_page["plots"]}["user-defined-plot:tuning-history"]
            print(f"custom-figure card at a 1400 px window: {card['box_width']:.0f} px wide")
            pixels = png_pixels(browser.screenshot(tmp_path / "proxy.png"))[..., :3].reshape(-1, 3)
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
