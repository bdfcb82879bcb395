"""Spectrum diagnostic: energy beyond K in the FNO's modes convention, and the default problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdes import burgers, get_problem
from pdes.spectrum import SpectrumReport, SpectrumRow, added_energy, energy_beyond, spectrum_table
from transfer_tune.errors import TransferTuneError


def wave_1d(n: int, k: int, phase: float = 0.3) -> np.ndarray:
    x = np.arange(n) / n
    return np.cos(2 * np.pi * k * x + phase)[None, None]


def wave_2d(n: int, k0: int, k1: int) -> np.ndarray:
    x = np.arange(n) / n
    return np.cos(2 * np.pi * (k0 * x[:, None] + k1 * x[None, :]) + 0.7)[None, None]


def test_pure_mode_1d():
    u = wave_1d(64, 5)
    assert energy_beyond(u, 4) == pytest.approx(1.0)
    assert energy_beyond(u, 5) == pytest.approx(1.0)  # K = 5 keeps 0..4
    assert energy_beyond(u, 6) == pytest.approx(0.0, abs=1e-12)
    # the mean is not energy, and mixtures split as the squared amplitudes
    mix = 7.0 + wave_1d(64, 2) + 2.0 * wave_1d(64, 9)
    assert energy_beyond(mix, 4) == pytest.approx(4.0 / 5.0)
    assert energy_beyond(mix, 10) == pytest.approx(0.0, abs=1e-12)
    # torch tensors and several samples/channels are averaged by energy
    both = np.concatenate([wave_1d(64, 2), 3.0 * wave_1d(64, 9)])
    assert energy_beyond(torch.from_numpy(both), 4) == pytest.approx(9.0 / 10.0)


def test_nyquist_and_odd_grids():
    n = 16
    nyq = np.cos(np.pi * np.arange(n))[None, None]  # k = n/2, the last rfft column
    assert energy_beyond(nyq, n // 2) == pytest.approx(1.0)
    assert energy_beyond(nyq, n // 2 + 1) == pytest.approx(0.0, abs=1e-12)
    assert energy_beyond(wave_1d(15, 7), 7) == pytest.approx(1.0)
    assert energy_beyond(wave_1d(15, 7), 8) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("sign", [1, -1])
def test_both_signs_kept_on_non_last_axes(sign):
    n = 32
    # mode (k0, k1) = (sign * 3, 2): the first axis keeps |k0| < K, the last keeps k1 < K
    u = wave_2d(n, sign * 3, 2)
    assert energy_beyond(u, 3) == pytest.approx(1.0)  # |k0| = 3 is not < 3
    assert energy_beyond(u, 4) == pytest.approx(0.0, abs=1e-12)
    # the last axis decides alone when it is the large one
    v = wave_2d(n, sign * 1, 6)
    assert energy_beyond(v, 6) == pytest.approx(1.0)
    assert energy_beyond(v, 7) == pytest.approx(0.0, abs=1e-12)
    # Nyquist row of a non-last axis: |k| = n/2
    w = np.cos(np.pi * np.arange(n))[None, None, :, None] * np.ones((1, 1, n, n))
    assert energy_beyond(w, n // 2) == pytest.approx(1.0)
    assert energy_beyond(w, n // 2 + 1) == pytest.approx(0.0, abs=1e-12)


def test_spectrum_table_and_added_energy_on_arrays():
    x = wave_1d(64, 1) + 0.1 * wave_1d(64, 20)
    y = wave_1d(64, 3) + 0.5 * wave_1d(64, 10)
    report = spectrum_table((x, y), modes=(2, 4, 16, 32), proxy_modes=4, target_modes=16)
    assert isinstance(report, SpectrumReport)
    assert [r.modes for r in report.rows] == [2, 4, 16, 32]
    recs = report.to_records()
    assert recs[1] == {
        "modes": 4,
        "input_beyond": pytest.approx(0.01 / 1.01),
        "target_beyond": pytest.approx(0.25 / 1.25),
    }
    assert recs[-1]["input_beyond"] == pytest.approx(0.0, abs=1e-12)
    text = report.text()
    assert "<- proxy" in text and "<- target" in text and "input" in text
    assert added_energy((x, y), 4, 16) == pytest.approx(0.2)
    assert added_energy((x, y), 16, 32) == pytest.approx(0.0, abs=1e-12)
    assert added_energy((x, y), 16, 4) == 0.0
    with pytest.raises(TransferTuneError, match=r"\(N, C, \*grid\)"):
        energy_beyond(np.zeros(8), 2)
    with pytest.raises(TransferTuneError, match="modes"):
        energy_beyond(x, 0)


#: A size of its own: 128 points resolve the energy tail the test compares; no val/test sets.
SMALL = {"resolution": 128, "n_train": 8, "n_val": 0, "n_test": 0, "n_jobs": 1}


def test_default_burgers_rewards_k_and_the_original_viscosity_does_not(tmp_path):
    """Target energy beyond K = 4 and 16, measured on these 8 samples at 128 points: 1.5e-1 and
    1.5e-2 at the default nu = 1e-3, 2e-14 and 4e-16 at nu = 0.1 (1000 samples at 1024 points:
    1.4e-1 and 1.6e-2 vs 4e-13 and 7e-16)."""
    assert burgers.DEFAULTS["nu"] <= 5e-3
    low = get_problem("burgers", cache_dir=tmp_path, **SMALL)
    high = get_problem("burgers", cache_dir=tmp_path, nu=0.1, dt=0.01, cfl=1e9, **SMALL)
    rep = spectrum_table(low, modes=(4, 8, 16, 32))
    beyond = {r.modes: r.target_beyond for r in rep.rows}
    assert beyond[4] > 3e-2  # measured 1.5e-1
    assert beyond[16] > 3e-3
    assert added_energy(low, 4, 32) > 1e-2
    assert energy_beyond(high.dataset("train", normalized=False)[1], 4) < 1e-9
    assert added_energy(high, 4, 32) < 1e-9
    # the input is the same random field either way
    assert rep.rows[0].input_beyond == pytest.approx(
        spectrum_table(high, modes=(4,)).rows[0].input_beyond
    )


def test_spectrum_figure_draws_both_lines_and_the_k_pair():
    from transfer_tune.report import spectrum_figure

    rows = (SpectrumRow(2, 0.5, 0.3), SpectrumRow(4, 0.1, 0.2), SpectrumRow(16, 1e-3, 0.0))
    report = SpectrumReport(rows=rows, name="x", grid=(64,), proxy_modes=4, target_modes=16)
    fig = spectrum_figure(report)
    assert [t.name for t in fig.data] == ["input", "target"]
    assert list(fig.data[1].x) == [2, 4, 16]
    assert list(fig.data[0].y) == [0.5, 0.1, 1e-3]
    assert fig.data[1].y[-1] is None  # zero energy is a gap on the log axis
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert {s.x0 for s in fig.layout.shapes} == {4, 16}
