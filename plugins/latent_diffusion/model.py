"""The ``latent-diffusion`` generator: DDPM on normalised latents with the LDNS S4 denoiser
(Kapoor, Schulz et al. 2024, Sec. 3.2; METHOD.md Sec. 3-4; LDNS_NOTES 1.5, 1.6, 1.8).

Training (METHOD.md Sec. 3): t ~ U{0 .. train_steps-1}, eps ~ N(0, I), z_t = sqrt(ab_t) z_0 +
sqrt(1 - ab_t) eps, loss = MSE or SmoothL1(eps_theta(z_t, t, c), eps) over valid bins. After each
optimiser step the training engine calls :meth:`LatentDiffusion.after_optimizer_step` (the EMA
update); :meth:`sample` uses the EMA weights, with one of the declared :attr:`~LatentDiffusion.samplers`:
dpm-solver++ (the default), ddim, or the reference's 1000-step ddpm (schedule.py), each with a
classifier-free ``guidance`` scale (guidance.py; needs ``condition_dropout`` > 0 in training).

Variable length: ``mask_channel`` alone keeps trials right-padded and makes the denoiser blind to
padding; with ``centre`` as well, each trial's latents are centred in the training window with
edge-replicated padding and the denoiser sees the whole window (the reference human setting,
LDNS_NOTES 1.6); samples are cut back to their lengths either way.

Usage::

    import torch
    from ldns_plugins.latent_diffusion.model import LatentDiffusion, LatentDiffusionConfig
    from ldns_plugins.latent_diffusion.schedule import DdimOptions

    model = LatentDiffusion(LatentDiffusionConfig(hidden=32, blocks=2), latent_dim=8)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    latents = torch.randn(64, 128, 8)                     # (B, T, D), normalised
    mask = torch.ones(64, 128, dtype=torch.bool)           # (B, T), False = padding

    for step in range(200):
        loss = model.training_loss(latents, mask, None)["loss"]
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        model.after_optimizer_step()                       # EMA update, after every optimiser step

    lengths = torch.full((16,), 256)                       # S4 is length-agnostic: 2x training length
    gen = torch.Generator().manual_seed(0)
    fast = model.sample(16, lengths, generator=gen)        # (16, 256, 8): dpm-solver++, 25 steps
    few = model.sample(16, lengths, generator=gen, sampler="ddim", options=DdimOptions(steps=10))
    ref = model.sample(16, lengths, generator=gen, sampler="ddpm")  # all 1000 ancestral steps

    # classifier-free guidance: train a conditional model with condition_dropout > 0, then w != 1
    angles = LatentDiffusion(LatentDiffusionConfig(condition_dropout=0.1), latent_dim=8,
                             condition_kind="vector", condition_dim=2)
    guided = angles.sample(16, lengths, torch.randn(16, 2), gen, sampler="ddim",
                           options=LatentDiffusion.samplers["ddim"](steps=25, guidance=2.0))
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from ldns_framework import LatentGenerator, LdnsError
from ldns_plugins.latent_diffusion.centring import centre, centred_mask, uncentre
from ldns_plugins.latent_diffusion.config import GUIDED_SAMPLERS, NO_GUIDANCE, LatentDiffusionConfig
from ldns_plugins.latent_diffusion.denoiser import Denoiser
from ldns_plugins.latent_diffusion.guidance import guidance_of, guided
from ldns_plugins.latent_diffusion.schedule import NoiseSchedule, run_sampler, sampler_steps

__all__ = ["InputError", "LatentDiffusion", "LatentDiffusionConfig", "ema_decay"]

CONDITION_KINDS = (None, "vector", "sequence")


class InputError(LdnsError, ValueError):
    """A wrong argument of :meth:`LatentDiffusion.sample` or ``training_loss``; the message starts with
    its name (``condition: ...``). A ValueError for Python callers, one clean line in the CLI."""


def ema_decay(updates_so_far: int, *, power: float = 2.0 / 3.0, max_decay: float = 0.9999) -> float:
    """EMA decay of the next update, as diffusers' EMAModel (0.3.0, the reference; inv_gamma 1):
    with s = updates_so_far - 1, decay = 0 for s <= 0 (the first two updates copy the live weights),
    else min(max_decay, 1 - (1 + s)^(-power))."""
    s = updates_so_far - 1
    if s <= 0:
        return 0.0
    return min(max_decay, 1.0 - (1.0 + s) ** (-power))


def _as_buffers(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose parameters are buffers: same forward, same state_dict key names,
    not returned by ``parameters()`` (so no optimiser, weight decay or gradient clipping touches it)."""
    frozen = copy.deepcopy(module)
    for sub in frozen.modules():
        for name, param in list(sub._parameters.items()):
            del sub._parameters[name]
            if param is not None:
                sub.register_buffer(name, param.detach().clone())
    return frozen


