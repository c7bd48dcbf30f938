"""The spike-history observation model (METHOD.md section 5): likelihood, sampler, fit, and the kit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ldns_framework import DataError, LdnsError
from ldns_framework.errors import SpecErrors
from ldns_framework.metrics.temporal import autocorr_rmse
from ldns_framework.structure import structure_config
from ldns_framework.testing import KitSettings, ObservationModelContract, parametrize_with_checks
from plugin_helpers import registered_classes
from ldns_plugins.lorenz.source import LorenzConfig, LorenzSource
from ldns_plugins.spike_history.glm import (
    SpikeHistory,
    SpikeHistoryConfig,
    SpikeHistoryFitConfig,
    chunk_size,
    drive_from_windows,
    history_drive,
    history_windows,
    log_poisson_tail,
)

QUIET = SpikeHistoryFitConfig(progress=False)


def model_with(weights, gain=1.0, bias=0.0, **config) -> SpikeHistory:
    """A model with given parameters: weights (N, H) -> SpikeHistory sized for N neurons."""
    weights = torch.as_tensor(weights, dtype=torch.float32)
    config = SpikeHistoryConfig(history=weights.shape[1], fit=QUIET, **config)
    model = SpikeHistory(config, n_neurons=weights.shape[0])
    with torch.no_grad():
        model.history_weights.copy_(weights)
        model.rate_gain.fill_(gain)
        model.bias.fill_(bias)
    return model


def refractory_bursting(h: int = 6) -> torch.Tensor:
    """Three neurons: refractory, bursting, mixed; (3, h)."""
    lag = torch.arange(h, dtype=torch.float32)
    return torch.stack([-2.0 * torch.exp(-lag / 2), 1.0 * torch.exp(-lag) - 0.5 * torch.exp(-lag / 4),
                        0.4 * torch.exp(-lag) - 1.0 * torch.exp(-lag / 3)])


# -- the conformance kit ---------------------------------------------------------------------------

@parametrize_with_checks([
    lambda: SpikeHistory(SpikeHistoryConfig(fit=QUIET)),  # fitted by the kit on synthetic data
    lambda: model_with(refractory_bursting()),
    lambda: model_with(-refractory_bursting().abs(), link="exp", max_spikes=None),  # uncapped: no excitation
    lambda: model_with(refractory_bursting(), gain=0.8, bias=-0.2, max_spikes=2),
    lambda: model_with(refractory_bursting(3), bernoulli=True),
], plugins=["ldns_plugins.poisson"])  # the model named by encoder_observation()
def test_spike_history_passes_the_conformance_kit(check):
    check()


class TestSpikeHistoryContract(ObservationModelContract):
    kit_settings = KitSettings(seed=1)
    plugins = ("ldns_plugins.poisson",)

    def make_model(self):
        return model_with(refractory_bursting(20), gain=0.9, bias=-0.1)


# -- the likelihood against a slow reference ---------------------------------------------------------

def reference_log_prob(model: SpikeHistory, counts, rates, mask, history=None) -> list[float]:
    """Bin by bin, neuron by neuron, in float64, straight from METHOD.md section 5."""
    w = model.history_weights.double().detach()
    a, b = model.rate_gain.double().detach(), model.bias.double().detach()
    n_trials, n_time, n_neurons = counts.shape
    h = w.shape[1]
    cap = model.cap
    out = []
    for trial in range(n_trials):
        past = [[0.0] * n_neurons for _ in range(h)]
        if history is not None:
            given = history[trial].double().tolist()[-h:]
            past = [[0.0] * n_neurons for _ in range(h - len(given))] + given
        total = 0.0
        for t in range(n_time):
            row = [float(counts[trial, t, n]) if mask[trial, t] else 0.0 for n in range(n_neurons)]
            if mask[trial, t]:
                for n in range(n_neurons):
                    drive = sum(w[n, k - 1].item() * past[-k][n] for k in range(1, h + 1))
                    eta = drive + a[n].item() * math.log(max(float(rates[trial, t, n]), model.config.min_rate)) + b[n].item()
                    lam = math.exp(min(eta, 20.0)) if model.config.link == "exp" else math.log1p(math.exp(eta))
                    x = int(row[n])
                    pmf = [math.exp(k * math.log(lam) - lam - math.lgamma(k + 1)) for k in range(max(x, cap or 0) + 1)]
                    if cap is None or x < cap:
                        total += math.log(pmf[x])
                    elif x == cap:
                        total += math.log(1.0 - sum(pmf[:cap]))
                    else:
                        total += -math.inf
            past.append(row)
        out.append(total)
    return out


@pytest.mark.parametrize("config", [
    {}, {"max_spikes": None}, {"max_spikes": 2}, {"bernoulli": True}, {"link": "exp"}, {"link": "exp", "max_spikes": 1},
])
def test_log_prob_matches_a_slow_reference_loop(config):
    torch.manual_seed(0)
    model = model_with(torch.randn(3, 4) * 0.6, gain=0.9, bias=0.1, **config)
    rates = torch.rand(4, 9, 3) * 2 + 0.02
    mask = torch.arange(9)[None, :] < torch.tensor([9, 6, 1, 4])[:, None]
    counts = model.sample(rates, mask, generator=torch.Generator().manual_seed(1))
    counts[0, 0] = torch.tensor([0.0, 1.0, 2.0]).clamp_max(model.cap or 9)
    got = model.log_prob(counts, rates, mask)
    np.testing.assert_allclose(got.detach().numpy(), reference_log_prob(model, counts, rates, mask), rtol=2e-5, atol=1e-4)
    history = torch.poisson(torch.full((4, 6, 3), 0.7)).clamp_max(model.cap or 9)
    got = model.log_prob(counts, rates, mask, history=history)
    np.testing.assert_allclose(got.detach().numpy(), reference_log_prob(model, counts, rates, mask, history),
                               rtol=2e-5, atol=1e-4)


def test_counts_above_the_cap_are_impossible_and_the_tail_is_lumped_at_the_cap():
    model = model_with(torch.zeros(1, 2), max_spikes=3)
    rates = torch.full((1, 1, 1), 2.0)
    mask = torch.ones(1, 1, dtype=torch.bool)
    probs = [model.log_prob(torch.full((1, 1, 1), float(k)), rates, mask).exp().item() for k in range(5)]
    lam = math.log1p(2.0)  # softplus(log 2)
    poisson = [math.exp(k * math.log(lam) - lam - math.lgamma(k + 1)) for k in range(3)]
    np.testing.assert_allclose(probs[:3], poisson, rtol=1e-5)
    assert probs[3] == pytest.approx(1 - sum(poisson), rel=1e-4) and probs[4] == 0.0


def test_log_poisson_tail_is_stable_and_differentiable():
    lam = torch.tensor([1e-12, 1e-6, 0.01, 1.0, 10.0, 200.0], dtype=torch.float64, requires_grad=True)
    for cap in (1, 2, 5):
        value = log_poisson_tail(cap, lam)
        # sum_{k >= cap} pmf(k), summed from the tail side (no cancellation for small lam)
        exact = [math.log(math.fsum(math.exp(k * math.log(x) - x - math.lgamma(k + 1)) for k in range(cap, cap + 400)))
                 for x in lam.tolist()]
        np.testing.assert_allclose(value.detach().numpy(), exact, rtol=1e-6, atol=1e-9)
        (grad,) = torch.autograd.grad(value.sum(), lam)
        assert torch.isfinite(grad).all()


def test_elements_are_one_step_conditionals_given_the_counts_scored_or_not():
    """Scoring a subset of entries (coordinated dropout) keeps each entry's conditional given the
    true earlier counts; unscored entries are exactly 0 and pass no gradient to their rates."""
    torch.manual_seed(2)
    model = model_with(torch.randn(3, 4) * 0.6, gain=0.9, bias=0.1)
    rates = (torch.rand(4, 9, 3) * 2 + 0.02).requires_grad_(True)
    mask = torch.arange(9)[None, :] < torch.tensor([9, 6, 1, 4])[:, None]
    counts = model.sample(rates.detach(), mask, generator=torch.Generator().manual_seed(1))
    valid = mask[..., None].expand_as(counts)  # (B, T, N)
    every = model.log_prob_elements(counts, rates, valid)
    torch.testing.assert_close(every.sum(dim=(1, 2)), model.log_prob(counts, rates, mask))
    scored = valid & (torch.rand(counts.shape) < 0.3)  # (B, T, N)
    some = model.log_prob_elements(counts, rates, scored)
    torch.testing.assert_close(some[scored], every[scored])
    assert (some[~scored] == 0).all()
    (grad,) = torch.autograd.grad(some.sum(), rates)
    assert (grad[~scored] == 0).all() and (grad[scored] != 0).any()


# -- the history drive -------------------------------------------------------------------------------

@pytest.mark.parametrize(("n_time", "history"), [(1, 3), (5, 20), (64, 20), (140, 20), (131, 7), (257, 20)])
def test_history_drives_agree_with_the_definition(n_time, history):
    generator = torch.Generator().manual_seed(n_time)
    spikes = torch.poisson(torch.full((3, n_time, 2), 0.5), generator=generator)
    weights = torch.randn(2, history, generator=generator)
    context = torch.poisson(torch.full((3, history, 2), 0.5), generator=generator)
    padded = torch.cat([context, spikes], dim=1)
    expected = torch.zeros_like(spikes)
    expected_no_context = torch.zeros_like(spikes)
    for t in range(n_time):
        for k in range(1, history + 1):
            expected[:, t] += weights[:, k - 1] * padded[:, history + t - k]
            if t - k >= 0:
                expected_no_context[:, t] += weights[:, k - 1] * spikes[:, t - k]
    torch.testing.assert_close(history_drive(spikes, weights, context), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(history_drive(spikes, weights), expected_no_context, rtol=1e-5, atol=1e-5)
    windowed = drive_from_windows(history_windows(spikes, history), weights, n_time).permute(1, 2, 0)
    torch.testing.assert_close(windowed, expected_no_context, rtol=1e-5, atol=1e-5)


def test_chunks_divide_the_length_when_they_can():
    assert chunk_size(140) == 35 and chunk_size(256) == 64 and chunk_size(20) == 20
    assert chunk_size(257) * math.ceil(257 / chunk_size(257)) >= 257 and chunk_size(257) <= 64


# -- sampling ----------------------------------------------------------------------------------------

def test_samples_are_capped_zero_on_padding_and_reproducible():
    model = model_with(refractory_bursting(), bias=1.0)
    rates = torch.full((50, 30, 3), 3.0)
    mask = torch.arange(30)[None, :] < torch.randint(1, 31, (50,), generator=torch.Generator().manual_seed(0))[:, None]
    a = model.sample(rates, mask, generator=torch.Generator().manual_seed(5))
    b = model.sample(rates, mask, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == rates.shape and a.dtype == rates.dtype
    assert a.max() == 5 and a.min() == 0 and (a[~mask] == 0).all() and torch.equal(a, a.round())
    binary = model_with(refractory_bursting(), bernoulli=True).sample(rates, mask, generator=torch.Generator().manual_seed(5))
    assert set(binary.unique().tolist()) == {0.0, 1.0}


def test_sampler_takes_a_history_and_refractoriness_shows_in_the_first_bin():
    model = model_with([[-4.0, -2.0]], link="exp")
    rates = torch.full((4000, 1, 1), 1.0)
    mask = torch.ones(4000, 1, dtype=torch.bool)
    quiet = model.sample(rates, mask, generator=torch.Generator().manual_seed(0))
    after_spike = model.sample(rates, mask, generator=torch.Generator().manual_seed(0),
                               history=torch.ones(4000, 1, 1))  # a spike in the last bin: rate e^-4
    assert quiet.mean() == pytest.approx(1.0, abs=0.1)
    assert after_spike.mean() == pytest.approx(math.exp(-4.0), abs=0.02)


@pytest.mark.parametrize("rate", [0.05, 0.5, 4.0])  # mostly sparse, mixed, and dense drive updates
def test_sampler_uses_the_likelihoods_intensity_at_every_bin(monkeypatch, rate):
    """With draws made deterministic (floor of lambda, capped), every sampled bin must equal the floor of
    the intensity that log_prob computes from the sampled past: the sampler's bookkeeping of history
    drives (sparse scatter or dense update) is the likelihood's."""
    import ldns_plugins.spike_history.glm as glm

    def draw(lam):
        return (6 * lam).floor().clamp(max=7)

    monkeypatch.setattr(glm, "capped_poisson", lambda lam, cap, generator=None: draw(lam))
    model = model_with(refractory_bursting(8) * 0.5, gain=1.0, bias=1.2, link="exp", max_spikes=7)
    rates = rate * (0.5 + torch.rand(30, 40, 3, generator=torch.Generator().manual_seed(0)))
    mask = torch.arange(40)[None, :] < torch.randint(1, 41, (30,), generator=torch.Generator().manual_seed(1))[:, None]
    counts = model.sample(rates, mask)
    expected = draw(model.intensity(counts, rates, mask).detach()) * mask[..., None]
    assert counts.sum() > 0
    torch.testing.assert_close(counts, expected)


