"""Tests of the negative-binomial plugin, written with ldns-framework's conformance kit.

``ObservationModelContract`` turns every property of the kit into a test of the model that
``make_model`` returns; the ``isolated_registry`` and ``observation_checks`` fixtures come from
ldns-framework's pytest plugin (loaded automatically once ldns-framework is installed) and see
only this plugin (named by ``ldns_plugins`` in pyproject.toml's pytest options).
"""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
import torch
from scipy import stats

from ldns_framework.testing import KitSettings, ObservationModelContract, format_results
from ldns_negative_binomial.model import NegativeBinomialConfig, NegativeBinomialObservation


# -- the conformance kit, three configurations ------------------------------------------------------

class TestGlobalDispersion(ObservationModelContract):
    def make_model(self):
        return NegativeBinomialObservation()


class TestPerNeuronDispersion(ObservationModelContract):
    """Needs fitting (is_fitted is False): the kit fits it on synthetic data first."""

    def make_model(self):
        return NegativeBinomialObservation(NegativeBinomialConfig(dispersion="per_neuron"))


class TestHeavyTails(ObservationModelContract):
    """theta = 0.5 puts visible mass above 30 spikes: the pmf grid must reach further."""

    kit_settings = KitSettings(max_count=60)

    def make_model(self):
        return NegativeBinomialObservation(NegativeBinomialConfig(concentration=0.5, fit_iterations=0))


# -- the model's own properties -------------------------------------------------------------------

def test_log_prob_is_the_negative_binomial_pmf():
    theta = 1.7
    model = NegativeBinomialObservation(NegativeBinomialConfig(concentration=theta))
    generator = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 12, (3, 5, 4), generator=generator).double()
    rates = torch.rand(3, 5, 4, generator=generator, dtype=torch.float64) * 4 + 0.01
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    expected = stats.nbinom.logpmf(counts.numpy(), theta, theta / (theta + rates.numpy()))
    expected = (expected * mask.numpy()[..., None]).sum(axis=(1, 2))
    np.testing.assert_allclose(model.log_prob(counts, rates, mask).detach().numpy(), expected, rtol=1e-5)


def test_elements_are_each_entrys_pmf_with_its_own_neurons_concentration():
    """Scoring a subset of entries (the encoder's coordinated dropout) keeps the neuron axis, so
    each entry is scored with its own neuron's theta; unscored entries are exactly 0."""
    theta = torch.tensor([0.5, 2.0, 10.0], dtype=torch.float64)
    model = NegativeBinomialObservation(NegativeBinomialConfig(dispersion="per_neuron"), n_neurons=3).double()
    with torch.no_grad():
        model.log_concentration.copy_(theta.log())
    generator = torch.Generator().manual_seed(3)
    counts = torch.randint(0, 9, (2, 6, 3), generator=generator).double()
    rates = torch.rand(2, 6, 3, generator=generator, dtype=torch.float64) * 3 + 0.05
    scored = torch.rand(2, 6, 3, generator=generator) < 0.4
    expected = stats.nbinom.logpmf(counts.numpy(), theta.numpy(), (theta / (theta + rates)).numpy())
    got = model.log_prob_elements(counts, rates, scored).detach().numpy()
    np.testing.assert_allclose(got, np.where(scored.numpy(), expected, 0.0), rtol=1e-9, atol=1e-12)


def test_a_per_neuron_model_trains_the_s4_autoencoder_with_coordinated_dropout():
    from ldns_framework import Batch
    from ldns_plugins.s4_autoencoder.model import S4Autoencoder, S4AutoencoderConfig

    torch.manual_seed(0)
    encoder = S4Autoencoder(S4AutoencoderConfig(hidden=16, latent_dim=4, blocks=1, state_size=8, dropout_prob=0.3),
                            n_neurons=5)
    model = NegativeBinomialObservation(NegativeBinomialConfig(dispersion="per_neuron"), n_neurons=5)
    batch = Batch(torch.poisson(torch.full((4, 32, 5), 0.8)), torch.ones(4, 32, dtype=torch.bool))
    losses = encoder.training_loss(batch, model)
    losses["loss"].backward()
    assert torch.isfinite(losses["recon"]) and losses["recon"] > 0
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


