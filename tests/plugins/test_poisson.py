"""The poisson observation model: exact pmf, masking, sampling."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from ldns_plugins.poisson.model import PoissonConfig, PoissonObservation


@st.composite
def counts_rates_mask(draw):
    b, t, n = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    counts = draw(hnp.arrays(np.int64, (b, t, n), elements=st.integers(0, 15)))
    rates = draw(hnp.arrays(np.float64, (b, t, n), elements=st.floats(1e-3, 20.0)))
    lengths = draw(hnp.arrays(np.int64, (b,), elements=st.integers(1, t)))
    return counts, rates, np.arange(t)[None, :] < lengths[:, None]


@settings(max_examples=100, deadline=None)
@given(counts_rates_mask())
def test_log_prob_is_the_exact_pmf_summed_over_valid_bins(case):
    counts, rates, mask = case
    expected = (stats.poisson.logpmf(counts, rates) * mask[..., None]).sum(axis=(1, 2))
    got = PoissonObservation().log_prob(torch.tensor(counts, dtype=torch.float64), torch.tensor(rates), torch.tensor(mask))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(counts_rates_mask(), st.integers(0, 2**32 - 1))
def test_elements_are_the_exact_pmf_of_scored_entries_and_zero_elsewhere(case, seed):
    counts, rates, _ = case
    scored = np.random.default_rng(seed).random(counts.shape) < 0.5  # (B, T, N)
    got = PoissonObservation().log_prob_elements(torch.tensor(counts, dtype=torch.float64), torch.tensor(rates),
                                                 torch.tensor(scored))
    np.testing.assert_allclose(got.numpy(), np.where(scored, stats.poisson.logpmf(counts, rates), 0.0),
                               rtol=1e-9, atol=1e-9)


def test_nothing_to_fit_and_trains_the_encoder_itself():
    assert not PoissonObservation.needs_fitting and PoissonObservation().is_fitted
    assert PoissonObservation().encoder_observation() is None


def test_padded_bins_contribute_nothing_and_are_sampled_as_zero():
    model = PoissonObservation()
    rates = torch.full((2, 5, 3), 2.0)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    counts = model.sample(rates, mask, generator=torch.Generator().manual_seed(0))
    assert counts[1, 2:].abs().sum() == 0
    garbage = counts.clone()
    garbage[1, 2:] = 99
    assert torch.equal(model.log_prob(garbage, rates, mask), model.log_prob(counts, rates, mask))


def test_sample_means_track_rates_and_seed_reproduces():
    model = PoissonObservation()
    rates = torch.linspace(0.05, 4.0, 8).repeat(4000, 1, 1)  # (4000, 1, 8)
    mask = torch.ones(4000, 1, dtype=torch.bool)
    draws = model.sample(rates, mask, generator=torch.Generator().manual_seed(1))
    assert torch.equal(draws, draws.round()) and draws.min() >= 0
    se = (rates[0, 0] / 4000).sqrt()
    assert ((draws.mean(dim=(0, 1)) - rates[0, 0]).abs() < 5 * se).all()
    again = model.sample(rates, mask, generator=torch.Generator().manual_seed(1))
    assert torch.equal(draws, again)


def test_zero_rates_are_clamped_in_log_prob():
    model = PoissonObservation(PoissonConfig(min_rate=1e-6))
    value = model.log_prob(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), torch.ones(1, 1, dtype=torch.bool))
    assert torch.isfinite(value).all() and value.item() == torch.tensor(-1e-6).item()