# -- fitting -----------------------------------------------------------------------------------------

def lorenz_with_history(kind: str, n_trials: int = 120, n_neurons: int = 6, length: int = 200, seed: int = 0):
    source = LorenzSource(LorenzConfig(n_trials=n_trials, n_neurons=n_neurons, length=length, burn_in=50,
                                       history_filter=kind, seed=seed))
    data = source.load()
    counts = torch.as_tensor(data.counts, dtype=torch.float32)
    rates = torch.as_tensor(data.covariates["rates_true"])
    return counts, rates, torch.ones(counts.shape[:2], dtype=torch.bool), torch.as_tensor(source.history_filters(),
                                                                                         dtype=torch.float32)


def test_fit_recovers_a_known_history_filter():
    """Refractory Lorenz data come exactly from the model class (exp link, a = 1, b = 0, w = h)."""
    counts, rates, mask, truth = lorenz_with_history("refractory")
    model = SpikeHistory(SpikeHistoryConfig(link="exp", max_spikes=None, fit=SpikeHistoryFitConfig(progress=False,
                                                                                                    max_iter=1500)))
    figures = model.fit(counts, rates, mask)
    assert figures["converged"] and figures["nll"] < figures["initial_nll"] and figures["n_neurons"] == 6
    w = model.history_weights.detach()
    # Right after a spike the rate is e^-3 of normal: few spikes inform w_1 itself, but the gain e^w_1 is sharp.
    torch.testing.assert_close(w[:, :5].exp(), truth[:, :5].exp(), atol=0.12, rtol=0.0)
    torch.testing.assert_close(w[:, 1:6], truth[:, 1:6], atol=0.3, rtol=0.0)
    assert float(torch.corrcoef(torch.stack([w[:, :8].flatten(), truth[:, :8].flatten()]))[0, 1]) > 0.95
    torch.testing.assert_close(model.rate_gain.detach(), torch.ones(6), atol=0.15, rtol=0.0)
    torch.testing.assert_close(model.bias.detach(), torch.zeros(6), atol=0.2, rtol=0.0)


