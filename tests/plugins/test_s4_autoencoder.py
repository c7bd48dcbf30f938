"""The s4-autoencoder encoder: shapes, padding, coordinated dropout, penalties, training."""

from __future__ import annotations

import math

import pytest
import torch

from ldns_framework import Batch
from ldns_plugins.poisson.model import PoissonObservation
from ldns_plugins.s4_autoencoder.model import (
    ResidualBlock,
    S4Autoencoder,
    S4AutoencoderConfig,
    causal_instance_norm,
    latent_penalties,
    masked_instance_norm,
)
from ldns_plugins.spike_history.glm import SpikeHistory, SpikeHistoryConfig
from toy_components import ZeroInflatedPoisson

N, T = 6, 32


def make_model(**options) -> S4Autoencoder:
    config = S4AutoencoderConfig(**{"hidden": 16, "latent_dim": 4, "blocks": 2, "state_size": 16, **options})
    return S4Autoencoder(config, n_neurons=N)


def make_batch(batch_size: int = 4, lengths: list[int] | None = None) -> Batch:
    counts = torch.poisson(torch.full((batch_size, T, N), 1.5)) + 1.0  # (B, T, N), never zero
    lengths = lengths or [T] * batch_size
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
    return Batch(counts, mask)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("options", [{}, {"bidirectional": False}, {"decoder_blocks": 1}])
def test_shapes_and_positive_rates(options: dict) -> None:
    model = make_model(**options)
    batch = make_batch()
    latents = model.encode(batch.counts, batch.mask)
    rates = model.decode(latents, batch.mask)
    assert model.latent_dim == 4
    assert latents.shape == (4, T, 4)
    assert rates.shape == (4, T, N)
    assert (rates > 0).all()


@pytest.mark.parametrize("options", [{"bidirectional": False}, {"bidirectional": False, "decoder_blocks": 1},
                                     {"bidirectional": True}])
def test_padding_does_not_leak_into_valid_bins(options: dict) -> None:
    model = make_model(**options).eval()
    batch = make_batch(batch_size=2, lengths=[20, T])
    garbage = batch.counts.clone()
    garbage[0, 20:] = 50.0  # whatever sits in padded bins must not matter
    trial = batch.counts[:1, :20]  # (1, 20, N), the same trial unpadded
    whole = torch.ones(1, 20, dtype=torch.bool)
    with torch.no_grad():
        latents = model.encode(garbage, batch.mask)  # (2, T, D)
        rates = model.decode(latents, batch.mask)
        expected_latents = model.encode(trial, whole)
        expected_rates = model.decode(expected_latents, whole)
    torch.testing.assert_close(latents[:1, :20], expected_latents, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(rates[:1, :20], expected_rates, rtol=1e-4, atol=1e-5)
    assert (latents[0, 20:] == 0).all()


def test_masked_instance_norm_matches_torch_without_padding() -> None:
    x = torch.randn(3, 5, T)  # (B, C, T)
    valid = torch.ones(3, 1, T)
    torch.testing.assert_close(masked_instance_norm(x, valid), torch.nn.functional.instance_norm(x))


@pytest.mark.parametrize("norm", ["instance", "causal"])
def test_block_without_padding_equals_the_masked_path(norm: str) -> None:
    """valid=None (no padded bin: the fused instance norm) computes what an all-ones mask does,
    values and gradients, with a non-zero learned shift/scale."""
    block = ResidualBlock(16, S4AutoencoderConfig(hidden=16, latent_dim=4, state_size=16, norm=norm))
    with torch.no_grad():
        block.modulation.normal_()
    x = torch.randn(3, 16, T, requires_grad=True)  # (B, C, T)
    outputs, grads = [], []
    for valid in (None, torch.ones(3, 1, T)):
        out = block(x, valid)
        outputs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), [x, block.modulation]))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    for fused, masked in zip(*grads):
        torch.testing.assert_close(fused, masked, rtol=1e-4, atol=1e-4)


def _capture(model: S4Autoencoder) -> dict[str, torch.Tensor]:
    """Record the encoder input and the rates (with their gradient) of the next training_loss call."""
    seen: dict[str, torch.Tensor] = {}
    encode, decode = model.encode, model.decode

    def spy_encode(counts, mask):
        seen["inputs"] = counts
        return encode(counts, mask)

    def spy_decode(latents, mask):
        seen["rates"] = rates = decode(latents, mask)
        rates.retain_grad()
        return rates

    model.encode, model.decode = spy_encode, spy_decode
    return seen


