"""Classifier-free guidance in the latent-diffusion generator: condition dropout, the null token,
the guidance scale as a sampler option, and the errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ldns_registry import Registry

from ldns_framework import LdnsError
from ldns_plugins.latent_diffusion.guidance import GUIDED_SAMPLERS, guided
from ldns_plugins.latent_diffusion.model import InputError, LatentDiffusion, LatentDiffusionConfig
from ldns_plugins.latent_diffusion.schedule import DdimOptions

T, D, V = 16, 4, 2
TINY = {"hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50}


@pytest.fixture(autouse=True)
def _seed_and_one_thread(one_torch_thread):
    torch.manual_seed(0)


def make_model(kind: str | None = "vector", **options) -> LatentDiffusion:
    return LatentDiffusion(LatentDiffusionConfig(**{**TINY, **options}), latent_dim=D, condition_kind=kind,
                           condition_dim=V if kind else 0)


def condition(kind: str, n: int = 3, length: int = T) -> torch.Tensor:
    return torch.randn(n, V) if kind == "vector" else torch.randn(n, length, V)


def perturbed(model: LatentDiffusion) -> LatentDiffusion:
    """Random EMA and live weights: an untrained adaLN-Zero denoiser ignores its condition entirely."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in [*model.denoiser.parameters(), *model.ema.buffers()]:
            tensor.copy_(0.3 * torch.randn(tensor.shape, generator=generator))
    return model


def ddim(steps: int = 4, guidance: float = 1.0):
    return GUIDED_SAMPLERS["ddim"](steps=steps, guidance=guidance)


def draw(model: LatentDiffusion, cond: torch.Tensor, options, seed: int = 5) -> torch.Tensor:
    return model.sample(3, torch.full((3,), T), cond, torch.Generator().manual_seed(seed), sampler="ddim",
                        options=options)


def test_every_sampler_has_a_guidance_option_defaulting_to_one() -> None:
    assert list(LatentDiffusion.samplers) == ["dpm-solver++", "ddim", "ddpm"]
    for options_class in LatentDiffusion.samplers.values():
        assert options_class().guidance == 1.0
    assert LatentDiffusion.describe_sampler("ddim", ddim(10)) == "ddim (steps=10, eta=0.0)"
    assert LatentDiffusion.describe_sampler("ddim", ddim(10, 2.5)) == "ddim (steps=10, eta=0.0, guidance=2.5)"
    assert LatentDiffusion.describe_sampler("ddpm", GUIDED_SAMPLERS["ddpm"](guidance=0.0)) == "ddpm (guidance=0.0)"


@pytest.mark.parametrize("kind", ["vector", "sequence"])
def test_guidance_one_is_exactly_the_plain_conditional_model(kind: str) -> None:
    """w = 1 with a dropout-trained model equals the same weights in a model without dropout (no
    null token, no unconditional pass), bit for bit, and calls the denoiser once per step on n trials."""
    with_dropout = perturbed(make_model(kind, condition_dropout=0.2))
    plain = make_model(kind)
    state = {k: v for k, v in with_dropout.state_dict().items() if "null_condition" not in k}
    plain.load_state_dict(state)
    cond = condition(kind)
    batches = []
    with_dropout.ema.register_forward_hook(lambda _m, args, _out: batches.append(args[0].shape[0]))
    guided_draw = draw(with_dropout, cond, ddim(guidance=1.0))
    assert batches == [3] * 4
    torch.testing.assert_close(guided_draw, draw(plain, cond, DdimOptions(steps=4)), rtol=0, atol=0)
    torch.testing.assert_close(guided_draw, draw(with_dropout, cond, DdimOptions(steps=4)), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["vector", "sequence"])