def test_fit_tells_bursting_from_refractory_neurons_and_generalises():
    """Mixed data: the sign of each neuron's lag-1 weight is recovered (bursting drives are clipped in the
    generator, so their size is not), and held-out trials score better than without history."""
    counts, rates, mask, truth = lorenz_with_history("mixed")
    model = SpikeHistory(SpikeHistoryConfig(link="exp", max_spikes=None, fit=QUIET))
    model.fit(counts, rates, mask)
    w = model.history_weights.detach()
    assert torch.equal(w[:, 0] > 0, truth[:, 0] > 0) and (truth[:, 0] > 0).any() and (truth[:, 0] < 0).any()
    test_counts, test_rates, test_mask, _ = lorenz_with_history("mixed", n_trials=40, seed=1)
    fitted = model.log_prob(test_counts, test_rates, test_mask).sum()
    no_history = model_with(torch.zeros(6, 20), link="exp", max_spikes=None).log_prob(test_counts, test_rates, test_mask).sum()
    assert fitted > no_history + 100


def test_samples_of_the_fitted_model_reproduce_the_auto_correlation_poisson_misses():
    counts, rates, mask, _ = lorenz_with_history("refractory", n_trials=100)
    model = SpikeHistory(SpikeHistoryConfig(fit=QUIET))
    model.fit(counts, rates, mask)
    generator = torch.Generator().manual_seed(0)
    history_samples = model.sample(rates, mask, generator=generator).numpy()
    poisson_samples = torch.poisson(rates, generator=generator).numpy()
    data = counts.numpy()
    assert autocorr_rmse(history_samples, data) < 0.5 * autocorr_rmse(poisson_samples, data)