def test_coordinated_dropout_scores_only_dropped_entries() -> None:
    model = make_model(dropout_prob=0.3)
    batch = make_batch(batch_size=8, lengths=[T, T, T, T, 24, 24, 10, 10])
    seen = _capture(model)
    model.training_loss(batch, PoissonObservation())["recon"].backward()
    dropped = (seen["inputs"] == 0) & batch.mask[..., None]  # (B, T, N): counts are never zero
    kept = seen["inputs"] != 0
    assert 0.25 < dropped.sum() / batch.mask.sum() / N < 0.35
    torch.testing.assert_close(seen["inputs"][kept], batch.counts[kept] / 0.7)
    grad = seen["rates"].grad  # (B, T, N)
    assert (grad[~dropped] == 0).all()
    assert (grad[dropped] != 0).all()


def test_dropout_follows_the_global_seed_and_is_off_in_eval() -> None:
    model, batch, observation = make_model(), make_batch(), PoissonObservation()
    torch.manual_seed(1)
    first = model.training_loss(batch, observation)["loss"]
    torch.manual_seed(1)
    torch.testing.assert_close(model.training_loss(batch, observation)["loss"], first)
    model.eval()
    with torch.no_grad():
        losses = model.training_loss(batch, observation)
        rates = model.decode(model.encode(batch.counts, batch.mask), batch.mask)
    expected = -observation.log_prob(batch.counts, rates, batch.mask).sum() / batch.counts.numel()
    torch.testing.assert_close(losses["recon"], expected)


def test_latent_penalties_by_hand() -> None:
    z = torch.tensor([0.0, 1.0, 3.0, 6.0])[None, :, None]  # (1, 4, 1)
    l2, td = latent_penalties(z, torch.ones(1, 4, dtype=torch.bool), td_lags=2)
    assert l2.item() == pytest.approx(0 + 1 + 9 + 36)
    assert td.item() == pytest.approx((1 + 4 + 9) / 2 + (9 + 25) / 3)
    l2, td = latent_penalties(z, torch.tensor([[True, True, True, False]]), td_lags=2)  # last bin padding
    assert l2.item() == pytest.approx(0 + 1 + 9)
    assert td.item() == pytest.approx((1 + 4) / 2 + 9 / 3)


def test_loss_parts_have_the_documented_scale() -> None:
    model = make_model(beta_l2=0.5, beta_td=0.25, td_lags=3).eval()
    batch = make_batch(batch_size=2, lengths=[T, 25])
    with torch.no_grad():
        losses = model.training_loss(batch, PoissonObservation())
        z = model.encode(batch.counts, batch.mask)  # (B, T, D), zero on padding
    numel = 2 * T * N
    td = sum(((z[0, :-k] - z[0, k:]) ** 2).sum() / (1 + k) + ((z[1, :25 - k] - z[1, k:25]) ** 2).sum() / (1 + k)
             for k in (1, 2, 3))
    torch.testing.assert_close(losses["l2"], 0.5 * z.square().sum() / numel)
    torch.testing.assert_close(losses["td"], 0.25 * td / numel)
    torch.testing.assert_close(losses["loss"], losses["recon"] + losses["l2"] + losses["td"])


def test_training_loss_is_finite_and_differentiable() -> None:
    model = make_model(bidirectional=False, decoder_blocks=1)
    losses = model.training_loss(make_batch(lengths=[T, 30, 16, 5]), PoissonObservation())
    assert set(losses) == {"loss", "recon", "l2", "td"}
    assert all(torch.isfinite(value) for value in losses.values())
    losses["loss"].backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


