"""Tests of the AR(1) generator plugin, written with ldns-framework's conformance kit.

``GeneratorContract`` turns every generator property of the kit into a test: declared samplers
run with their defaults, shapes follow the requested lengths, seeds reproduce, the loss is finite,
the closed-form ``fit`` sets the parameters, the weights round trip, and the integration check
trains, saves, reloads and samples a tiny spec with ``ar1`` swapped in. ``make_model`` takes no
``condition_kind``: the condition checks are listed as not applicable (it is unconditional).
"""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
import torch

from ldns_framework import LdnsError
from ldns_framework.testing import GeneratorContract, format_results
from ldns_ar1_generator.model import Ar1Config, Ar1Gaussian


class TestAr1(GeneratorContract):
    def make_model(self, latent_dim):
        return Ar1Gaussian(latent_dim=latent_dim)


class TestAr1NearUnitRoot(GeneratorContract):
    def make_model(self, latent_dim):
        return Ar1Gaussian(Ar1Config(max_phi=0.5, min_std=0.1), latent_dim=latent_dim)


def test_fit_recovers_the_process():
    truth = Ar1Gaussian(latent_dim=2)
    truth.mu.copy_(torch.tensor([1.0, -2.0]))
    truth.phi.copy_(torch.tensor([0.9, -0.3]))
    truth.std.copy_(torch.tensor([0.5, 1.0]))
    truth.first_std.copy_(truth.std / (1 - truth.phi.pow(2)).sqrt())
    latents = truth.sample(400, torch.full((400,), 60), generator=torch.Generator().manual_seed(0))
    model = Ar1Gaussian(latent_dim=2)
    figures = model.fit(latents, torch.ones(400, 60, dtype=torch.bool), None)
    assert figures["pairs"] == 400 * 59
    for name in ("mu", "phi", "std"):
        np.testing.assert_allclose(getattr(model, name).numpy(), getattr(truth, name).numpy(), atol=0.1)


def test_conditions_are_refused():
    with pytest.raises(LdnsError, match="unconditional"):
        Ar1Gaussian(latent_dim=2, condition_kind="vector", condition_dim=2)


def test_the_plugin_registers_and_passes_the_kit(isolated_registry, component_checks):
    model = isolated_registry.build("generator", {"type": "ar1"}, latent_dim=3)
    assert isinstance(model, Ar1Gaussian) and model.closed_form
    results = component_checks("generator", "ar1", max_phi=0.9)
    assert not any(r.failed for r in results), format_results(results)


def test_the_installed_distribution_declares_the_entry_point():
    try:
        dist = metadata.distribution("ldns-ar1-generator")
    except metadata.PackageNotFoundError:
        pytest.skip("ldns-ar1-generator is not installed (pip install docs/examples/ldns-ar1-generator)")
    names = {ep.name: ep.value for ep in dist.entry_points if ep.group == "ldns_framework"}
    assert names == {"ar1-generator": "ldns_ar1_generator"}
