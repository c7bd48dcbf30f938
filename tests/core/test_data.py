"""SpikeData accepts every valid array and rejects every invalid one with a message naming the field."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ldns_framework import DataError, SpikeData

shapes = st.tuples(st.integers(1, 5), st.integers(1, 8), st.integers(1, 4))


@st.composite
def valid_spike_data(draw):
    trials, time, neurons = draw(shapes)
    counts = draw(hnp.arrays(np.int64, (trials, time, neurons), elements=st.integers(0, 20)))
    lengths = draw(hnp.arrays(np.int64, (trials,), elements=st.integers(1, time)))
    order = draw(st.permutations(range(trials)))
    cut = draw(st.integers(0, trials))
    splits = {"train": np.array(order[:cut], dtype=int), "test": np.array(order[cut:], dtype=int)}
    covariates = {"angle": np.zeros((trials, 2)), "velocity": np.zeros((trials, time, 2))}
    return dict(counts=counts, lengths=lengths, splits=splits, covariates=covariates)


@given(valid_spike_data())
def test_valid_data_is_accepted_and_kept(kwargs):
    data = SpikeData(**kwargs)
    np.testing.assert_array_equal(data.counts, kwargs["counts"])
    np.testing.assert_array_equal(data.lengths, kwargs["lengths"])
    assert data.mask().sum() == kwargs["lengths"].sum()
    assert sum(len(v) for v in data.splits.values()) == data.n_trials


@st.composite
def invalid_spike_data(draw):
    """One valid dataset with exactly one field broken; returns (kwargs, field named in the error)."""
    kwargs = draw(valid_spike_data())
    trials, time, neurons = kwargs["counts"].shape
    breakage = draw(st.sampled_from(["negative", "nan", "fraction", "ndim", "lengths_zero", "lengths_long",
                                     "lengths_shape", "cov_trials", "cov_time", "cov_ndim", "split_range",
                                     "split_overlap", "bin_width", "neuron_ids"]))
    counts = kwargs["counts"].astype(float)
    if breakage == "negative":
        counts.flat[draw(st.integers(0, counts.size - 1))] = -1
        return {**kwargs, "counts": counts}, "counts"
    if breakage == "nan":
        counts.flat[draw(st.integers(0, counts.size - 1))] = draw(st.sampled_from([np.nan, np.inf]))
        return {**kwargs, "counts": counts}, "counts"
    if breakage == "fraction":
        counts.flat[draw(st.integers(0, counts.size - 1))] = 0.5
        return {**kwargs, "counts": counts}, "counts"
    if breakage == "ndim":
        return {**kwargs, "counts": counts[0]}, "counts"
    if breakage == "lengths_zero":
        lengths = kwargs["lengths"].copy()
        lengths[draw(st.integers(0, trials - 1))] = 0
        return {**kwargs, "lengths": lengths}, "lengths"
    if breakage == "lengths_long":
        lengths = kwargs["lengths"].copy()
        lengths[draw(st.integers(0, trials - 1))] = time + 1
        return {**kwargs, "lengths": lengths}, "lengths"
    if breakage == "lengths_shape":
        return {**kwargs, "lengths": np.ones(trials + 1, dtype=int)}, "lengths"
    if breakage == "cov_trials":
        return {**kwargs, "covariates": {"angle": np.zeros((trials + 1, 2))}}, "covariates['angle']"
    if breakage == "cov_time":
        return {**kwargs, "covariates": {"velocity": np.zeros((trials, time + 1, 2))}}, "covariates['velocity']"
    if breakage == "cov_ndim":
        return {**kwargs, "covariates": {"angle": np.zeros(trials)}}, "covariates['angle']"
    if breakage == "split_range":
        return {**kwargs, "splits": {"train": np.array([trials])}}, "splits['train']"
    if breakage == "split_overlap":
        return {**kwargs, "splits": {"train": np.array([0]), "test": np.array([0])}}, "splits['test']"
    if breakage == "bin_width":
        return {**kwargs, "bin_width_s": draw(st.sampled_from([0.0, -0.01, float("nan")]))}, "bin_width_s"
    return {**kwargs, "neuron_ids": [str(i) for i in range(neurons + 1)]}, "neuron_ids"


@settings(max_examples=200)
@given(invalid_spike_data())
def test_invalid_data_is_rejected_naming_the_field(case):
    kwargs, field = case
    with pytest.raises(DataError) as info:
        SpikeData(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_from_array_converts_layout_explicitly():
    counts = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # trials, neurons, time
    data = SpikeData.from_array(counts, layout="trials neurons time")
    assert data.counts.shape == (2, 4, 3)
    assert data.counts[1, 2, 0] == counts[1, 0, 2]
    with pytest.raises(DataError, match="layout"):
        SpikeData.from_array(counts, layout="trials neurons bins")


def test_float_integer_counts_become_integers_and_splits_default_to_train():
    data = SpikeData(np.ones((2, 3, 1)))
    assert np.issubdtype(data.counts.dtype, np.integer)
    np.testing.assert_array_equal(data.splits["train"], [0, 1])


def test_subset_split_and_summary():
    counts = np.zeros((4, 5, 2), dtype=int)
    counts[:, :, 0] = 1
    data = SpikeData(counts, lengths=[5, 5, 4, 2], splits={"train": [0, 1, 2], "test": [3]},
                     covariates={"angle": np.arange(8.0).reshape(4, 2)}, bin_width_s=0.01)
    test = data.split("test")
    assert test.n_trials == 1 and test.lengths.tolist() == [2]
    assert test.covariates["angle"].tolist() == [[6.0, 7.0]]
    summary = data.summary()
    assert summary["splits"] == {"train": 3, "test": 1}
    assert summary["mean_count_per_bin"] == pytest.approx(0.5)  # padding is not counted
    assert summary["mean_rate_hz"] == pytest.approx(50.0)
    assert summary["lengths"] == {"min": 2, "max": 5, "mean": 4.0}
    with pytest.raises(DataError, match="no split named 'val'"):
        data.split("val")


@pytest.mark.parametrize("kwargs, field, message", [
    (dict(counts=np.full((2, 3, 1), 1e300)), "counts", r"at most 2147483647 per bin \(int32\), found 1e\+300"),
    (dict(counts=np.full((2, 3, 1), 2**40)), "counts", "at most 2147483647 per bin"),
    (dict(counts=np.full((2, 3, 1), 2**63, np.uint64)), "counts", "found 9223372036854775808"),
    (dict(counts=np.ones((2, 3, 1), complex)), "counts", "got dtype complex128"),
    (dict(counts=np.ones((2, 3, 1), bool)), "counts", "got dtype bool"),
    (dict(counts=np.ones((2, 3, 1), object)), "counts", "got dtype object"),
    (dict(counts=np.full((2, 3, 1), "1")), "counts", "got dtype <U1"),
    (dict(counts=[[[1]], [[1, 2]]]), "counts", "expected an array, got list"),
    (dict(lengths=np.array([1e300, 1])), "lengths", r"expected every length in \(0, 3\], found range \[1.0, 1e\+300\]"),
    (dict(lengths=np.array([1, 2j])), "lengths", "got dtype complex128"),
    (dict(lengths=np.array([1.5, 2])), "lengths", "fractional"),
    (dict(bin_width_s=[0.01, 0.02]), "bin_width_s", "expected a finite positive number of seconds, got list"),
    (dict(bin_width_s="5ms"), "bin_width_s", "got str"),
    (dict(bin_width_s=True), "bin_width_s", "got True"),
    (dict(bin_width_s=float("inf")), "bin_width_s", "got inf"),
    (dict(neuron_ids=4), "neuron_ids", "expected a sequence of 1 ids, got int"),
    (dict(covariates={"x": np.full((2, 2), np.nan)}), "covariates['x']", "expected finite values"),
    (dict(covariates={"x": np.ones((2, 2), complex)}), "covariates['x']", "expected a real numeric array"),
    (dict(splits={"train": np.array([True, False])}), "splits['train']", "integer trial indices"),
])
def test_out_of_range_and_mistyped_values_name_the_field_and_the_expected(kwargs, field, message):
    kwargs = {"counts": np.ones((2, 3, 1), int), **kwargs}
    with pytest.raises(DataError, match=message) as info:
        SpikeData(**kwargs)
    assert info.value.field == field


def test_integer_dtypes_are_kept_or_made_int32_and_a_0d_bin_width_is_a_number():
    assert SpikeData(np.ones((1, 2, 1), np.int64)).counts.dtype == np.int64
    assert SpikeData(np.ones((1, 2, 1), np.uint8)).counts.dtype == np.int32
    assert SpikeData(np.ones((1, 2, 1), ">i4")).counts.dtype == np.int32  # native byte order for torch
    assert SpikeData(np.ones((1, 2, 1), int), bin_width_s=np.array(0.02)).bin_width_s == 0.02


def test_validation_allocates_no_temporary_the_size_of_the_data():
    """Integer counts are checked by reductions over blocks; whole-valued floats become int32
    (that copy is the result) with only block-sized temporaries beside it."""
    import tracemalloc

    ints = np.ones((64, 256, 256), np.int32)  # 16 MiB
    floats = np.ones((32, 256, 256), np.float64)  # 16 MiB -> 8 MiB of int32
    tracemalloc.start()
    try:
        SpikeData(ints, lengths=np.full(64, 256)).summary()
        ints_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        SpikeData(floats)
        floats_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ints_peak < 2**20 + 64 * 256 * 8 * 2  # summary's (trials, time) sums and mask
    assert floats_peak < floats.size * 4 + 10 * 2**20