def test_coordinated_dropout_keeps_per_neuron_parameters_aligned() -> None:
    """Each dropped entry is scored with its own neuron's parameter (a zero probability per neuron,
    checked by hand in float64), never as a one-neuron trial."""
    model = make_model(dropout_prob=0.4)
    batch = make_batch(batch_size=4, lengths=[T, T, 20, 9])
    observation = ZeroInflatedPoisson()
    observation.zero_logit = torch.nn.Parameter(torch.linspace(-3.0, 2.0, N))  # (N,): very different per neuron
    seen = _capture(model)
    recon = model.training_loss(batch, observation)["recon"]
    dropped = (seen["inputs"] == 0) & batch.mask[..., None]  # (B, T, N): counts are never zero
    pi = torch.sigmoid(torch.linspace(-3.0, 2.0, N)).double()  # (N,)
    r, x = seen["rates"].detach().double(), batch.counts.double()
    by_hand = torch.log1p(-pi) + x * torch.log(r) - r - torch.lgamma(x + 1)  # (B, T, N): x > 0 everywhere
    torch.testing.assert_close(recon.double(), -by_hand[dropped].sum() / x.numel(), rtol=1e-5, atol=1e-7)


def test_an_autoregressive_model_scores_dropped_entries_given_the_true_history() -> None:
    """The encoder sees dropped entries as zeros, but the spike-history model's conditional of a
    dropped entry is taken given the true earlier counts."""
    model = make_model(dropout_prob=0.3)
    batch = make_batch(lengths=[T, T, 25, 12])
    observation = SpikeHistory(SpikeHistoryConfig(history=3), n_neurons=N)
    with torch.no_grad():
        observation.history_weights.copy_(torch.randn(N, 3) * 0.5)
    seen = _capture(model)
    losses = model.training_loss(batch, observation)
    losses["loss"].backward()
    dropped = (seen["inputs"] == 0) & batch.mask[..., None]  # (B, T, N)
    rates = seen["rates"].detach()
    every_entry = observation.log_prob_elements(batch.counts, rates, batch.mask[..., None].expand_as(rates))
    torch.testing.assert_close(losses["recon"], -every_entry[dropped].sum() / batch.counts.numel())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_not_causal_even_with_backward_kernels_since_the_norm_sees_the_whole_trial() -> None:
    """With bidirectional: false the kernels look only backwards, but later valid bins still move
    earlier latents through the instance norm's statistics: is_causal must stay False."""
    model = make_model(bidirectional=False).eval()
    batch = make_batch(batch_size=2)
    later = batch.counts.clone()
    later[:, 20:] += 5.0
    with torch.no_grad():
        before = model.encode(batch.counts, batch.mask)
        after = model.encode(later, batch.mask)
    assert not torch.allclose(before[:, :20], after[:, :20])
    assert model.is_causal is False and make_model(bidirectional=True).is_causal is False


CAUSAL = {"bidirectional": False, "norm": "causal"}


def test_causal_when_configured_so() -> None:
    assert make_model(**CAUSAL).is_causal is True
    assert make_model(bidirectional=True, norm="causal").is_causal is False  # forward-looking kernels
    assert make_model(bidirectional=False).is_causal is False  # the reference's whole-trial norm


