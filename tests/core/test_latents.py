"""Latent normalisation: statistics over valid training bins only, exact round trip, optional clamp."""

from __future__ import annotations

import numpy as np
import pytest

from ldns_framework import LdnsError
from ldns_framework.latents import LatentStats


def test_statistics_ignore_padding_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    latents = rng.normal(3.0, 2.0, (50, 20, 4))
    mask = np.ones((50, 20), dtype=bool)
    mask[:, 15:] = False
    latents[~mask] = 1e6  # garbage in padding must not move the statistics
    stats = LatentStats.from_latents(latents, mask, clamp=None)
    valid = latents[mask]
    np.testing.assert_allclose(stats.mean, valid.mean(axis=0))
    np.testing.assert_allclose(stats.std, valid.std(axis=0))
    z = stats.normalise(latents[mask])
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(stats.unnormalise(z), latents[mask])
    stats.save(tmp_path / "s.json")
    again = LatentStats.load(tmp_path / "s.json")
    np.testing.assert_allclose(again.mean, stats.mean, rtol=1e-6)
    assert again.clamp is None


def test_clamp_and_constant_channels():
    latents = np.zeros((4, 5, 2))
    latents[:, :, 0] = np.arange(5)
    stats = LatentStats.from_latents(latents, np.ones((4, 5), dtype=bool), clamp=1.0)
    assert stats.std[1] == 1.0  # a constant channel is centred, not divided by zero
    z = stats.normalise(latents)
    assert z.max() == 1.0 and z.min() == -1.0


def test_missing_statistics_are_a_clear_error(tmp_path):
    with pytest.raises(LdnsError, match="latent statistics not found"):
        LatentStats.load(tmp_path / "latent_stats.json")