def test_samples_have_the_negative_binomial_mean_and_variance():
    model = NegativeBinomialObservation(NegativeBinomialConfig(concentration=2.0))
    rates = torch.tensor([0.2, 1.0, 5.0]).expand(20000, 1, 3)
    draws = model.sample(rates, torch.ones(20000, 1, dtype=torch.bool), generator=torch.Generator().manual_seed(0))
    r = rates[0, 0].double()
    np.testing.assert_allclose(draws.double().mean(dim=(0, 1)), r, rtol=0.05)
    np.testing.assert_allclose(draws.double().var(dim=(0, 1)), r + r**2 / 2.0, rtol=0.08)


def test_fit_recovers_per_neuron_dispersion():
    theta = torch.tensor([0.5, 2.0, 10.0])
    generator = torch.Generator().manual_seed(1)
    rates = torch.rand(400, 50, 3, generator=generator) * 2 + 0.2
    truth = NegativeBinomialObservation(NegativeBinomialConfig(dispersion="per_neuron"), n_neurons=3)
    with torch.no_grad():
        truth.log_concentration.copy_(theta.log())
    mask = torch.ones(400, 50, dtype=torch.bool)
    counts = truth.sample(rates, mask, generator=generator)
    model = NegativeBinomialObservation(NegativeBinomialConfig(dispersion="per_neuron", fit_iterations=400))
    figures = model.fit(counts, rates, mask)
    assert model.n_neurons == 3 and figures["nll"] > 0
    np.testing.assert_allclose(model.concentration.detach().numpy(), theta.numpy(), rtol=0.2)


def test_a_per_neuron_model_rebuilt_from_its_config_loads_its_weights(tmp_path):
    from ldns_framework.checkpoint import load_module_weights, save_tensors

    fitted = NegativeBinomialObservation(NegativeBinomialConfig(dispersion="per_neuron"), n_neurons=4)
    save_tensors(tmp_path / "weights.safetensors", fitted.state_dict())
    rebuilt = NegativeBinomialObservation(NegativeBinomialConfig(dispersion="per_neuron"))
    assert not rebuilt.is_fitted and NegativeBinomialObservation.needs_fitting
    load_module_weights(rebuilt, tmp_path / "weights.safetensors")  # the loader of a run directory
    assert rebuilt.n_neurons == 4 and rebuilt.is_fitted


# -- through the registry, as a spec would use it ----------------------------------------------------

def test_the_plugin_registers_its_model(isolated_registry):
    model = isolated_registry.build("observation", {"type": "negative-binomial", "dispersion": "per_neuron"})
    assert isinstance(model, NegativeBinomialObservation) and model.per_neuron
    [entry] = list(isolated_registry.catalogue)
    assert (entry.kind, entry.name) == ("observation", "negative-binomial")


def test_bad_options_are_reported_with_their_path(isolated_registry):
    from ldns_framework import SpecError
    from ldns_framework.errors import SpecErrors

    with pytest.raises((SpecError, SpecErrors), match=r"observation\.dispersion.*did you mean 'per_neuron'"):
        isolated_registry.build("observation", {"type": "negative-binomial", "dispersion": "per-neuron"})


def test_the_registered_model_passes_the_kit(observation_checks):
    results = observation_checks("negative-binomial", dispersion="per_neuron")
    # Every check passes, except those that do not apply to a factorised per-neuron model.
    assert all(r.passed or (r.skipped and "not applicable" in r.message) for r in results), format_results(results)


def test_the_installed_distribution_declares_the_entry_point():
    try:
        dist = metadata.distribution("ldns-negative-binomial")
    except metadata.PackageNotFoundError:
        pytest.skip("ldns-negative-binomial is not installed (pip install docs/examples/ldns-negative-binomial)")
    names = {ep.name: ep.value for ep in dist.entry_points if ep.group == "ldns_framework"}
    assert names == {"negative-binomial": "ldns_negative_binomial"}
