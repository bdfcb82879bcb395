"""Problem registry: splits, seeds, caching, normalisation, configs, files, real solvers."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import pdes
from pdes import GaussianNormalizer, Problem, get_problem, list_problems, register_problem
from pdes.spec import ProblemSpec
from transfer_tune.errors import TransferTuneError

FINE = 64


class FakeSolver:
    """A cheap deterministic 'solver': the data at a resolution subsample one fine field."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []

    def generate(
        self,
        n_samples: int,
        resolution: int,
        seed: int,
        *,
        progress: bool = False,
        n_jobs: int = 1,
        scale: float = 1.0,
        offset: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append((n_samples, resolution, seed))
        rng = np.random.default_rng(seed)
        fine = scale * rng.standard_normal((n_samples, 1, FINE)) + offset
        x = fine[..., :: FINE // resolution]
        y = np.concatenate([x**2, 3.0 * x + 1.0], axis=1)  # 2 output channels
        return x.astype(np.float32), y.astype(np.float32)

    @staticmethod
    def check_resolution(resolution: int, **params: object) -> None:
        if resolution < 2 or FINE % resolution:
            raise TransferTuneError(f"resolution must divide {FINE}, got {resolution}")


SOLVER = FakeSolver()
register_problem(
    "fake1d",
    ProblemSpec(
        name="fake1d",
        dim=1,
        defaults={"scale": 1.0, "offset": 0.0},
        generate=SOLVER.generate,
        check_resolution=SOLVER.check_resolution,
        default_resolution=30,  # not allowed: the nearest allowed one (32) is used
    ),
    aliases=("fake-1d",),
    replace=True,
)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    SOLVER.calls.clear()


def small(tmp_path: Path, **kw: object) -> Problem:
    opts = {"n_train": 8, "n_val": 3, "n_test": 4, "cache_dir": tmp_path}
    opts.update(kw)
    return get_problem("fake1d", **opts)


# ---- attributes and names --------------------------------------------------------------------


def test_attributes_and_defaults(tmp_path: Path) -> None:
    p = get_problem("FAKE-1D", cache_dir=tmp_path)
    assert p.name == "fake1d" and p.dim == 1
    assert p.resolution == 32 and p.grid_shape == (32,)
    assert (p.n_train, p.n_val, p.n_test, p.seed) == (1000, 100, 200, 0)
    assert p.params == {"scale": 1.0, "offset": 0.0}
    assert p.cache_dir == tmp_path and p.n_jobs == -1 and p.progress is False
    assert SOLVER.calls == []  # nothing generated until data are needed
    p = small(tmp_path)
    assert (p.in_channels, p.out_channels) == (1, 2)
    assert "fake1d" in list_problems() and "file" in list_problems()
    assert {"burgers", "darcy", "navier_stokes"} <= set(list_problems())


def test_unknown_problem_and_options(tmp_path: Path) -> None:
    with pytest.raises(TransferTuneError) as err:
        get_problem("heat")
    assert "unknown problem 'heat'" in str(err.value)
    for name in ("burgers", "darcy", "navier_stokes", "file"):
        assert name in str(err.value)
    assert "ns -> navier_stokes" in str(err.value)
    with pytest.raises(TransferTuneError) as err:
        get_problem("fake1d", viscosity=0.1, cache_dir=tmp_path)
    assert "['viscosity']" in str(err.value)
    assert "offset, scale" in str(err.value) and "n_train" in str(err.value)
    with pytest.raises(TransferTuneError, match="resolution must divide 64"):
        get_problem("fake1d", resolution=48)
    with pytest.raises(TransferTuneError, match="scale=.*str"):
        get_problem("fake1d", scale="big")
    with pytest.raises(TransferTuneError, match="n_train must be a positive integer, got 0"):
        get_problem("fake1d", n_train=0)
    with pytest.raises(TransferTuneError, match="seed"):
        get_problem("fake1d", seed=-1)
    with pytest.raises(TransferTuneError, match="unknown split 'valid'"):
        small(tmp_path).dataset("valid")


def test_register_problem_guards_names() -> None:
    spec = ProblemSpec("x", 1, {}, SOLVER.generate, SOLVER.check_resolution, 32)
    with pytest.raises(TransferTuneError, match="already registered"):
        register_problem("fake1d", spec)
    with pytest.raises(TransferTuneError, match="already registered"):
        register_problem("other", spec, aliases=("ns",))
    with pytest.raises(TransferTuneError, match="reserved"):
        register_problem("file", spec)
    bad = ProblemSpec("y", 1, {"seed": 1}, SOLVER.generate, SOLVER.check_resolution, 32)
    with pytest.raises(TransferTuneError, match="clash"):
        register_problem("clashing", bad)


def test_params_are_coerced_to_the_default_type(tmp_path: Path) -> None:
    a = small(tmp_path, scale=2)
    b = small(tmp_path, scale=2.0)
    assert a.params["scale"] == 2.0 and isinstance(a.params["scale"], float)
    assert a.config() == b.config() and a.cache_files() == b.cache_files()


# ---- seeds and splits ------------------------------------------------------------------------


def test_same_seed_same_data_different_seed_different_data(tmp_path: Path) -> None:
    x1, y1 = small(tmp_path / "a").dataset("train", normalized=False)
    x2, y2 = small(tmp_path / "b").dataset("train", normalized=False)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert len(SOLVER.calls) == 2  # separate caches: really generated twice
    x3, _ = small(tmp_path / "a", seed=1).dataset("train", normalized=False)
    assert not torch.allclose(x1, x3)


def test_splits_are_independent_and_test_set_ignores_n_train(tmp_path: Path) -> None:
    p = small(tmp_path)
    seeds = {s: p.split_seed(s) for s in ("train", "val", "test")}
    assert len(set(seeds.values())) == 3
    tr, _ = p.dataset("train", normalized=False)
    te, _ = p.dataset("test", normalized=False)
    assert tr.shape == (8, 1, 32) and te.shape == (4, 1, 32)
    assert not torch.allclose(tr[:4], te)
    q = small(tmp_path, n_train=5)
    assert q.split_seed("test") == seeds["test"]
    assert q.cache_files()["test"] == p.cache_files()["test"]
    n_calls = len(SOLVER.calls)
    te_q, _ = q.dataset("test", normalized=False)
    assert torch.equal(te_q, te) and len(SOLVER.calls) == n_calls  # a cache hit


def test_cache_hit_across_problem_objects(tmp_path: Path) -> None:
    p = small(tmp_path)
    x, y = p.dataset("val", normalized=False)
    assert len(SOLVER.calls) == 1
    path = p.cache_files()["val"]
    mtime = path.stat().st_mtime_ns
    x_again, _ = p.dataset("val", normalized=False)
    assert x_again is x  # kept in memory
    q = small(tmp_path)
    xq, yq = q.dataset("val", normalized=False)
    assert len(SOLVER.calls) == 1 and path.stat().st_mtime_ns == mtime
    assert torch.equal(xq, x) and torch.equal(yq, y)
    assert "cached" in q.summary()


def test_empty_split(tmp_path: Path) -> None:
    p = small(tmp_path, n_val=0)
    x, y = p.dataset("val")
    assert x.shape == (0, 1, 32) and y.shape == (0, 2, 32)
    assert "val" not in p.cache_files()


# ---- normalisation ---------------------------------------------------------------------------


def test_normalizers_fitted_on_train_only(tmp_path: Path) -> None:
    p = small(tmp_path, scale=3.0, offset=2.0)
    x_tr, y_tr = p.dataset("train", normalized=False)
    x_te, y_te = p.dataset("test", normalized=False)
    a = x_tr.double().numpy()
    assert p.normalizers.x.mean[0] == pytest.approx(a.mean(), abs=1e-9)
    assert p.normalizers.x.std[0] == pytest.approx(a.std(), abs=1e-9)
    b = y_tr.double().numpy()
    for c in range(2):
        assert p.normalizers.y.mean[c] == pytest.approx(b[:, c].mean(), abs=1e-9)
        assert p.normalizers.y.std[c] == pytest.approx(b[:, c].std(), abs=1e-9)
    assert p.normalizers.x != GaussianNormalizer.fit(x_te)  # not fitted on the test split
    xn, yn = p.dataset("test")
    expected = (x_te.double() - a.mean()) / a.std()
    assert torch.allclose(xn.double(), expected, atol=1e-5)
    assert xn.dtype == torch.float32 and yn.shape == y_te.shape
    assert torch.allclose(p.decode_y(yn), y_te, atol=1e-5)
    assert torch.allclose(p.encode_x(x_te), xn)
    xn_tr, _ = p.dataset("train")
    assert abs(float(xn_tr.mean())) < 1e-5 and abs(float(xn_tr.std(unbiased=False)) - 1) < 1e-5
    assert p.dataset("test")[0] is xn  # computed once


# ---- configs and overrides -------------------------------------------------------------------


def test_config_round_trip(tmp_path: Path) -> None:
    p = small(tmp_path, seed=3, scale=0.5, resolution=16, n_jobs=2)
    cfg = p.config()
    assert json.loads(json.dumps(cfg)) == cfg
    assert cfg["name"] == "fake1d" and cfg["resolution"] == 16 and cfg["scale"] == 0.5
    q = get_problem(**cfg)
    assert q == p and q.config() == cfg
    assert torch.equal(q.dataset("train")[0], p.dataset("train")[0])
    r = pickle.loads(pickle.dumps(p))
    assert r == p


def test_with_overrides_keeps_normaliser_statistics(tmp_path: Path) -> None:
    p = small(tmp_path, resolution=16, scale=2.0)
    fine = p.with_overrides(resolution=64)
    assert fine.resolution == 64 and p.resolution == 16
    assert fine.normalizers == p.normalizers  # the statistics of the res-16 train split
    # Same seed: the finer test set holds the same functions, on a finer grid.
    xc, _ = p.dataset("test", normalized=False)
    xf, _ = fine.dataset("test", normalized=False)
    assert torch.equal(xf[..., ::4], xc)
    assert torch.allclose(fine.dataset("test")[0][..., ::4], p.dataset("test")[0])
    cfg = fine.config()
    assert cfg["normalizer_from"] == p.config()
    rebuilt = get_problem(**json.loads(json.dumps(cfg)))  # as read back from Optuna
    assert rebuilt == fine and rebuilt.normalizers == p.normalizers
    # Its own statistics would differ (fitted at 64 points).
    own = p.with_overrides(resolution=64, keep_normalizers=False)
    assert "normalizer_from" not in own.config()
    assert own.normalizers != p.normalizers
    # Overrides that do not touch the train split need no normalizer_from.
    more_test = p.with_overrides(n_test=6)
    assert "normalizer_from" not in more_test.config()
    assert more_test.normalizers == p.normalizers
    # Chains keep pointing at the original.
    assert fine.with_overrides(resolution=32).config()["normalizer_from"] == p.config()
    with pytest.raises(TransferTuneError, match="cannot change the problem name"):
        p.with_overrides(name="burgers")


# ---- user files ------------------------------------------------------------------------------


def test_file_problem_splits_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((12, 16, 16))
    u = rng.standard_normal((12, 16, 16))
    path = tmp_path / "pairs.npz"
    np.savez(path, a=a, u=u)
    p = get_problem("file", path=path, n_train=6, n_val=2, n_test=4, subsample=2)
    assert (p.dim, p.resolution, p.grid_shape) == (2, 8, (8, 8))
    assert (p.in_channels, p.out_channels) == (1, 1)
    x_tr, _ = p.dataset("train", normalized=False)
    x_va, _ = p.dataset("val", normalized=False)
    x_te, y_te = p.dataset("test", normalized=False)
    np.testing.assert_array_equal(x_tr[:, 0].numpy(), a[:6, ::2, ::2].astype(np.float32))
    np.testing.assert_array_equal(x_va[:, 0].numpy(), a[6:8, ::2, ::2].astype(np.float32))
    np.testing.assert_array_equal(y_te[:, 0].numpy(), u[8:, ::2, ::2].astype(np.float32))
    sub = a[:6, ::2, ::2].astype(np.float32).astype(np.float64)
    assert p.normalizers.x.mean[0] == pytest.approx(sub.mean(), abs=1e-9)
    cfg = p.config()
    assert cfg["path"] == str(path) and "resolution" not in cfg
    q = get_problem(**cfg)
    assert q == p and q.normalizers == p.normalizers
    full = p.with_overrides(subsample=1)
    assert full.resolution == 16 and full.normalizers == p.normalizers
    assert full.config()["normalizer_from"] == cfg
    assert "pairs.npz" in p.summary()


def test_file_problem_separate_test_file_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    train, test = tmp_path / "train.pt", tmp_path / "test.pt"
    torch.save(
        {
            "x": torch.from_numpy(rng.standard_normal((5, 8))).float(),
            "y": torch.from_numpy(rng.standard_normal((5, 8))).float(),
        },
        train,
    )
    xt = torch.from_numpy(rng.standard_normal((3, 8))).float()
    torch.save({"x": xt, "y": xt * 2}, test)
    p = get_problem("file", path=train, test_path=test, n_train=4, n_val=1, n_test=3)
    assert torch.equal(p.dataset("test", normalized=False)[0][:, 0], xt)
    with pytest.raises(TransferTuneError, match=r"holds 5 samples.*= 7 are needed"):
        get_problem("file", path=train, n_train=4, n_val=1, n_test=2).dataset("train")
    with pytest.raises(TransferTuneError, match="needs path="):
        get_problem("file")
    with pytest.raises(TransferTuneError, match="does not exist"):
        get_problem("file", path=tmp_path / "missing.npz")
    with pytest.raises(TransferTuneError, match="subsample=<stride>"):
        get_problem("file", path=train, resolution=4)
    with pytest.raises(TransferTuneError, match=r"unknown option\(s\) \['key'\].*x_key"):
        get_problem("file", path=train, key="x")


# ---- the real solvers (tiny sizes) -----------------------------------------------------------


def _real(name: str) -> None:
    pytest.importorskip(f"pdes.{name}")


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("burgers", {"resolution": 64}),
        ("darcy", {}),
        ("navier_stokes", {}),
    ],
)
def test_real_solvers_through_the_registry(tmp_path: Path, name: str, overrides: dict) -> None:
    _real(name)
    module = __import__(f"pdes.{name}", fromlist=["DEFAULTS"])
    tiny = dict(getattr(module, "TINY", {}))  # optional cheap settings from the solver
    tiny.update(overrides)
    p = get_problem(name, n_train=3, n_val=1, n_test=2, cache_dir=tmp_path, **tiny)
    assert p.dim == module.DIM
    assert set(module.DEFAULTS) <= set(p.params)
    x, y = p.dataset("train", normalized=False)
    assert x.shape[0] == 3 and x.shape[2:] == p.grid_shape and y.shape[2:] == p.grid_shape
    assert x.dtype == torch.float32 and torch.isfinite(x).all() and torch.isfinite(y).all()
    q = get_problem(**p.config())
    assert torch.equal(q.dataset("train", normalized=False)[0], x)  # a cache hit, same data
    other = p.with_overrides(seed=1)
    assert not torch.equal(other.dataset("train", normalized=False)[0], x)