class LatentDiffusion(LatentGenerator):
    """DDPM with an S4 denoiser on normalised latents (B, T, D); see the module docstring.

    ``condition_kind`` "vector" takes a condition (B, condition_dim) added to the timestep
    embedding; "sequence" takes (B, T, condition_dim) concatenated as input channels.

    Weights: ``denoiser.*`` are the trained parameters; ``ema.*`` holds their EMA as buffers with
    the same names (so ``state_dict`` saves and restores both) and ``ema_updates`` counts updates.
    """

    config_class = LatentDiffusionConfig
    tags = frozenset({"supports_mask", "length_agnostic"})
    #: dpm-solver++ (default, ``steps``), ddim (``steps``), ddpm (all train_steps); each with ``guidance``.
    samplers = GUIDED_SAMPLERS

    def __init__(self, config: LatentDiffusionConfig | None = None, *, latent_dim: int,
                 condition_kind: str | None = None, condition_dim: int = 0) -> None:
        super().__init__(config, latent_dim=latent_dim, condition_kind=condition_kind, condition_dim=condition_dim)
        if condition_kind not in CONDITION_KINDS:
            raise ValueError(f"condition_kind: expected None, 'vector' or 'sequence', got {condition_kind!r}")
        if condition_kind is not None and condition_dim < 1:
            raise ValueError(f"condition_dim: expected >= 1 for a {condition_kind} condition, got {condition_dim}")
        c = self.config
        self.schedule = NoiseSchedule(c.train_steps, c.beta_start, c.beta_end, c.prediction)
        self.denoiser = Denoiser(latent_dim, hidden=c.hidden, blocks=c.blocks, state_size=c.state_size,
                                 vector_dim=condition_dim if condition_kind == "vector" else 0,
                                 sequence_dim=condition_dim if condition_kind == "sequence" else 0,
                                 mask_channel=c.mask_channel, padding_blind=not c.centre,
                                 null_condition=self._drops_conditions)
        self.ema = _as_buffers(self.denoiser)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        if c.centre:  # the window trials are centred in: the longest training batch (0 before training)
            self.register_buffer("window", torch.zeros((), dtype=torch.long))

    # --- conditions -------------------------------------------------------------------------------

    @property
    def _drops_conditions(self) -> bool:
        """True when training drops conditions (classifier-free guidance): a conditional model with
        condition_dropout > 0; an unconditional model has nothing to drop and ignores the option."""
        return self.condition_kind is not None and self.config.condition_dropout > 0

    def _check_condition(self, condition: torch.Tensor | None, n: int, length: int) -> dict[str, torch.Tensor]:
        """Denoiser keyword arguments for ``condition``; an InputError naming ``condition`` on a mismatch."""
        kind, dim = self.condition_kind, self.condition_dim
        if kind is None:
            if condition is not None:
                raise InputError(f"condition: this latent-diffusion model is unconditional, got a condition of "
                                 f"shape {tuple(condition.shape)}")
            return {}
        expected = (n, dim) if kind == "vector" else (n, length, dim)
        if condition is None:
            raise InputError(f"condition: this latent-diffusion model needs a {kind} condition of shape {expected}")
        if not isinstance(condition, torch.Tensor) or tuple(condition.shape) != expected:
            shape = tuple(condition.shape) if isinstance(condition, torch.Tensor) else type(condition).__name__
            raise InputError(f"condition: expected a {kind} condition of shape {expected} "
                             f"({'trials, dim' if kind == 'vector' else 'trials, time, dim'}), got {shape}")
        return {kind: condition.float()}

    # --- training ---------------------------------------------------------------------------------

    def training_loss(self, latents: torch.Tensor, mask: torch.Tensor,
                      condition: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """latents (B, T, D) normalised, mask (B, T) bool -> {"loss": eps- or v-prediction loss averaged over
        valid (trial, bin, channel) entries}. t and eps come from the global torch RNG (METHOD.md Sec. 3),
        and so, when ``condition_dropout`` > 0 (only then), does each trial's condition dropout.
        With ``centre`` the trials are first centred in the T-bin window (edge-replicated)."""
        batch, length, _ = latents.shape
        kwargs = self._check_condition(condition, batch, length)
        if self.config.centre:
            self.window.fill_(max(int(self.window), length))
            lengths = mask.sum(1)  # (B,)
            latents = centre(latents, lengths, length)  # (B, T, D)
            kwargs = {k: centre(v, lengths, length) if k == "sequence" else v for k, v in kwargs.items()}
            mask = centred_mask(lengths, length)  # (B, T)
        t = torch.randint(0, self.config.train_steps, (batch,), device=latents.device)  # (B,)
        noise = torch.randn_like(latents)  # (B, T, D)
        noisy = self.schedule.add_noise(latents, noise, t)  # (B, T, D)
        if self._drops_conditions:
            kwargs["dropped"] = torch.rand(batch, device=latents.device) < self.config.condition_dropout  # (B,)
        predicted = self.denoiser(noisy, t, mask=mask if self.config.mask_channel else None, **kwargs)  # (B, T, D)
        target = self.schedule.target(latents, noise, t)  # (B, T, D): eps or v
        if self.config.loss == "mse":
            per_entry = F.mse_loss(predicted, target, reduction="none")  # (B, T, D)
        else:
            per_entry = F.smooth_l1_loss(predicted, target, reduction="none", beta=self.config.smooth_l1_beta)
        valid = mask[..., None].bool()  # (B, T, 1)
        loss = per_entry.masked_fill(~valid, 0.0).sum() / (valid.sum() * self.latent_dim).clamp_min(1)
        return {"loss": loss}

    @torch.no_grad()
    def after_optimizer_step(self) -> float:
        """One EMA step, ema <- d ema + (1 - d) live with d = :func:`ema_decay` (updates so far);
        the training engine calls it after every optimiser step. Returns d."""
        decay = ema_decay(int(self.ema_updates), power=self.config.ema_power, max_decay=self.config.ema_max_decay)
        live = dict(self.denoiser.named_parameters())
        for name, average in self.ema.named_buffers():
            average.lerp_(live[name].detach().to(average.dtype), 1.0 - decay)
        self.ema_updates += 1
        return decay

    # --- sampling ---------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, lengths: torch.Tensor, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               options: Any = None) -> torch.Tensor:
        """Draw ``n`` normalised latent trials with the EMA weights -> (n, max(lengths), D) float32,
        zero past each trial's length, clamped to [-clamp, clamp] when ``clamp`` is set.

        lengths (n,) long; condition (n, dim) for a vector condition or (n, max(lengths), dim) for a
        sequence condition. ``sampler`` is a key of :attr:`samplers` (None: dpm-solver++) and
        ``options`` an instance of its options class (None: its defaults); ddpm always runs all
        train_steps (the reference); ``options.guidance`` != 1 runs classifier-free guidance.
        Every draw comes from ``generator`` (the global RNG when None). With ``mask_channel`` the
        denoiser sees each trial's mask; without it all trials are sampled at max(lengths) and cut
        (LDNS_NOTES 1.6, 1.8). With ``centre`` every trial is sampled centred in the training window
        (or max(lengths) when longer), so a trial's draw never depends on the other trials' lengths.
        """
        sampler = next(iter(self.samplers)) if sampler is None else sampler
        options = self.samplers[sampler]() if options is None and sampler in self.samplers else options
        try:
            sampler_steps(sampler, options, self.config.train_steps)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        scale = guidance_of(options)
        self._check_guidance(scale)
        lengths = torch.as_tensor(lengths, dtype=torch.long).reshape(-1).cpu()
        if lengths.numel() != n or n < 1 or int(lengths.min()) < 1:
            raise InputError(f"lengths: expected {n} lengths >= 1 (one per trial), got {lengths.tolist()}")
        length = int(lengths.max())
        kwargs = self._check_condition(condition, n, length)
        device = self.ema_updates.device
        window = max(int(self.window), length) if self.config.centre else length
        if self.config.centre:
            mask = centred_mask(lengths, window)  # (n, W)
            kwargs = {k: centre(v, lengths, window) if k == "sequence" else v for k, v in kwargs.items()}
        else:
            mask = torch.arange(length)[None, :] < lengths[:, None]  # (n, T)
        mask = mask.to(device)
        kwargs = {k: v.to(device) for k, v in kwargs.items()}
        given_mask = mask if self.config.mask_channel else None

        def doubled(z: torch.Tensor, t: torch.Tensor, dropped: torch.Tensor) -> torch.Tensor:
            """One denoiser call on the batch twice, the second copy's conditions dropped -> (2n, W, D)."""
            both_mask = None if given_mask is None else given_mask.repeat(2, 1)  # (2n, W)
            both_conditions = {k: torch.cat([v, v]) for k, v in kwargs.items()}
            return self.ema(torch.cat([z, z]), torch.cat([t, t]), mask=both_mask, dropped=dropped, **both_conditions)

        def denoise(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if scale == NO_GUIDANCE:
                output = self.ema(z, t, mask=given_mask, **kwargs)  # (n, W, D)
            else:
                output = guided(lambda dropped: doubled(z, t, dropped), n, scale, device)  # (n, W, D)
            if self.config.x0_clip is None:
                return output
            return self.schedule.clip_prediction(output, z, t, self.config.x0_clip)

        was_training = self.training
        self.eval()
        try:
            # eval mode, no grad: each S4D layer computes its kernel once per length (ldns_framework.nn)
            z = run_sampler(denoise, (n, window, self.latent_dim), schedule=self.schedule, sampler=sampler,
                            options=options, generator=generator, device=device)  # (n, W, D)
            if self.config.centre:
                latents = uncentre(z, lengths.to(device)).float()  # (n, T, D): zero past each length
            else:
                latents = (z * mask[..., None]).float()  # (n, T, D): zero past each length
        finally:
            self.train(was_training)
        if self.config.clamp is not None:
            latents = latents.clamp(-self.config.clamp, self.config.clamp)
        return latents

    def _check_guidance(self, scale: float) -> None:
        """Guidance needs an unconditional mode: a conditional model trained with condition dropout."""
        if scale == NO_GUIDANCE:
            return
        if self.condition_kind is None:
            raise InputError(f"guidance: this latent-diffusion model is unconditional, so there is nothing to "
                             f"guide; use guidance 1, got {scale:g}")
        if not self._drops_conditions:
            raise InputError(f"guidance: this model was trained without condition dropout (condition_dropout: 0), "
                             f"so it has no unconditional mode to guide with; use guidance 1 or retrain with "
                             f"condition_dropout > 0 (e.g. 0.1), got {scale:g}")

    @classmethod
    def describe_sampler(cls, sampler: str, options: Any) -> str:
        """As the base class, leaving out ``guidance`` when it is 1 (no guidance): ``ddim (steps=10, eta=0.0)``."""
        if attrs.has(type(options)) and "guidance" in attrs.fields_dict(type(options)) and \
                guidance_of(options) == NO_GUIDANCE:
            plain = attrs.asdict(options)
            del plain["guidance"]
            options = type(options).__mro__[1](**plain)  # the schedule's options class it extends
        return super().describe_sampler(sampler, options)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, condition_kind={self.condition_kind}, condition_dim={self.condition_dim}"
