"""Dataset cache: directory precedence, keys, hits, atomic writes, corruption handling."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from pdes import cache
from pdes.cache import (
    CacheCorruptionWarning,
    CacheWriteWarning,
    array_checksum,
    cache_path,
    canonical_json,
    config_key,
    load_or_generate,
    resolve_cache_dir,
)
from transfer_tune.errors import TransferTuneError

CONFIG = {
    "problem": "toy",
    "split": "train",
    "resolution": 16,
    "n": 3,
    "seed": 7,
    "params": {"nu": 0.1, "grid": [4, 4]},
}


class Counting:
    """A generator that counts its calls and returns deterministic data."""

    def __init__(self, seed: int = 0) -> None:
        self.calls = 0
        self.seed = seed

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((3, 1, 16))
        return x, np.cumsum(x, axis=-1)  # float64 on purpose: stored as float32


# ---- cache directory -------------------------------------------------------------------------


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRANSFER_TUNE_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "transfer-tune"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_cache_dir() == tmp_path / "xdg" / "transfer-tune"
    monkeypatch.setenv("TRANSFER_TUNE_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir() == tmp_path / "env"
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_cache_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    monkeypatch.setenv("TRANSFER_TUNE_CACHE", "")  # empty counts as unset
    assert resolve_cache_dir() == tmp_path / "xdg" / "transfer-tune"


def test_env_var_directs_load_or_generate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSFER_TUNE_CACHE", str(tmp_path / "env"))
    _, _, path, hit = load_or_generate(CONFIG, Counting())
    assert not hit and path.parent == tmp_path / "env" and path.exists()
    _, _, path2, _ = load_or_generate(CONFIG, Counting(), cache_dir=tmp_path / "arg")
    assert path2.parent == tmp_path / "arg"


# ---- keys ------------------------------------------------------------------------------------


def test_key_is_canonical_and_sensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    reordered = dict(reversed(list(CONFIG.items())))
    reordered["params"] = {"grid": (4, 4), "nu": 0.1}  # tuple == list, order irrelevant
    assert config_key(reordered) == config_key(CONFIG)
    assert canonical_json(reordered) == canonical_json(CONFIG)
    assert len(config_key(CONFIG)) == 64
    for field, value in (("seed", 8), ("n", 4), ("split", "test"), ("resolution", 32)):
        assert config_key({**CONFIG, field: value}) != config_key(CONFIG)
    assert config_key({**CONFIG, "params": {"nu": 0.2, "grid": [4, 4]}}) != config_key(CONFIG)
    key = config_key(CONFIG)
    monkeypatch.setattr(cache, "FORMAT_VERSION", cache.FORMAT_VERSION + 1)
    assert config_key(CONFIG) != key
    assert canonical_json({"a": np.float64(0.5), "b": np.int64(2)}) == '{"a":0.5,"b":2}'


def test_non_jsonable_config_is_rejected() -> None:
    with pytest.raises(TransferTuneError, match="not JSON-able"):
        canonical_json({"f": object()})
    with pytest.raises(TransferTuneError, match="not finite"):
        canonical_json({"nu": float("nan")})


def test_file_name_is_readable(tmp_path: Path) -> None:
    path = cache_path(CONFIG, tmp_path)
    assert path.name.startswith("toy-train-r16-n3-")
    assert path.name.endswith(config_key(CONFIG)[:16] + ".npz")


# ---- hits and misses -------------------------------------------------------------------------


def test_miss_then_hit_without_regeneration(tmp_path: Path) -> None:
    gen = Counting()
    x, y, path, hit = load_or_generate(CONFIG, gen, cache_dir=tmp_path)
    assert (hit, gen.calls) == (False, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32 and x.flags.c_contiguous
    ref_x, ref_y = Counting()()
    np.testing.assert_array_equal(x, ref_x.astype(np.float32))
    np.testing.assert_array_equal(y, ref_y.astype(np.float32))
    mtime = path.stat().st_mtime_ns
    x2, y2, path2, hit2 = load_or_generate(CONFIG, gen, cache_dir=tmp_path)
    assert (hit2, gen.calls, path2) == (True, 1, path)
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    # Another config is another file.
    _, _, path3, hit3 = load_or_generate({**CONFIG, "seed": 8}, Counting(1), cache_dir=tmp_path)
    assert not hit3 and path3 != path


def test_file_contents_and_sidecar(tmp_path: Path) -> None:
    x, y, path, _ = load_or_generate(CONFIG, Counting(), cache_dir=tmp_path)
    with np.load(path, allow_pickle=False) as f:
        assert json.loads(str(f["config_json"])) == json.loads(canonical_json(CONFIG))
        assert str(f["checksum"]) == array_checksum(x, y)
        assert int(f["format_version"]) == cache.FORMAT_VERSION
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["config"] == json.loads(canonical_json(CONFIG))
    assert side["x_shape"] == [3, 1, 16] and side["sha256_arrays"] == array_checksum(x, y)
    # No temporary files are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, path.with_suffix(".json").name]
    )


def test_generator_failure_writes_nothing(tmp_path: Path) -> None:
    def boom() -> tuple[np.ndarray, np.ndarray]:
        raise RuntimeError("solver crashed")

    with pytest.raises(RuntimeError, match="solver crashed"):
        load_or_generate(CONFIG, boom, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_data_are_refused(tmp_path: Path) -> None:
    def nan() -> tuple[np.ndarray, np.ndarray]:
        return np.full((1, 1, 4), np.nan), np.zeros((1, 1, 4))

    with pytest.raises(TransferTuneError, match="NaN or inf"):
        load_or_generate(CONFIG, nan, cache_dir=tmp_path)
    assert not cache_path(CONFIG, tmp_path).exists()


# ---- corruption ------------------------------------------------------------------------------


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"not an npz file at all")


def _tamper_arrays(path: Path) -> None:
    """A well-formed npz whose arrays no longer match the stored checksum."""
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    entries["x"] = entries["x"].copy()
    entries["x"][0, 0, 0] += 1.0
    np.savez(path, **entries)


def _other_config(path: Path) -> None:
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    entries["config_json"] = np.array(canonical_json({**CONFIG, "seed": 99}))
    np.savez(path, **entries)


@pytest.mark.parametrize(
    "damage", [_flip_middle, _truncate, _garbage, _tamper_arrays, _other_config]
)
def test_corruption_is_detected_warned_and_regenerated(tmp_path: Path, damage) -> None:
    gen = Counting()
    x, y, path, _ = load_or_generate(CONFIG, gen, cache_dir=tmp_path)
    damage(path)
    with pytest.warns(CacheCorruptionWarning, match="corrupted"):
        x2, y2, path2, hit = load_or_generate(CONFIG, gen, cache_dir=tmp_path)
    assert (hit, gen.calls, path2) == (False, 2, path)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    # The rewritten file is good again: a clean hit, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x3, _, _, hit3 = load_or_generate(CONFIG, gen, cache_dir=tmp_path)
    assert hit3 and gen.calls == 2
    np.testing.assert_array_equal(x3, x)


def test_unwritable_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    gen = Counting()
    with pytest.raises(TransferTuneError, match="TRANSFER_TUNE_CACHE"):
        load_or_generate(CONFIG, gen, cache_dir=blocker / "sub")
    assert gen.calls == 0  # checked before spending time on generation

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cache, "_write", fail)
    with pytest.warns(CacheWriteWarning, match="disk full"):
        x, _, path, hit = load_or_generate(CONFIG, gen, cache_dir=tmp_path / "ok")
    assert not hit and not path.exists() and x.shape == (3, 1, 16)


def test_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_replace = os.replace

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(cache.os, "replace", broken_replace)
    with pytest.warns(CacheWriteWarning):
        load_or_generate(CONFIG, Counting(), cache_dir=tmp_path)
    monkeypatch.setattr(cache.os, "replace", real_replace)
    assert list(tmp_path.iterdir()) == []
