"""The latent-diffusion generator: denoiser, noise schedule, loss, EMA, samplers, conditions (the S4D layer:
tests/core/test_nn.py)."""

from __future__ import annotations

import math

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin_helpers import registered_classes
from ldns_plugins.latent_diffusion.denoiser import Denoiser, DenoiserBlock, modulated_instance_norm, timestep_embedding
from ldns_plugins.latent_diffusion.model import LatentDiffusion, LatentDiffusionConfig, ema_decay
from ldns_plugins.latent_diffusion.schedule import SAMPLERS, DdimOptions, DpmSolverOptions, NoiseSchedule, run_sampler

T, D = 32, 4
TINY = {"hidden": 16, "blocks": 1, "state_size": 8}


def make_model(condition_kind: str | None = None, condition_dim: int = 0, **options) -> LatentDiffusion:
    return LatentDiffusion(LatentDiffusionConfig(**{**TINY, **options}), latent_dim=D,
                           condition_kind=condition_kind, condition_dim=condition_dim)


def with_steps(sampler: str, steps: int):
    """The options of ``sampler`` with ``steps`` steps (ddpm has no options: all training steps)."""
    return SAMPLERS[sampler]() if sampler == "ddpm" else SAMPLERS[sampler](steps=steps)


def lengths_mask(lengths: list[int], length: int = T) -> torch.Tensor:
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These tensors are tiny: a second intra-op thread only adds synchronisation, and on a busy
    2-core machine OpenMP spin-waiting made this file 3-7x slower (26-79 s against 11 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- plugin registration -------------------------------------------------------------------------

def test_registers_the_generator() -> None:
    import ldns_plugins.latent_diffusion as plugin

    [(kind, name, cls, _summary)] = registered_classes(plugin)
    assert (kind, name, cls) == ("generator", "latent-diffusion", LatentDiffusion)


def test_declares_its_samplers_with_the_fast_one_first() -> None:
    assert list(LatentDiffusion.samplers) == ["dpm-solver++", "ddim", "ddpm"]
    assert LatentDiffusion.samplers["dpm-solver++"]().steps == 25 and LatentDiffusion.samplers["ddim"]().steps == 25
    # all training steps: nothing to choose but the guidance scale every sampler has (test_guidance.py)
    assert [f.name for f in attrs.fields(LatentDiffusion.samplers["ddpm"])] == ["guidance"]
    assert LatentDiffusion.describe_sampler("ddim", DdimOptions(steps=10)) == "ddim (steps=10, eta=0.0)"


# --- the denoiser --------------------------------------------------------------------------------

def test_untrained_block_is_the_identity() -> None:
    block = DenoiserBlock(16, state_size=8)
    x = torch.randn(3, 16, T)  # (B, C, T)
    emb = torch.randn(3, 4)  # (B, C/4)
    torch.testing.assert_close(block(x, emb), x, rtol=0, atol=0)
    valid = lengths_mask([T, 20, 5])[:, None].float()  # (B, 1, T)
    torch.testing.assert_close(block(x, emb, valid), x, rtol=0, atol=0)


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 3), channels=st.integers(1, 5), length=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_modulated_instance_norm_is_the_norm_then_the_modulation(batch: int, channels: int, length: int,
                                                                 seed: int) -> None:
    """The fused batch-norm path (no padding) and the masked path both equal, forward and backward,
    norm(x) (1 + scale) + shift with the biased variance over time; with a mask, over valid bins only."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, length, generator=gen, dtype=torch.float64, requires_grad=True)
    shift = torch.randn(batch, channels, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(batch, channels, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(batch, channels, length, generator=gen, dtype=torch.float64)

    def expected(valid: torch.Tensor) -> torch.Tensor:
        count = valid.sum(-1, keepdim=True)
        mean = (x * valid).sum(-1, keepdim=True) / count
        var = ((x - mean) ** 2 * valid).sum(-1, keepdim=True) / count
        return (x - mean) / torch.sqrt(var + 1e-5) * (1 + scale) + shift

    def value_and_grads(out: torch.Tensor, valid: torch.Tensor) -> list[torch.Tensor]:
        return [out * valid, *torch.autograd.grad((out * valid * weights).sum(), (x, shift, scale))]

    everywhere = torch.ones(batch, 1, length, dtype=torch.float64)
    reference = value_and_grads(expected(everywhere), everywhere)
    for valid in (None, everywhere):  # the fused path, and the masked one with nothing masked
        for got, want in zip(value_and_grads(modulated_instance_norm(x, shift, scale, valid), everywhere), reference):
            torch.testing.assert_close(got, want)
    lengths = torch.randint(1, length + 1, (batch,), generator=gen)
    valid = (torch.arange(length)[None, :] < lengths[:, None]).to(torch.float64)[:, None]  # (B, 1, T)
    for got, want in zip(value_and_grads(modulated_instance_norm(x, shift, scale, valid), valid),
                         value_and_grads(expected(valid), valid)):
        torch.testing.assert_close(got, want)


def test_timestep_embedding() -> None:
    emb = timestep_embedding(torch.tensor([0, 7]))
    assert emb.shape == (2, 256)
    torch.testing.assert_close(emb[0], torch.cat([torch.ones(128), torch.zeros(128)]))
    assert math.isclose(emb[1, 0].item(), math.cos(7.0), abs_tol=1e-6)  # the first frequency is 1
    assert math.isclose(emb[1, 128].item(), math.sin(7.0), abs_tol=1e-6)


def test_conv_in_is_grouped_like_the_reference() -> None:
    assert Denoiser(8, hidden=64, blocks=1, state_size=8).conv_in.groups == 8  # Lorenz 8 -> 64
    assert Denoiser(8, hidden=64, blocks=1, state_size=8, mask_channel=True).conv_in.groups == 1  # 9 does not divide 64
    assert Denoiser(4, hidden=4, blocks=1, state_size=8).conv_in.groups == 1  # C == C_in


def test_mask_channel_makes_the_denoiser_blind_to_padding() -> None:
    denoiser = Denoiser(D, hidden=16, blocks=2, state_size=8, mask_channel=True)
    for block in denoiser.blocks:  # open the gates so the blocks mix in time
        torch.nn.init.normal_(block.modulation[1].weight)
    z, t = torch.randn(1, 20, D), torch.tensor([300])
    padded = torch.cat([z, 100 * torch.randn(1, 12, D)], dim=1)  # (1, T, D), garbage after bin 20
    with torch.no_grad():
        alone = denoiser(z, t, mask=lengths_mask([20], 20))
        within = denoiser(padded, t, mask=lengths_mask([20]))
    torch.testing.assert_close(within[:, :20], alone, rtol=1e-4, atol=1e-5)


# --- noise schedule ------------------------------------------------------------------------------

def test_noise_schedule_matches_its_formulas() -> None:
    schedule = NoiseSchedule(1000, 1e-4, 0.02)
    betas = schedule.betas.double()
    assert betas.shape == (1000,)
    assert math.isclose(betas[0].item(), 1e-4, rel_tol=1e-5) and math.isclose(betas[-1].item(), 0.02, rel_tol=1e-5)
    torch.testing.assert_close(betas.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64),
                               rtol=1e-3, atol=1e-9)  # linear
    torch.testing.assert_close(schedule.alphas_cumprod.double(), torch.cumprod(1 - betas, 0), rtol=1e-4, atol=1e-8)
    assert 3e-5 < schedule.alphas_cumprod[-1] < 5e-5  # LDNS_NOTES 1.5: alpha_bar_T ~ 4.0e-5

    z0, eps, t = torch.randn(3, T, D), torch.randn(3, T, D), torch.tensor([0, 500, 999])
    ab = schedule.alphas_cumprod[t][:, None, None]
    torch.testing.assert_close(schedule.add_noise(z0, eps, t), ab.sqrt() * z0 + (1 - ab).sqrt() * eps)


@pytest.mark.parametrize(("sampler", "steps", "tolerance"), [("ddpm", None, 0.05), ("ddim", 25, 0.15),
                                                         ("dpm-solver++", 25, 0.05)])
def test_samplers_recover_a_gaussian_with_the_exact_denoiser(sampler: str, steps: int | None, tolerance: float) -> None:
    """For z_0 ~ N(0, s^2 I) the optimal eps(z_t, t) = sqrt(1 - ab) z_t / (ab s^2 + 1 - ab): no network,
    so this checks the samplers' wiring (timesteps, epsilon target, generator) on their own."""
    schedule, s = NoiseSchedule(), 2.0

    def exact(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = schedule.alphas_cumprod[t][:, None, None]
        return (1 - ab).sqrt() * z / (ab * s**2 + 1 - ab)

    z = run_sampler(exact, (256, 8, 2), schedule=schedule, sampler=sampler, options=with_steps(sampler, steps),
                    generator=torch.Generator().manual_seed(0))
    assert abs(z.std().item() - s) < tolerance * s and abs(z.mean().item()) < 0.05


# --- training loss -------------------------------------------------------------------------------

def test_training_loss_is_finite_and_trains_only_the_denoiser() -> None:
    model = make_model(loss="smooth_l1")
    losses = model.training_loss(torch.randn(4, T, D), lengths_mask([T] * 4), None)
    assert set(losses) == {"loss"} and losses["loss"].ndim == 0 and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    names = {name for name, _ in model.named_parameters()}
    assert names and all(name.startswith("denoiser.") for name in names)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("mask_channel", [True, False])
def test_loss_ignores_padded_bins_with_the_mask_channel(mask_channel: bool) -> None:
    model = make_model(mask_channel=mask_channel)
    for block in model.denoiser.blocks:
        torch.nn.init.normal_(block.modulation[1].weight)
    latents, mask = torch.randn(3, T, D), lengths_mask([T, 20, 9])
    changed = latents.clone()
    changed[~mask] = 50.0
    torch.manual_seed(1)
    loss = model.training_loss(latents, mask, None)["loss"]
    torch.manual_seed(1)
    loss_changed = model.training_loss(changed, mask, None)["loss"]
    if mask_channel:
        torch.testing.assert_close(loss_changed, loss)
        changed[~mask] = float("nan")
        torch.manual_seed(1)
        torch.testing.assert_close(model.training_loss(changed, mask, None)["loss"], loss)
    else:  # without the mask channel the denoiser sees the padded bins (only the loss is masked)
        assert not torch.allclose(loss_changed, loss)


# --- EMA -----------------------------------------------------------------------------------------

def test_ema_decay_warm_up() -> None:
    assert ema_decay(0) == 0.0 and ema_decay(1) == 0.0  # the first two updates copy the live weights
    for n in (2, 10, 1000):
        assert math.isclose(ema_decay(n), 1 - n ** (-2 / 3))  # s = n - 1, 1 - (1 + s)^(-2/3)
    assert ema_decay(10**9) == 0.9999
    assert ema_decay(10**9, max_decay=0.99) == 0.99
    assert math.isclose(ema_decay(5, power=0.5), 1 - 5 ** -0.5)


def test_after_optimizer_step_moves_the_ema_towards_the_live_weights() -> None:
    model = make_model(ema_max_decay=0.995)
    model.ema_updates.fill_(10)
    with torch.no_grad():
        for p in model.denoiser.parameters():
            p.add_(torch.randn_like(p))
    before = {k: v.clone() for k, v in model.ema.named_buffers()}
    live = dict(model.denoiser.named_parameters())
    decay = model.after_optimizer_step()
    assert math.isclose(decay, 1 - 10 ** (-2 / 3)) and int(model.ema_updates) == 11
    for name, value in model.ema.named_buffers():
        torch.testing.assert_close(value, decay * before[name] + (1 - decay) * live[name].detach())

    model.ema_updates.fill_(10**8)
    assert model.after_optimizer_step() == 0.995


def test_ema_weights_live_in_the_state_dict() -> None:
    model = make_model()
    for _ in range(3):
        with torch.no_grad():
            for p in model.denoiser.parameters():
                p.add_(0.1)
        model.after_optimizer_step()
    state = model.state_dict()
    live_keys = {k[len("denoiser."):] for k in state if k.startswith("denoiser.")}
    ema_keys = {k[len("ema."):] for k in state if k.startswith("ema.")}
    assert live_keys == ema_keys and int(state["ema_updates"]) == 3
    restored = make_model()
    restored.load_state_dict(state)
    for key, value in state.items():
        torch.testing.assert_close(restored.state_dict()[key], value)


# --- sampling ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sample_shapes_padding_and_longer_lengths(sampler: str) -> None:
    model = make_model(train_steps=50)
    model.training_loss(torch.randn(2, T, D), lengths_mask([T, T]), None)  # trains at length T
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    lengths = torch.tensor([2 * T, 20, 1])
    z = model.sample(3, lengths, generator=torch.Generator().manual_seed(0), sampler=sampler,
                     options=with_steps(sampler, 8))
    assert z.shape == (3, 2 * T, D) and z.dtype == torch.float32
    assert torch.isfinite(z).all() and (z.abs() <= 5.0).all()
    assert (z[1, 20:] == 0).all() and (z[2, 1:] == 0).all() and (z[0] != 0).all()
    assert model.training  # mode restored
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key  # sampling changes no weight


def test_sample_with_mask_channel_zeroes_the_tail() -> None:
    model = make_model(mask_channel=True, clamp=None)
    z = model.sample(2, torch.tensor([T, 10]), generator=torch.Generator().manual_seed(0), options=DpmSolverOptions(5))
    assert z.shape == (2, T, D) and (z[1, 10:] == 0).all() and (z[1, :10] != 0).all()


def test_sample_is_reproducible_per_seed() -> None:
    model = make_model(train_steps=50)
    lengths = torch.full((4,), T)

    def draw(seed: int, sampler: str | None, options=None) -> torch.Tensor:
        return model.sample(4, lengths, generator=torch.Generator().manual_seed(seed), sampler=sampler, options=options)

    for sampler in ("ddpm", "dpm-solver++"):
        torch.testing.assert_close(draw(3, sampler), draw(3, sampler), rtol=0, atol=0)
        assert not torch.allclose(draw(3, sampler), draw(4, sampler))
    torch.testing.assert_close(draw(3, None), draw(3, "dpm-solver++", DpmSolverOptions(steps=25)), rtol=0, atol=0)
    few, many = draw(3, "ddim", DdimOptions(steps=2)), draw(3, "ddim", DdimOptions(steps=10))
    assert not torch.allclose(few, many)  # the steps option reaches the sampler


def test_sample_uses_the_ema_weights() -> None:
    model = make_model()
    generator = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    before = model.sample(2, torch.tensor([T, T]), generator=generator(), options=DpmSolverOptions(5))
    with torch.no_grad():
        for p in model.denoiser.parameters():
            p.add_(torch.randn_like(p))  # live weights change, EMA does not
    torch.testing.assert_close(model.sample(2, torch.tensor([T, T]), generator=generator(), options=DpmSolverOptions(5)),
                               before)
    model.ema_updates.zero_()
    model.after_optimizer_step()  # decay 0: EMA := live
    assert not torch.allclose(model.sample(2, torch.tensor([T, T]), generator=generator(), options=DpmSolverOptions(5)),
                              before)


def test_sample_rejects_bad_options() -> None:
    model = make_model()
    with pytest.raises(ValueError, match="sampler"):
        model.sample(2, torch.tensor([T, T]), sampler="euler")
    with pytest.raises(ValueError, match=r"^steps: expected 1 <= steps <= train_steps=1000, got 2000"):
        model.sample(2, torch.tensor([T, T]), sampler="ddim", options=DdimOptions(steps=2000))
    with pytest.raises(ValueError, match="options: expected a DdimOptions for sampler 'ddim'"):
        model.sample(2, torch.tensor([T, T]), sampler="ddim", options=DpmSolverOptions())
    with pytest.raises(ValueError, match="lengths"):
        model.sample(3, torch.tensor([T, T]))
    with pytest.raises(ValueError, match="hidden"):
        LatentDiffusionConfig(hidden=18)
    with pytest.raises(ValueError, match="prediction"):
        LatentDiffusionConfig(prediction="x0")


def test_trained_model_matches_simple_latent_statistics() -> None:
    """Latents = a fixed sinusoid per channel times an N(0, 1) amplitude per trial, normalised."""
    phase = torch.arange(T)[:, None] * (2 * math.pi / T) * torch.tensor([1.0, 1.0, 2.0, 3.0]) + torch.arange(D)  # (T, D)
    template = torch.sin(phase) / torch.sin(phase).std(0)  # (T, D), unit std per channel over time

    def draw(n: int) -> torch.Tensor:
        return torch.randn(n, 1, 1) * template  # (n, T, D), per-channel mean 0, std 1

    model = make_model(hidden=32)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    mask = lengths_mask([T] * 32)
    for _ in range(400):
        loss = model.training_loss(draw(32), mask, None)["loss"]
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        model.after_optimizer_step()
    z = model.sample(256, torch.full((256,), T), generator=torch.Generator().manual_seed(0))  # (256, T, D)
    mean, std = z.mean((0, 1)), z.std((0, 1))  # (D,)
    assert (mean.abs() < 0.25).all(), mean
    assert ((std > 0.5) & (std < 1.6)).all(), std
    # Structure, not just moments: most of a sample's energy lies along the template (pure noise: ~1/T).
    along = (z * template).sum(1) ** 2 / template.square().sum(0)  # (256, D)
    explained = along.sum(0) / z.square().sum((0, 1))  # (D,)
    assert (explained > 0.2).all(), explained


# --- conditions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["vector", "sequence"])
def test_conditional_models_train_and_sample(kind: str) -> None:
    model = make_model(kind, 2)
    condition = torch.randn(3, 2) if kind == "vector" else torch.randn(3, T, 2)
    loss = model.training_loss(torch.randn(3, T, D), lengths_mask([T] * 3), condition)["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    lengths = torch.tensor([T, T, 12])
    z = model.sample(3, lengths, condition, generator=torch.Generator().manual_seed(0), options=DpmSolverOptions(4))
    assert z.shape == (3, T, D) and (z[2, 12:] == 0).all()

    for block in model.ema.blocks:  # an untrained denoiser ignores its embedding: open the gates
        torch.nn.init.normal_(block.modulation[1].weight)
    a = model.sample(3, lengths, condition, generator=torch.Generator().manual_seed(0))
    b = model.sample(3, lengths, condition + 1.0, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(a, b)  # the condition reaches the output


@pytest.mark.parametrize(("kind", "bad"), [("vector", (3, 3)), ("vector", (3, T, 2)), ("sequence", (3, 2)),
                                           ("sequence", (3, T + 1, 2)), ("sequence", (2, T, 2))])
def test_wrong_condition_shape_names_condition(kind: str, bad: tuple[int, ...]) -> None:
    model = make_model(kind, 2)
    with pytest.raises(ValueError, match="condition"):
        model.training_loss(torch.randn(3, T, D), lengths_mask([T] * 3), torch.randn(bad))
    with pytest.raises(ValueError, match="condition"):
        model.sample(3, torch.full((3,), T), torch.randn(bad))


def test_condition_presence_must_match_the_model() -> None:
    with pytest.raises(ValueError, match="condition"):
        make_model().sample(2, torch.tensor([T, T]), torch.randn(2, 2))
    with pytest.raises(ValueError, match="condition"):
        make_model("vector", 2).sample(2, torch.tensor([T, T]))
    with pytest.raises(ValueError, match="condition_kind"):
        make_model("image", 2)


def test_v_prediction_target_and_sampler_agree() -> None:
    schedule = NoiseSchedule(1000, 1e-4, 0.02, prediction="v_prediction")
    z0, noise, t = torch.randn(3, 5, 2), torch.randn(3, 5, 2), torch.tensor([0, 500, 999])
    ab = schedule.alphas_cumprod[t][:, None, None]
    torch.testing.assert_close(schedule.target(z0, noise, t), ab.sqrt() * noise - (1 - ab).sqrt() * z0)
    # z0 is recovered exactly from z_t and the true v: sqrt(ab) z_t - sqrt(1 - ab) v
    z_t = schedule.add_noise(z0, noise, t)
    torch.testing.assert_close(ab.sqrt() * z_t - (1 - ab).sqrt() * schedule.target(z0, noise, t), z0, atol=1e-5, rtol=0)
    model = make_model(prediction="v_prediction", train_steps=50)
    assert torch.isfinite(model.training_loss(torch.randn(2, T, D), lengths_mask([T, T]), None)["loss"])
    assert model.sample(2, torch.tensor([T, T]), generator=torch.Generator().manual_seed(0), options=DpmSolverOptions(4)).shape == (2, T, D)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_x0_clipping_bounds_the_implied_clean_latents(prediction: str) -> None:
    schedule = NoiseSchedule(1000, 1e-4, 0.02, prediction=prediction)
    z0, noise, t = 10 * torch.randn(4, 6, 2), torch.randn(4, 6, 2), torch.tensor([1, 200, 600, 999])
    z_t = schedule.add_noise(z0, noise, t)
    exact = schedule.target(z0, noise, t)
    clipped = schedule.clip_prediction(exact, z_t, t, limit=2.0)
    ab = schedule.alphas_cumprod[t][:, None, None]
    if prediction == "epsilon":
        implied = (z_t - (1 - ab).sqrt() * clipped) / ab.sqrt()
    else:
        implied = ab.sqrt() * z_t - (1 - ab).sqrt() * clipped
    torch.testing.assert_close(implied, z0.clamp(-2, 2), atol=1e-3, rtol=1e-3)
    unclipped = schedule.clip_prediction(exact, z_t, t, limit=1e6)
    torch.testing.assert_close(unclipped, exact, atol=1e-3, rtol=1e-3)


def test_sampling_with_x0_clip_stays_in_range() -> None:
    model = make_model(train_steps=50, x0_clip=0.5, clamp=None)
    with torch.no_grad():
        for block in model.ema.blocks:  # an untrained denoiser is near the identity: perturb it
            torch.nn.init.normal_(block.modulation[1].weight)
    z = model.sample(3, torch.full((3,), T), generator=torch.Generator().manual_seed(0), sampler="ddim", options=DdimOptions(5))
    assert z.abs().max() <= 0.5 + 1e-4