def test_fit_gradient_equals_autograd_of_the_likelihood():
    counts, rates, mask = torch.poisson(torch.full((5, 70, 3), 0.8)), torch.rand(5, 70, 3) + 0.1, torch.ones(5, 70, dtype=torch.bool)
    mask[2, 40:] = False
    for config in ({}, {"max_spikes": None}, {"bernoulli": True}, {"link": "exp", "max_spikes": 2}):
        model = model_with(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)) * 0.4, gain=0.8, bias=0.2, **config)
        capped = counts.clamp_max(model.cap) if model.cap else counts
        data, n_capped = model._fit_data(counts, rates, mask)
        assert n_capped == int((counts[mask] > (model.cap or math.inf)).sum())
        loss = model._loss_and_grad(data)
        manual = [p.grad.clone() for p in (model.history_weights, model.rate_gain, model.bias)]
        for p in model.parameters():
            p.grad = None
        reference = -model.log_prob(capped, rates, mask).sum() / (mask.sum() * 3)
        reference.backward()
        assert loss == pytest.approx(reference.item(), rel=1e-5)
        for got, param in zip(manual, (model.history_weights, model.rate_gain, model.bias)):
            torch.testing.assert_close(got, param.grad, rtol=1e-4, atol=1e-6)


def test_fit_reports_convergence_and_figures():
    counts, rates, mask, _ = lorenz_with_history("refractory", n_trials=30, n_neurons=3, length=80)
    model = SpikeHistory(SpikeHistoryConfig(history=10, fit=SpikeHistoryFitConfig(progress=False, max_iter=2000)))
    figures = model.fit(counts, rates, mask)
    assert figures["converged"] and figures["iterations"] < 2000
    assert set(figures) >= {"nll", "initial_nll", "iterations", "converged", "capped_counts", "seconds"}
    short = SpikeHistory(SpikeHistoryConfig(history=10, fit=SpikeHistoryFitConfig(progress=False, max_iter=3, tol=0.0)))
    assert short.fit(counts, rates, mask)["iterations"] == 3 and not short.fit(counts, rates, mask)["converged"]
    # The same data and config give the same parameters (every fit starts from w = 0, a = 1, b = 0).
    again = SpikeHistory(SpikeHistoryConfig(history=10, fit=SpikeHistoryFitConfig(progress=False, max_iter=2000)))
    again.fit(counts, rates, mask)
    torch.testing.assert_close(again.history_weights, model.history_weights)


