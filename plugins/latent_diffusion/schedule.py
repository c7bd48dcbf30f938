"""The DDPM noise schedule and the samplers (METHOD.md Sec. 3; LDNS_NOTES 1.5 and 1.8).

Forward process (Ho et al. 2020), linear betas over ``train_steps`` steps (reference: 1000 steps,
1e-4 -> 0.02):

    alpha_bar_t = prod_{s <= t} (1 - beta_s),      z_t = sqrt(alpha_bar_t) z_0 + sqrt(1 - alpha_bar_t) eps.

The network predicts eps (the reference) or v = sqrt(ab) eps - sqrt(1 - ab) z_0 (Salimans & Ho
2022), which at high noise is close to -z_0, so errors of an under-trained network are not
amplified by 1/sqrt(ab) into the clean latents. Samplers (their step rules in solvers.py, each
giving what the diffusers scheduler of the same name gives with these betas, this prediction
target and no clipping); :data:`SAMPLERS` maps each name to its options class, the first being the default:

- ``dpm-solver++``: multistep DPM-Solver++ of order 2 (Lu et al. 2022), ``steps`` steps; with
  ``sde: true`` its SDE form (diffusers' "sde-dpmsolver++"), which draws fresh noise every step.
- ``ddim``: DDIM, ``steps`` steps, "trailing" spacing so the first step starts at
  t = train_steps - 1 (Lin et al. 2024); deterministic at ``eta`` 0, ancestral at 1.
- ``ddpm``: ancestral DDPM over all training steps, variance "fixed_small" (the reference); no options.

Every random draw (initial noise, the stochastic samplers' per-step noise) comes from the caller's
torch.Generator.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ldns_plugins.latent_diffusion.options import SAMPLERS, DdimOptions, DdpmOptions, DpmSolverOptions
from ldns_plugins.latent_diffusion.solvers import Ddim, Ddpm, DpmSolver2M, predicted_clean

__all__ = ["SAMPLERS", "DdimOptions", "DdpmOptions", "DpmSolverOptions", "NoiseSchedule", "Solver", "make_solver",
           "run_sampler", "sampler_steps"]


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
        z0 = predicted_clean(self.prediction, output, z_t, a, s).clamp(-limit, limit)  # (B, T, D)
        if self.prediction == "epsilon":
            return (z_t - a * z0) / s
        return (a * z_t - z0) / s


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


Solver = Ddpm | Ddim | DpmSolver2M


def make_solver(sampler: str, schedule: NoiseSchedule, options: Any = None) -> Solver:
    """The step rule of ``sampler`` (options: an instance of ``SAMPLERS[sampler]``, None = its
    defaults) on ``schedule``, its timesteps set (:func:`sampler_steps`); one instance samples once."""
    options = SAMPLERS[sampler]() if options is None and sampler in SAMPLERS else options
    steps = sampler_steps(sampler, options, schedule.train_steps)
    if sampler == "ddpm":
        return Ddpm(schedule.alphas_cumprod, schedule.prediction)
    if sampler == "ddim":
        return Ddim(schedule.alphas_cumprod, schedule.prediction, steps, options.eta)
    return DpmSolver2M(schedule.alphas_cumprod, schedule.prediction, steps, sde=options.sde)


def run_sampler(denoise: DenoiseFn, shape: tuple[int, int, int], *, schedule: NoiseSchedule, sampler: str,
                options: Any = None, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Integrate the reverse process from z_T ~ N(0, I) of ``shape`` (B, T, D); returns z_0 (B, T, D) float32."""
    solver = make_solver(sampler, schedule, options)
    z = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)  # (B, T, D)
    for i, t in enumerate(solver.timesteps):
        t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)  # (B,)
        z = solver.step(i, denoise(z, t_batch), z, generator)  # (B, T, D)
    return z
