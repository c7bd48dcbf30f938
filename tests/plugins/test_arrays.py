"""The arrays data source: layouts, optional arrays, splits and errors that name the file."""

from __future__ import annotations

import re

import numpy as np
import pytest

import ldns_plugins.arrays as arrays_plugin
from ldns_framework import DataError
from ldns_framework.errors import SpecErrors
from ldns_registry import Registry
from ldns_plugins.arrays.source import ArraysConfig, ArraysSource


def test_reads_layout_lengths_covariates_and_splits(tmp_path):
    counts = np.random.default_rng(0).poisson(1.0, (4, 3, 6))  # trials, neurons, time
    path = tmp_path / "x.npz"
    np.savez(path, counts=counts, lengths=[6, 6, 5, 2], bin_width_s=0.02,
             **{"covariate/velocity": np.zeros((4, 6, 2)), "split/train": [0, 1, 2], "split/test": [3]})
    data = ArraysSource(ArraysConfig(path=str(path), layout="trials neurons time")).load()
    assert data.counts.shape == (4, 6, 3)
    np.testing.assert_array_equal(data.counts[2, 4], counts[2, :, 4])
    assert data.lengths.tolist() == [6, 6, 5, 2] and data.bin_width_s == 0.02
    assert data.covariates["velocity"].shape == (4, 6, 2)
    assert {k: v.tolist() for k, v in data.splits.items()} == {"train": [0, 1, 2], "test": [3]}


def test_random_splits_are_disjoint_and_seeded(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, counts=np.zeros((50, 2, 1), dtype=int))
    a = ArraysSource(ArraysConfig(path=str(path), split_seed=1)).load()
    b = ArraysSource(ArraysConfig(path=str(path), split_seed=1)).load()
    sizes = {k: len(v) for k, v in a.splits.items()}
    assert sizes == {"train": 35, "val": 5, "test": 10}
    assert np.array_equal(np.sort(np.concatenate(list(a.splits.values()))), np.arange(50))
    assert all(np.array_equal(a.splits[k], b.splits[k]) for k in a.splits)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="none.npz: file not found"):
        ArraysSource(ArraysConfig(path=str(tmp_path / "none.npz"))).load()
    path = tmp_path / "x.npz"
    np.savez(path, spikes=np.zeros((1, 1, 1)))
    with pytest.raises(DataError, match=r"x.npz: missing array 'counts'; found: spikes"):
        ArraysSource(ArraysConfig(path=str(path))).load()
    np.savez(path, counts=np.zeros((2, 3, 1)), lengths=[3, 4])
    with pytest.raises(DataError, match=r"x.npz: lengths: expected every length in \(0, 3\]"):
        ArraysSource(ArraysConfig(path=str(path))).load()
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match="junk.npz: expected a NumPy .npz archive, cannot open it"):
        ArraysSource(ArraysConfig(path=str(tmp_path / "junk.npz"))).load()
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DataError, match="empty.npz: expected a NumPy .npz archive"):
        ArraysSource(ArraysConfig(path=str(tmp_path / "empty.npz"))).load()


@pytest.mark.parametrize("counts, expected", [
    (np.full((2, 3, 1), 1e300), r"counts: expected counts of at most 2147483647 per bin \(int32\), found 1e\+300"),
    (np.full((2, 3, 1), 2**40), "counts: expected counts of at most 2147483647 per bin"),
    (np.ones((2, 3, 1), complex), "counts: expected integer spike counts .* got dtype complex128"),
    (np.ones((2, 3, 1), bool), "counts: expected integer spike counts .* got dtype bool"),
    (np.array([["a"]]), r"counts: expected a 3-d array"),
])
def test_mistyped_counts_name_the_file_and_the_expected(tmp_path, counts, expected):
    path = tmp_path / "x.npz"
    np.savez(path, counts=counts)
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: {expected}"):
        ArraysSource(ArraysConfig(path=str(path))).load()


def test_bin_width_in_the_file_must_be_one_number(tmp_path):
    path = tmp_path / "x.npz"
    for width, shown in ((np.array([0.01, 0.02]), r"shape \(2,\)"), (np.array("fast"), r"shape \(\) dtype <U4")):
        np.savez(path, counts=np.ones((2, 3, 1), int), bin_width_s=width)
        with pytest.raises(DataError, match=f"^{re.escape(str(path))}: bin_width_s: expected a single number, got {shown}"):
            ArraysSource(ArraysConfig(path=str(path))).load()
    np.savez(path, counts=np.ones((2, 3, 1), int), bin_width_s=-1.0)
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: bin_width_s: expected a finite positive number"):
        ArraysSource(ArraysConfig(path=str(path))).load()


def test_pickled_objects_are_refused_unread(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, counts=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: counts: expected a plain numeric or text array, got dtype object"):
        ArraysSource(ArraysConfig(path=str(path))).load()


def test_only_the_arrays_it_needs_are_read(tmp_path):
    """An unused member is never decompressed: here it is corrupt, and loading still succeeds."""
    path = tmp_path / "x.npz"
    np.savez(path, counts=np.ones((4, 3, 2), int), notes=np.zeros(1000))
    raw = bytearray(path.read_bytes())
    start = raw.index(b"notes.npy") + 200  # inside the member's data, past its local header
    raw[start:start + 100] = b"\xff" * 100
    path.write_bytes(bytes(raw))
    data = ArraysSource(ArraysConfig(path=str(path))).load()
    assert data.counts.shape == (4, 3, 2)


@pytest.mark.parametrize("lazy, expected", [
    (False, "declares shape \\(64, 256, 256\\) int32 \\(16.0 MiB\\), more than the 4.0 MiB left of the memory limit"),
    (None, ("is compressed, so it cannot be read in place for lazy loading; re-save the file with np.savez instead of "
            "np.savez_compressed, or raise the memory limit \\(memory_limit_mb or LDNS_MEMORY_LIMIT: the counts take "
            "16.0 MiB, over the limit of 4.0 MiB")),
])
def test_declared_size_is_checked_before_decompressing(tmp_path, monkeypatch, lazy, expected):
    """A small compressed file declaring more than the memory limit is refused unread: eagerly for
    its size, by default (lazy: null) because a compressed member cannot be mapped instead."""
    import tracemalloc

    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, counts=np.zeros((64, 256, 256), np.int32))  # 16 MiB of zeros, ~16 KiB on disk
    assert path.stat().st_size < 2**20
    monkeypatch.setenv("LDNS_MEMORY_LIMIT", "8M")  # memory budget: half of it, 4 MiB
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=f"^{re.escape(str(path))}: counts: {expected}"):
            ArraysSource(ArraysConfig(path=str(path), lazy=lazy)).load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_config_requires_a_path_and_valid_fractions():
    with pytest.raises(ValueError, match="path: expected the path of an .npz or .npy file"):
        ArraysConfig(path="")
    with pytest.raises(ValueError, match="summing to 1"):
        ArraysConfig(path="x.npz", split=(0.5, 0.5, 0.5))


def test_registration_declares_the_npz_and_npy_suffixes_and_a_required_path():
    registry = Registry()
    registry.register(arrays_plugin, "arrays")
    assert registry.data_type_for_file("/data/Session.NPZ") == "arrays"
    assert registry.data_type_for_file("/data/counts.npy") == "arrays"
    with pytest.raises(SpecErrors, match=r"^data.path: required option missing \(Path of the .npz file, or of a .npy "):
        registry.structure_component("data", {}, "arrays", "data")
