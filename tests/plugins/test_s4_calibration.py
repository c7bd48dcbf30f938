"""Rate calibration of the s4-autoencoder's decoder (plugins/s4_autoencoder/calibration.py)."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from ldns_plugins.s4_autoencoder.calibration import calibration_trials, softplus_bias_shift
from ldns_plugins.s4_autoencoder.model import S4Autoencoder, S4AutoencoderConfig

N, T = 5, 32


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), offset=st.floats(-6.0, 3.0), scale=st.floats(0.01, 3.0),
       log_targets=st.lists(st.floats(-7.0, 1.5), min_size=1, max_size=6))
def test_bias_shift_matches_every_positive_target(seed, offset, scale, log_targets):
    generator = torch.Generator().manual_seed(seed)
    target = torch.tensor(log_targets).exp()  # (N,), 0.001 to 4.5 counts per bin
    logits = offset + scale * torch.randn(200, len(log_targets), generator=generator)  # (bins, N)
    shift = softplus_bias_shift(logits, target)
    torch.testing.assert_close(F.softplus(logits + shift).mean(0), target, rtol=1e-4, atol=0)


def test_silent_neurons_keep_their_bias():
    logits = torch.randn(100, 3)
    shift = softplus_bias_shift(logits, torch.tensor([0.5, 0.0, 0.2]))
    assert shift[1] == 0 and shift[0] != 0 and shift[2] != 0


@pytest.mark.parametrize(("n_trials", "per_trial", "limit", "expected"), [(10, 100, 10_000, 10), (10, 100, 450, 4),
                                                                          (10, 100, 50, 1), (1, 10, 5, 1)])
def test_calibration_trials_fit_the_limit_and_spread_evenly(n_trials, per_trial, limit, expected):
    trials = calibration_trials(n_trials, per_trial, limit)
    assert len(trials) == expected and trials.dtype == torch.int64
    assert trials[0] == 0 and (expected == 1 or trials[-1] == n_trials - 1)
    assert (trials.diff() > 0).all()


def trained_model(**options) -> S4Autoencoder:
    torch.manual_seed(0)
    config = S4AutoencoderConfig(**{"hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 16,
                                    "calibrate_rates": True, **options})
    model = S4Autoencoder(config, n_neurons=N)
    with torch.no_grad():
        model.decoder_out.bias += 0.7  # an autoencoder biased high
    return model


class Rows:
    """Counts read by trial index, as the runner's lazily read rows are (not a tensor)."""

    def __init__(self, counts: torch.Tensor) -> None:
        self.counts = counts

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return self.counts[index]


def test_calibrate_makes_the_mean_rates_the_mean_counts_on_valid_bins():
    model = trained_model()
    counts = torch.poisson(torch.full((6, T, N), 0.4) * torch.linspace(0.5, 2.0, N))  # (B, T, N)
    mask = torch.arange(T)[None, :] < torch.tensor([32, 20, 32, 9, 32, 25])[:, None]  # (B, T)
    counts[~mask] = 50.0  # padding must not count
    figures = model.calibrate(Rows(counts), mask)
    assert figures["trials"] == 6 and figures["rate_ratio_before"] > 1.5 and figures["largest_bias_shift"] > 0.5
    assert model.training  # left as it was found
    model.eval()
    with torch.no_grad():
        rates = model.decode(model.encode(counts, mask), mask)[mask]  # (valid bins, N)
    np.testing.assert_allclose(rates.mean(0).numpy(), counts[mask].mean(0).numpy(), rtol=1e-4)


def test_calibration_is_off_by_default():
    assert not S4AutoencoderConfig().calibrate_rates


def test_calibration_can_be_turned_off():
    model = trained_model(calibrate_rates=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.calibrate(torch.ones(2, T, N), torch.ones(2, T, dtype=torch.bool)) == {}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