def test_fit_rejects_inputs_without_valid_bins():
    model = SpikeHistory(SpikeHistoryConfig(fit=QUIET))
    with pytest.raises(DataError, match="no valid bins"):
        model.fit(torch.zeros(2, 5, 3), torch.ones(2, 5, 3), torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(DataError, match="one shape"):
        model.fit(torch.zeros(2, 5, 3), torch.ones(2, 5, 4), torch.ones(2, 5, dtype=torch.bool))


# -- parameters, state dicts, errors -------------------------------------------------------------------

def test_unfitted_model_says_what_to_do_and_wrong_neuron_counts_are_named():
    model = SpikeHistory()
    assert not model.is_fitted and model.n_neurons == 0
    with pytest.raises(LdnsError, match="fit"):
        model.sample(torch.ones(1, 2, 3), torch.ones(1, 2, dtype=torch.bool))
    sized = SpikeHistory(n_neurons=3)
    with pytest.raises(DataError, match="3"):
        sized.log_prob(torch.zeros(1, 2, 4), torch.ones(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))


def test_a_model_rebuilt_from_its_config_loads_fitted_weights(tmp_path):
    from ldns_framework.checkpoint import load_module_weights, save_tensors

    fitted = model_with(refractory_bursting(20), gain=0.7, bias=-0.3)
    path = tmp_path / "weights.safetensors"
    save_tensors(path, fitted.state_dict())
    rebuilt = SpikeHistory(SpikeHistoryConfig(fit=QUIET))  # as a run is rebuilt from its spec: no neuron count
    load_module_weights(rebuilt, path)  # the run directory's loader
    assert rebuilt.n_neurons == 3
    rates = torch.rand(2, 10, 3) + 0.1
    mask = torch.ones(2, 10, dtype=torch.bool)
    counts = fitted.sample(rates, mask, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rebuilt.log_prob(counts, rates, mask), fitted.log_prob(counts, rates, mask))
    with pytest.raises(LdnsError, match=r"weights\.safetensors: .*history_weights \(3, 20\) in the file, \(3, 5\)"):
        load_module_weights(SpikeHistory(SpikeHistoryConfig(history=5)), path)


def test_config_is_validated_with_paths():
    config = structure_config(SpikeHistoryConfig, {"link": "exp", "max_spikes": None, "fit": {"max_iter": 10}},
                              "observation")
    assert config.link == "exp" and config.max_spikes is None and config.fit.max_iter == 10
    for section, path in (({"link": "relu"}, "observation.link"), ({"fit": {"lr": -1.0}}, "observation.fit.lr"),
                          ({"max_spikes": 0}, "observation.max_spikes"), ({"fit": {"steps": 3}}, "observation.fit.steps")):
        with pytest.raises(SpecErrors, match=path.replace(".", r"\.")):
            structure_config(SpikeHistoryConfig, section, "observation")


def test_plugin_registers_the_spike_history_observation_model():
    import ldns_plugins.spike_history as plugin

    [(kind, name, cls, summary)] = registered_classes(plugin)
    assert (kind, name, cls) == ("observation", "spike-history", SpikeHistory) and summary
    assert SpikeHistory.is_autoregressive and "autoregressive" in SpikeHistory.tags
    assert SpikeHistory.needs_fitting  # fitted on the encoder's rates, after the encoder
    assert SpikeHistory(SpikeHistoryConfig(encoder_observation="test-bernoulli")).encoder_observation() == "test-bernoulli"
    assert SpikeHistory().encoder_observation() == "poisson"
