"""The spectral-norm diagnostic: flat under µP, growing like sqrt(ln K) under SP (width 1)."""

import math

import numpy as np
import pytest
import torch

from transfer_tune.analysis.diagnostics import (
    spectral_norm_check,
    spectral_norms,
    update_spectral_norms,
)
from transfer_tune.core.hparams import HParams
from transfer_tune.core.model import FNO
from transfer_tune.core.parametrization import get_parametrization
from transfer_tune.errors import TransferTuneError

MODES = (4, 16, 64, 256)


def mean_norms(kind: str, width: int, seeds: int) -> np.ndarray:
    par = get_parametrization(kind, base_modes=4)
    out = []
    for k in MODES:
        values = []
        for seed in range(seeds):
            model = FNO(dim=1, modes=k, width=width, n_layers=2)
            par.initialize(model, generator=torch.Generator().manual_seed(seed))
            values += spectral_norms(model)
        out.append(np.mean(values))
    return np.asarray(out) / out[0]


def test_width_one_matches_the_derivation():
    mup = mean_norms("mup", width=1, seeds=30)
    sp = mean_norms("sp", width=1, seeds=30)
    print("width 1, K =", MODES, "µP ratio", mup.round(3), "SP ratio", sp.round(3))
    assert np.all(np.abs(mup - 1) < 0.2), mup
    assert sp[-1] > 1.5, sp
    assert np.all(np.diff(sp) > 0), sp


def test_width_32_sp_is_nearly_flat_and_mup_is_sp_times_its_multiplier():
    """At width 32 the largest singular value of each mode's R concentrates, so the maximum over
    modes hardly grows with K under SP (12 seeds: at most +9 % from K = 4 to 256, against the
    width-1 law's x2); µP's init is SP's times its multiplier sqrt(ln 4 / ln K) exactly, so
    at width 32 µP's norm falls with K (to about 0.53 at K = 256): the correction is the
    width-1 one. The band (1, 1.15] is the stated one; the product is exact (same seed)."""
    mup = mean_norms("mup", width=32, seeds=1)
    sp = mean_norms("sp", width=32, seeds=1)
    assert np.all(sp[1:] > 1.0) and np.all(sp < 1.15), sp
    multiplier = get_parametrization("mup", base_modes=4).spectral_multiplier
    assert np.allclose(mup, sp * [multiplier(k, 1) for k in MODES], rtol=1e-5), (mup, sp)
    assert mup[-1] < 0.6, mup  # not flat: under the width-1 value 0.2 away from 1


def test_update_norm_is_measured_on_a_copy_and_bounded_by_one_adam_step():
    # ΔR after Adam steps: the copy is trained, the model itself is untouched
    model = FNO(dim=1, modes=8, width=4, n_layers=2)
    par = get_parametrization("mup", base_modes=4)
    par.initialize(model, generator=torch.Generator().manual_seed(0))
    before = [w.detach().clone() for w in model.parameters()]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 1, 32, generator=g), torch.randn(4, 1, 32, generator=g)
    delta = update_spectral_norms(model, par, x, y, HParams(lr=1e-3), steps=1)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # one Adam step moves every real entry by lr_R (bias-corrected m/sqrt(v) = sign(g)),
    # so for a 4x4 complex matrix the largest singular value is at most 4 * sqrt(2) * lr_R
    lr_r = par.learning_rates(8, 1, 1e-3)["spectral"]
    assert all(0 < d <= 4 * np.sqrt(2) * lr_r * (1 + 1e-4) for d in delta), delta


def test_spectral_norm_check_records():
    records = spectral_norm_check(modes=(4, 16, 256), widths=(1, 8), seeds=range(12))
    assert len(records) == 2 * 2 * 3
    ratio = {(r["width"], r["parametrization"], r["modes"]): r["ratio"] for r in records}
    assert ratio[(1, "sp", 256)] > 1.5  # grows like sqrt(ln K) where the max over modes rules
    assert abs(ratio[(1, "mup", 256)] - 1) < 0.2  # µP stays flat
    assert all(ratio[(w, p, 4)] == 1.0 for w in (1, 8) for p in ("mup", "sp"))  # K_base
    mup = get_parametrization("mup", base_modes=4)
    for r in records:
        assert abs(r["sqrt_log_ratio"] - math.sqrt(math.log(r["modes"]) / math.log(4))) < 1e-12
        assert abs(r["sqrt_log_ratio"] * mup.spectral_multiplier(r["modes"], 1) - 1) < 1e-12
    with pytest.raises(TransferTuneError, match="at least one seed"):
        spectral_norm_check(modes=(4, 8), seeds=())
