"""The speech-synthetic data source: variable lengths, padding, splits, seeds, length-free dynamics, the kit."""

from __future__ import annotations

import numpy as np
import pytest

from plugin_helpers import registered_classes
from ldns_framework.testing import check_data_source
from ldns_plugins.speech.dynamics import oscillator_latents, poisson_rates
from ldns_plugins.speech.source import SpeechSyntheticConfig, SpeechSyntheticSource

SMALL = {"n_trials": 60, "n_channels": 8, "min_length": 10, "max_length": 40}


def load(**options):
    return SpeechSyntheticSource(SpeechSyntheticConfig(**{**SMALL, **options})).load()


def test_registers_the_data_source() -> None:
    import ldns_plugins.speech as plugin

    [(kind, name, cls, _summary)] = registered_classes(plugin)
    assert (kind, name, cls) == ("data", "speech-synthetic", SpeechSyntheticSource)


def test_defaults_follow_the_human_data() -> None:
    cfg = SpeechSyntheticConfig()
    assert (cfg.n_channels, cfg.bin_width_s, cfg.min_length, cfg.max_length) == (128, 0.02, 50, 400)


def test_variable_lengths_are_stored_and_padding_is_empty() -> None:
    data = load()
    assert data.counts.shape == (60, 40, 8) and data.bin_width_s == 0.02
    assert data.lengths.min() >= 10 and data.lengths.max() <= 40 and np.unique(data.lengths).size > 10
    mask = data.mask()  # (trials, T)
    assert not data.counts[~mask].any()
    for name in ("latents_true", "rates_true"):
        assert not data.covariates[name][~mask].any() and data.covariates[name][mask].any()
    assert data.covariates["latents_true"].shape == (60, 40, 6)
    assert data.counts[mask].sum() > 0


def test_splits_cover_every_trial_once() -> None:
    data = load()
    assert {k: v.size for k, v in data.splits.items()} == {"train": 48, "val": 6, "test": 6}
    np.testing.assert_array_equal(np.sort(np.concatenate(list(data.splits.values()))), np.arange(60))


def test_the_seed_decides_everything() -> None:
    a, b, c = load(seed=3), load(seed=3), load(seed=4)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    assert not np.array_equal(a.lengths, c.lengths)


def test_dynamics_do_not_depend_on_the_trial_length() -> None:
    """The oscillators start from their stationary distribution: the latent variance is 1 at the
    first bin as at the hundredth, and channel mean rates equal their baselines at every bin."""
    rng = np.random.default_rng(0)
    latents = oscillator_latents(rng, 4000, 120, np.array([0.5, 2.0]), 0.02, 1.0)  # (n, T, 4)
    np.testing.assert_allclose(latents[:, 0].var(axis=0), 1.0, atol=0.08)
    np.testing.assert_allclose(latents[:, 100].var(axis=0), 1.0, atol=0.08)
    np.testing.assert_allclose(latents.mean(axis=(0, 1)), 0.0, atol=0.05)
    readout = np.eye(4)[:3]  # (N, L) unit rows
    rates = poisson_rates(latents, readout, np.array([0.2, 0.5, 1.0]), gain=0.5)  # (n, T, 3)
    for bins in (slice(0, 10), slice(100, 110)):
        np.testing.assert_allclose(rates[:, bins].mean(axis=(0, 1)), [0.2, 0.5, 1.0], rtol=0.05)


def test_latents_rotate_at_the_configured_frequency() -> None:
    """A 2 Hz oscillator at 20 ms bins turns 2 pi / 25 per bin: the lag-25 autocorrelation is
    positive (a full turn) and the lag-12 one negative (half a turn), both shrunk by rho^lag."""
    latents = oscillator_latents(np.random.default_rng(1), 2000, 40, np.array([2.0]), 0.02, 1.0)[..., 0]  # (n, T)
    lag = {k: float(np.mean(latents[:, :-k] * latents[:, k:])) for k in (12, 25)}
    assert lag[25] == pytest.approx(np.exp(-0.5), abs=0.06)
    assert lag[12] < -0.6


@pytest.mark.parametrize(("options", "message"), [
    ({"min_length": 50, "max_length": 40}, "min_length"),
    ({"max_frequency_hz": 30.0}, "Nyquist"),
    ({"min_frequency_hz": 5.0, "max_frequency_hz": 4.0}, "min_frequency_hz"),
    ({"split": (0.5, 0.2, 0.2)}, "summing to 1"),
])
def test_config_rejects_bad_values(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SpeechSyntheticConfig(**options)


def test_passes_the_data_source_kit() -> None:
    checks = [check for check in check_data_source(lambda: SpeechSyntheticSource(SpeechSyntheticConfig(**SMALL)))
              if check.name != "integration_trains_saves_reloads_and_samples"]
    assert len(checks) == 4
    for check in checks:
        check()