@pytest.mark.parametrize("decoder_blocks", [0, 1])
def test_causal_outputs_ignore_later_bins(decoder_blocks: int) -> None:
    model = make_model(**CAUSAL, decoder_blocks=decoder_blocks).eval()
    batch = make_batch(batch_size=2)
    later = batch.counts.clone()
    later[:, 20:] = torch.poisson(torch.full_like(later[:, 20:], 4.0))
    with torch.no_grad():
        before, after = model.encode(batch.counts, batch.mask), model.encode(later, batch.mask)
        rates_before, rates_after = model.decode(before, batch.mask), model.decode(after, batch.mask)
    torch.testing.assert_close(after[:, :20], before[:, :20], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(rates_after[:, :20], rates_before[:, :20], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(after[:, 20:], before[:, 20:])


@pytest.mark.parametrize("decoder_blocks", [0, 1])
def test_causal_encoder_ignores_the_amount_and_content_of_padding(decoder_blocks: int) -> None:
    """The same 20-bin trial alone, padded to 32 bins with zeros, and padded to 64 bins with
    garbage gives the same latents and rates on its 20 valid bins."""
    model = make_model(**CAUSAL, decoder_blocks=decoder_blocks).eval()
    trial = torch.poisson(torch.full((1, 20, N), 1.5))  # (1, 20, N)
    outputs = []
    for total, fill in ((20, 0.0), (32, 0.0), (64, 9.0)):
        counts = torch.cat([trial, torch.full((1, total - 20, N), fill)], dim=1)  # (1, total, N)
        mask = torch.arange(total)[None, :] < 20  # (1, total)
        with torch.no_grad():
            latents = model.encode(counts, mask)
            outputs.append((latents[:, :20], model.decode(latents, mask)[:, :20]))
    for latents, rates in outputs[1:]:
        torch.testing.assert_close(latents, outputs[0][0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(rates, outputs[0][1], rtol=1e-4, atol=1e-5)


def test_every_loss_term_ignores_padding_in_the_causal_encoder() -> None:
    model = make_model(**CAUSAL)  # training mode: coordinated dropout on
    batch = make_batch(batch_size=3, lengths=[T, 20, 9])
    garbage = batch.counts.clone()
    garbage[~batch.mask] = 7.0
    torch.manual_seed(3)
    clean = model.training_loss(batch, PoissonObservation())
    torch.manual_seed(3)
    noisy = model.training_loss(Batch(garbage, batch.mask), PoissonObservation())
    for part in ("loss", "recon", "l2", "td"):
        torch.testing.assert_close(noisy[part], clean[part], rtol=1e-5, atol=1e-7)


def test_causal_instance_norm_uses_the_bins_so_far() -> None:
    x = torch.randn(2, 3, 12)  # (B, C, T)
    valid = (torch.arange(12)[None, :] < torch.tensor([12, 7])[:, None])[:, None].float()  # (B, 1, T)
    out = causal_instance_norm(x, valid)
    for t in (1, 5, 11):  # at bin t: the statistics of bins 0..t, as torch's norm of that prefix
        torch.testing.assert_close(out[:1, :, t], torch.nn.functional.instance_norm(x[:1, :, : t + 1])[..., -1],
                                   rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out[1:, :, :7], causal_instance_norm(x[1:, :, :7], valid[1:, :, :7]))
    # the last valid bin sees the trial's whole statistics: the masked norm's value there
    torch.testing.assert_close(out[1:, :, 6], masked_instance_norm(x[1:], valid[1:])[..., 6], rtol=1e-4, atol=1e-4)
    assert out[:, :, 0].abs().max() < 1e-3  # one bin: zero variance, nothing to normalise


@pytest.mark.parametrize(("options", "message"), [
    ({"norm": "layer"}, "one of"),
    ({"hidden": 16, "latent_dim": 3}, "multiple of latent_dim"),
    ({"state_size": 15}, "even"),
    ({"dt_min": 0.5, "dt_max": 0.1}, "dt_min"),
    ({"dropout_prob": 1.0}, "< 1"),
    ({"s4_init": "legs"}, "one of"),
])
def test_config_rejects_bad_values(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        S4AutoencoderConfig(**options)


def test_training_reduces_the_loss_below_a_constant_rate_model() -> None:
    batch_size, n_neurons = 32, 8
    phase = torch.rand(batch_size, 1, 1) * 2 * math.pi
    angle = 2 * math.pi * torch.arange(T)[None, :, None] / 16 + phase  # (B, T, 1)
    preferred = 2 * math.pi * torch.arange(n_neurons) / n_neurons  # (N,) tuning of each neuron to the phase
    rates = torch.exp(0.8 * torch.cos(angle - preferred) + 0.3)  # (B, T, N): a 2-D latent, rotating
    batch = Batch(torch.poisson(rates), torch.ones(batch_size, T, dtype=torch.bool))
    observation = PoissonObservation()
    model = S4Autoencoder(S4AutoencoderConfig(hidden=16, latent_dim=4, blocks=1, state_size=16), n_neurons=n_neurons)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)

    def eval_recon() -> float:
        model.eval()
        with torch.no_grad():
            value = model.training_loss(batch, observation)["recon"].item()
        model.train()
        return value

    constant = batch.counts.mean(dim=(0, 1), keepdim=True).expand_as(batch.counts)  # best time-blind rates
    baseline = -observation.log_prob(batch.counts, constant, batch.mask).sum().item() / batch.counts.numel()
    before = eval_recon()
    for _ in range(150):
        loss = model.training_loss(batch, observation)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = eval_recon()
    oracle = -observation.log_prob(batch.counts, rates, batch.mask).sum().item() / batch.counts.numel()
    assert after < baseline < before
    assert baseline - after > 0.6 * (baseline - oracle)  # most of what the latent can explain
