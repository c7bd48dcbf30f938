"""The kit's hypothesis strategies produce valid spike data in the (trials, time, neurons) layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ldns_framework import SpikeData
from ldns_framework.testing import strategies as lst


@settings(max_examples=40, deadline=None)
@given(lst.spike_counts(max_count=4), lst.rates(n_trials=2, n_time=3, n_neurons=st.integers(1, 2), min_rate=0.1,
                                                max_rate=2.0))
def test_counts_and_rates(counts, rates):
    assert counts.ndim == 3 and counts.dtype == np.int64 and counts.min() >= 0 and counts.max() <= 4
    assert rates.shape[:2] == (2, 3) and ((0.1 <= rates) & (rates <= 2.0)).all()


@settings(max_examples=40, deadline=None)
@given(lst.masks(n_trials=3, n_time=st.integers(1, 9), full_trial=True), lst.lengths(4, 6))
def test_masks_are_right_padded_with_a_valid_bin(mask, lengths):
    assert mask.dtype == bool and mask.shape[0] == 3 and mask[0].all()
    valid = mask.sum(axis=1)
    assert (valid >= 1).all()
    np.testing.assert_array_equal(mask, np.arange(mask.shape[1])[None, :] < valid[:, None])
    assert lengths.shape == (4,) and lengths.min() >= 1 and lengths.max() <= 6


@settings(max_examples=30, deadline=None)
@given(lst.conditions("vector", n_trials=3, dim=2), lst.conditions("sequence", n_trials=2, n_time=5),
       lst.conditions("angle", n_trials=4))
def test_conditions(vector, sequence, angle):
    assert vector.shape == (3, 2) and vector.dtype == np.float32 and np.abs(vector).max() <= 3
    assert sequence.shape[:2] == (2, 5) and sequence.ndim == 3
    np.testing.assert_allclose(np.linalg.norm(angle, axis=1), 1.0, rtol=1e-5)


def test_unknown_condition_kind():
    with pytest.raises(ValueError, match="sequence"):
        lst.conditions("matrix")


@settings(max_examples=30, deadline=None)
@given(lst.spike_data(n_neurons=3))
def test_spike_data_is_valid(data):
    assert isinstance(data, SpikeData) and data.n_neurons == 3
    assert (data.counts * ~data.mask()[..., None] == 0).all()


@settings(max_examples=30, deadline=None)
@given(lst.observation_batches(n_neurons=2, max_count=3))
def test_observation_batches(batch):
    counts, rates, mask = batch
    assert counts.dtype == rates.dtype == torch.float32 and mask.dtype == torch.bool
    assert counts.shape == rates.shape and counts.shape[2] == 2 and mask.shape == counts.shape[:2]
    assert (rates > 0).all() and (counts[~mask] == 0).all()
