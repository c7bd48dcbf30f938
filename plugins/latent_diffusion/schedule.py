"""The DDPM noise schedule and the samplers (METHOD.md Sec. 3; LDNS_NOTES 1.5 and 1.8).

Forward process (Ho et al. 2020), linear betas over ``train_steps`` steps (reference: 1000 steps,
1e-4 -> 0.02):

    alpha_bar_t = prod_{s <= t} (1 - beta_s),      z_t = sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) eps.

The network predicts eps (the reference) or v = sqrt(ab) eps - sqrt(1 - ab) z_0 (Salimans & Ho
2022), which at high noise is close to -z_0, so errors of an under-trained network are not
amplified by 1/sqrt(ab) into the clean latents. Samplers, all from diffusers (imported on first
use: it takes seconds), configured with the same betas and prediction target and no clipping;
:data:`SAMPLERS` maps each name to its options class, the first being the default:

- ``dpm-solver++``: multistep DPM-Solver++ of order 2 (Lu et al. 2022), ``steps`` steps.
- ``ddim``: deterministic DDIM (eta 0), ``steps`` steps, "trailing" spacing so the first step
  starts at t = train_steps - 1 (Lin et al. 2024).
- ``ddpm``: ancestral DDPM over all training steps, variance "fixed_small" (the reference); no options.

Every random draw (initial noise, DDPM's per-step noise) comes from the caller's torch.Generator.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import attrs
import torch

from ldns_framework import option

__all__ = ["SAMPLERS", "DdimOptions", "DdpmOptions", "DpmSolverOptions", "NoiseSchedule", "make_scheduler", "run_sampler", "sampler_steps"]


@attrs.frozen
class DpmSolverOptions:
    """Multistep DPM-Solver++ of order 2 (Lu et al. 2022): few steps, the fast default."""

    steps: int = option(25, doc="Solver steps (denoiser evaluations), at most the generator's train_steps.", ge=1)


@attrs.frozen
class DdimOptions:
    """Deterministic DDIM (eta 0) with trailing timestep spacing (Song et al. 2021; Lin et al. 2024)."""

    steps: int = option(25, doc="DDIM steps (denoiser evaluations), at most the generator's train_steps.", ge=1)


@attrs.frozen
class DdpmOptions:
    """Ancestral DDPM over every training step (the reference; Ho et al. 2020): nothing to choose."""


#: Sampler name -> options class; the first is the default (the generator's ``samplers``).
SAMPLERS: dict[str, type] = {"dpm-solver++": DpmSolverOptions, "ddim": DdimOptions, "ddpm": DdpmOptions}
PREDICTIONS = ("epsilon", "v_prediction")

#: denoise(z_t (B, T, D), t (B,) long) -> predicted eps or v (B, T, D)
DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class NoiseSchedule:
    """Linear-beta DDPM schedule; ``betas`` and ``alphas_cumprod`` are float32 (train_steps,) tensors
    computed exactly as diffusers does, so training and sampling share one schedule."""

    def __init__(self, train_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 prediction: str = "epsilon") -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction: expected one of {', '.join(map(repr, PREDICTIONS))}, got {prediction!r}")
        self.train_steps, self.beta_start, self.beta_end = train_steps, beta_start, beta_end
        self.prediction = prediction
        self.betas = torch.linspace(beta_start, beta_end, train_steps, dtype=torch.float32)  # (S,)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)  # (S,)
        self._on_device: dict[torch.device, torch.Tensor] = {}  # alphas_cumprod copies, one per device

    def _alpha_bar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if like.device not in self._on_device:
            self._on_device[like.device] = self.alphas_cumprod.to(like.device)
        return self._on_device[like.device][t].to(like.dtype)[:, None, None]  # (B, 1, 1)

    def add_noise(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z0, noise (B, T, D), t (B,) long -> z_t = sqrt(ab_t) z0 + sqrt(1 - ab_t) noise, (B, T, D)."""
        ab = self._alpha_bar(t, z0)  # (B, 1, 1)
        return ab.sqrt() * z0 + (1.0 - ab).sqrt() * noise

    def target(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network learns to predict: eps, or v = sqrt(ab) eps - sqrt(1 - ab) z0 (Salimans & Ho 2022)."""
        if self.prediction == "epsilon":
            return noise
        ab = self._alpha_bar(t, z0)  # (B, 1, 1)
        return ab.sqrt() * noise - (1.0 - ab).sqrt() * z0

    def clip_prediction(self, output: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor, limit: float) -> torch.Tensor:
        """The network output re-expressed so that its implied clean latents lie in [-limit, limit].

        output, z_t (B, T, D), t (B,): z_0 = (z_t - sqrt(1 - ab) eps) / sqrt(ab) for eps, or
        sqrt(ab) z_t - sqrt(1 - ab) v for v; z_0 is clipped and the output recomputed from it,
        so every sampler sees the clipped prediction ("thresholding" to the training range).
        """
        ab = self._alpha_bar(t, z_t)  # (B, 1, 1)
        a, s = ab.sqrt(), (1.0 - ab).sqrt()
        if self.prediction == "epsilon":
            z0 = ((z_t - s * output) / a).clamp(-limit, limit)  # (B, T, D)
            return (z_t - a * z0) / s
        z0 = (a * z_t - s * output).clamp(-limit, limit)  # (B, T, D)
        return (a * z_t - z0) / s

    def diffusers_options(self) -> dict[str, Any]:
        """The keyword arguments every diffusers scheduler gets."""
        return {"num_train_timesteps": self.train_steps, "beta_start": self.beta_start, "beta_end": self.beta_end,
                "beta_schedule": "linear", "prediction_type": self.prediction}


def sampler_steps(sampler: str, options: Any, train_steps: int) -> int:
    """Denoiser evaluations of ``sampler`` with ``options`` (an instance of ``SAMPLERS[sampler]``):
    ``options.steps``, or every training step for ddpm; a ValueError names a bad sampler, options or steps."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler: expected one of {', '.join(map(repr, SAMPLERS))}, got {sampler!r}")
    if not isinstance(options, SAMPLERS[sampler]):
        raise ValueError(f"options: expected a {SAMPLERS[sampler].__name__} for sampler {sampler!r}, got {options!r}")
    steps = train_steps if sampler == "ddpm" else options.steps
    if not 1 <= steps <= train_steps:
        raise ValueError(f"steps: expected 1 <= steps <= train_steps={train_steps}, got {steps}")
    return steps