def test_guided_output_combines_the_conditional_and_null_passes(kind: str) -> None:
    model = perturbed(make_model(kind, condition_dropout=0.2))
    z, t, cond = torch.randn(3, T, D), torch.full((3,), 20), condition(kind)
    key = kind
    with torch.no_grad():
        conditioned = model.ema(z, t, **{key: cond})
        null = model.ema(z, t, **{key: cond}, dropped=torch.ones(3, dtype=torch.bool))
        combined = guided(lambda dropped: model.ema(torch.cat([z, z]), torch.cat([t, t]),
                                                    **{key: torch.cat([cond, cond])}, dropped=dropped), 3, 2.5)
    assert not torch.allclose(conditioned, null)
    torch.testing.assert_close(combined, null + 2.5 * (conditioned - null), rtol=1e-5, atol=1e-6)
    # w = 0 samples the unconditional model: the condition's values no longer matter
    a = draw(model, cond, ddim(guidance=0.0))
    torch.testing.assert_close(a, draw(model, 5.0 * cond, ddim(guidance=0.0)), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(draw(model, cond, ddim(guidance=3.0)), draw(model, cond, ddim(guidance=1.0)))


@pytest.mark.parametrize("kind", ["vector", "sequence"])
def test_the_null_token_replaces_dropped_conditions_only(kind: str) -> None:
    model = perturbed(make_model(kind, condition_dropout=0.5))
    z, t = torch.randn(4, T, D), torch.full((4,), 30)
    cond = condition(kind, 4)
    dropped = torch.tensor([True, False, True, False])
    other = cond.clone()
    other[dropped] = 10.0 * torch.randn_like(other[dropped])
    with torch.no_grad():
        a = model.denoiser(z, t, **{kind: cond}, dropped=dropped)
        b = model.denoiser(z, t, **{kind: other}, dropped=dropped)
        c = model.denoiser(z, t, **{kind: other})
    torch.testing.assert_close(a[dropped], b[dropped], rtol=0, atol=0)  # the dropped trials' values never enter
    torch.testing.assert_close(a[~dropped], b[~dropped], rtol=0, atol=0)
    assert not torch.allclose(b[dropped], c[dropped])  # without dropping, the condition matters


def test_training_draws_condition_dropout_with_probability_p() -> None:
    model = make_model("vector", condition_dropout=0.3)
    seen = []
    model.denoiser.register_forward_hook(lambda _m, _args, kwargs, _out: seen.append(kwargs["dropped"]),
                                         with_kwargs=True)
    for _ in range(10):
        model.training_loss(torch.randn(64, T, D), torch.ones(64, T, dtype=torch.bool), torch.randn(64, V))
    dropped = torch.cat(seen)  # (640,)
    assert dropped.dtype == torch.bool and 0.22 < dropped.float().mean() < 0.38
    loss = model.training_loss(torch.randn(8, T, D), torch.ones(8, T, dtype=torch.bool), torch.randn(8, V))["loss"]
    loss.backward()
    assert model.denoiser.null_condition.grad is not None  # the null token is trained


@pytest.mark.parametrize("kind", ["vector", "sequence"])
def test_no_dropout_reproduces_the_plain_training_loss_and_draws(kind: str) -> None:
    """condition_dropout 0 (the default) adds no parameter and no random draw: the loss is the
    plain one computed by hand from the same t and noise."""
    model = make_model(kind)
    assert not any("null_condition" in k for k in model.state_dict())
    latents, mask, cond = torch.randn(5, T, D), torch.ones(5, T, dtype=torch.bool), condition(kind, 5)
    torch.manual_seed(11)
    loss = model.training_loss(latents, mask, cond)["loss"]
    after = torch.randn(1)
    torch.manual_seed(11)
    t = torch.randint(0, TINY["train_steps"], (5,))
    noise = torch.randn_like(latents)
    predicted = model.denoiser(model.schedule.add_noise(latents, noise, t), t, **{kind: cond})
    per_entry = F.mse_loss(predicted, model.schedule.target(latents, noise, t), reduction="none")  # (B, T, D)
    expected = per_entry.masked_fill(~mask[..., None], 0.0).sum() / latents.numel()  # the mean over valid entries
    assert torch.equal(torch.randn(1), after)  # the same number of global draws
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)


def test_guidance_is_refused_where_there_is_no_unconditional_mode() -> None:
    lengths = torch.full((2,), T)
    with pytest.raises(InputError, match=r"^guidance: this model was trained without condition dropout"):
        make_model("vector").sample(2, lengths, torch.randn(2, V), sampler="ddim", options=ddim(guidance=2.0))
    with pytest.raises(InputError, match=r"^guidance: this latent-diffusion model is unconditional"):
        make_model(None).sample(2, lengths, sampler="ddim", options=ddim(guidance=2.0))
    make_model(None).sample(2, lengths, sampler="ddim", options=ddim(steps=2))  # w = 1 is fine
    unconditional = make_model(None, condition_dropout=0.1)  # nothing to drop: no null token, no guidance
    assert unconditional.denoiser.null_condition is None
    with pytest.raises(InputError, match=r"^guidance: this latent-diffusion model is unconditional"):
        unconditional.sample(2, lengths, sampler="ddim", options=ddim(guidance=0.5))
    with pytest.raises(ValueError, match=r"^dropped: this denoiser has no null condition"):
        make_model("vector").denoiser(torch.randn(2, T, D), torch.zeros(2, dtype=torch.long),
                                      vector=torch.randn(2, V), dropped=torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="expected float >= 0"):
        ddim(guidance=-1.0)
    with pytest.raises(ValueError, match="< 1"):
        LatentDiffusionConfig(condition_dropout=1.0)


def test_a_spec_and_the_command_line_set_guidance_as_a_sampler_option() -> None:
    registry = Registry.discover(strict=False, trace=False)
    name, options = registry.sampler_options("latent-diffusion", "ddim", {"steps": 3, "guidance": 2.0}, "sample")
    assert (name, options.steps, options.guidance) == ("ddim", 3, 2.0)
    with pytest.raises(LdnsError, match=r"sample.guidance: expected float >= 0"):
        registry.sampler_options("latent-diffusion", "ddim", {"guidance": -2}, "sample")
