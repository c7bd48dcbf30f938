"""Tests of the GRU encoder plugin, written with ldns-framework's conformance kit.

``EncoderContract`` turns every encoder property of the kit into a test of what ``make_model``
returns (shapes, positive rates, a finite differentiable loss through the observation model,
causality and padding, weights round trip) and ends with the integration check: a tiny spec with
this encoder swapped in trains, saves, reloads from its run directory and samples.
"""

from __future__ import annotations

from importlib import metadata

import pytest
import torch

from ldns_framework import Batch
from ldns_framework.testing import EncoderContract, format_results
from ldns_framework.testing.reference import KitCountModel
from ldns_gru_encoder.model import GruAutoencoder, GruAutoencoderConfig


class TestGruAutoencoder(EncoderContract):
    def make_model(self, n_neurons):
        return GruAutoencoder(GruAutoencoderConfig(hidden=16, latent_dim=3), n_neurons=n_neurons)


class TestTwoLayersNoDropout(EncoderContract):
    def make_model(self, n_neurons):
        return GruAutoencoder(GruAutoencoderConfig(hidden=8, latent_dim=2, layers=2, dropout_prob=0.0),
                              n_neurons=n_neurons)


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    rates = torch.nn.functional.softplus(torch.randn(1, 1, 6) + torch.sin(torch.arange(30.0) / 4)[None, :, None])
    counts = torch.poisson(rates.expand(32, 30, 6))  # (B, T, N)
    batch = Batch(counts, torch.ones(32, 30, dtype=torch.bool))
    model = GruAutoencoder(GruAutoencoderConfig(hidden=16, latent_dim=3, dropout_prob=0.0), n_neurons=6)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.training_loss(batch, KitCountModel())["loss"].item()
    for _ in range(40):
        optimiser.zero_grad()
        model.training_loss(batch, KitCountModel())["loss"].backward()
        optimiser.step()
    assert model.training_loss(batch, KitCountModel())["loss"].item() < first - 0.05


def test_coordinated_dropout_scores_only_hidden_entries():
    class Recorder(KitCountModel):
        def log_prob_elements(self, counts, rates, scored):
            self.scored = scored
            return super().log_prob_elements(counts, rates, scored)

    model = GruAutoencoder(GruAutoencoderConfig(hidden=8, latent_dim=2, dropout_prob=0.5), n_neurons=4)
    mask = torch.arange(10)[None, :] < torch.tensor([10, 6])[:, None]
    recorder = Recorder()
    model.train().training_loss(Batch(torch.ones(2, 10, 4), mask), recorder)
    assert not recorder.scored[~mask].any()
    assert 0.3 < recorder.scored[mask].float().mean() < 0.7


def test_the_plugin_registers_and_passes_the_kit(isolated_registry, component_checks):
    encoder = isolated_registry.build("encoder", {"type": "gru", "hidden": 8}, n_neurons=5)
    assert isinstance(encoder, GruAutoencoder) and encoder.is_causal
    results = component_checks("encoder", "gru", hidden=8, latent_dim=2)
    assert not any(r.failed for r in results), format_results(results)


def test_the_installed_distribution_declares_the_entry_point():
    try:
        dist = metadata.distribution("ldns-gru-encoder")
    except metadata.PackageNotFoundError:
        pytest.skip("ldns-gru-encoder is not installed (pip install docs/examples/ldns-gru-encoder)")
    names = {ep.name: ep.value for ep in dist.entry_points if ep.group == "ldns_framework"}
    assert names == {"gru-encoder": "ldns_gru_encoder"}