def test_real_super_resolution_holds_the_same_functions(tmp_path: Path) -> None:
    _real("burgers")
    p = get_problem("burgers", resolution=64, n_train=2, n_val=0, n_test=2, cache_dir=tmp_path)
    fine = p.with_overrides(resolution=128)
    xc, yc = p.dataset("test", normalized=False)
    xf, yf = fine.dataset("test", normalized=False)
    assert torch.equal(xf[..., ::2], xc) and torch.equal(yf[..., ::2], yc)
    assert fine.normalizers == p.normalizers


def test_real_aliases() -> None:
    _real("navier_stokes")
    assert get_problem("ns").name == "navier_stokes"
    assert get_problem("Navier-Stokes").name == "navier_stokes"
    assert pdes.get_problem("burgers").resolution == 1024
    assert get_problem("navier_stokes").resolution == 64
    _real("darcy")
    assert get_problem("darcy").resolution == 64


def test_a_generated_problem_s_fine_test_view(tmp_path):
    p = get_problem("burgers", resolution=64, n_fine=256, n_train=2, n_val=1, n_test=1,
                    cache_dir=tmp_path)  # fmt: skip
    assert p.fine_test_problem().resolution == 128  # twice the training grid by default
    assert p.fine_test_problem(256).resolution == 256
    # scored with the training grid's normalisers
    assert p.fine_test_problem().normalizers.state_dict() == p.normalizers.state_dict()
    top = get_problem("burgers", resolution=256, n_fine=256, cache_dir=tmp_path)
    assert top.fine_test_problem() is None  # the solver grid gives nothing finer
    with pytest.raises(TransferTuneError, match="n_fine"):
        top.fine_test_problem(512)