def make_scheduler(sampler: str, schedule: NoiseSchedule, options: Any = None, device: torch.device | str = "cpu") -> Any:
    """A diffusers scheduler for ``sampler`` (options: an instance of ``SAMPLERS[sampler]``, None =
    its defaults) with its timesteps set (:func:`sampler_steps`)."""
    options = SAMPLERS[sampler]() if options is None and sampler in SAMPLERS else options
    steps = sampler_steps(sampler, options, schedule.train_steps)
    common = schedule.diffusers_options()
    if sampler == "ddpm":
        from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

        scheduler = DDPMScheduler(**common, variance_type="fixed_small", clip_sample=False)
    elif sampler == "ddim":
        from diffusers.schedulers.scheduling_ddim import DDIMScheduler

        scheduler = DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    else:
        from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler

        scheduler = DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                                thresholding=False, lower_order_final=True)
    with warnings.catch_warnings():  # diffusers' np.array(tensor) trips a numpy 2 DeprecationWarning
        warnings.filterwarnings("ignore", message=".*__array__ implementation", category=DeprecationWarning)
        scheduler.set_timesteps(steps, device=device)
    return scheduler


def run_sampler(denoise: DenoiseFn, shape: tuple[int, int, int], *, schedule: NoiseSchedule, sampler: str,
                options: Any = None, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Integrate the reverse process from z_T ~ N(0, I) of ``shape`` (B, T, D); returns z_0 (B, T, D) float32."""
    scheduler = make_scheduler(sampler, schedule, options, device)
    z = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)  # (B, T, D)
    z = z * scheduler.init_noise_sigma  # 1 for these variance-preserving schedulers
    for t in scheduler.timesteps:
        t_batch = torch.full((shape[0],), int(t), device=device, dtype=torch.long)  # (B,)
        eps = denoise(scheduler.scale_model_input(z, t), t_batch)  # (B, T, D)
        z = scheduler.step(eps, t, z, generator=generator, return_dict=False)[0]  # (B, T, D)
    return z
