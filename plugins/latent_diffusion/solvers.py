"""The reverse-process step rules: ancestral DDPM, DDIM (eta 0) and multistep DPM-Solver++ of order 2.

Written here instead of taken from diffusers: importing a diffusers scheduler costs 1.3 s (DDPM)
to 1.9 s (DPM-Solver++, which pulls scipy.stats) after torch, on every ``ldns sample``; these
rules are a page. Each gives what the diffusers scheduler of schedule.py's configuration gives
(tests/plugins/test_latent_diffusion_schedulers.py runs both): the same timesteps, the same
float32 coefficients, and for DDPM the same random draws in the same order.

- :class:`Ddpm`: every training step, t = S-1 .. 0; variance "fixed_small" (Ho et al. 2020).
- :class:`Ddim`: ``steps`` steps, trailing spacing t_k = round(S - k S/steps) - 1, each stepping
  to t - S // steps (1 at the end; Song et al. 2021, Lin et al. 2024).
- :class:`DpmSolver2M`: ``steps`` steps, t_k = round(k (S-1)/steps) from the top; first order at
  the first step and at the last (which lands on sigma 0), second order between (Lu et al. 2022).

Every rule takes the network's output (eps or v, ``prediction``) at timestep index ``i`` and the
current latents z (B, T, D) and returns the latents of the next timestep.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Ddim", "Ddpm", "DpmSolver2M", "predicted_clean"]


def predicted_clean(prediction: str, output: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor,
                    sigma: torch.Tensor) -> torch.Tensor:
    """The clean latents z_0 implied by ``output`` at z_t = alpha z_0 + sigma eps (alpha, sigma scalars
    or broadcastable): (z_t - sigma eps) / alpha for eps, alpha z_t - sigma v for v."""
    if prediction == "epsilon":
        return (z - sigma * output) / alpha
    return alpha * z - sigma * output


class Ddpm:
    """Ancestral DDPM over every training step; draws one noise tensor per step t > 0 from the generator."""

    def __init__(self, alphas_cumprod: torch.Tensor, prediction: str) -> None:
        self.alphas_cumprod = alphas_cumprod.float().cpu()  # (S,)
        self.prediction = prediction
        self.timesteps = list(range(len(alphas_cumprod) - 1, -1, -1))

    def step(self, i: int, output: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        t = self.timesteps[i]
        ab_t = self.alphas_cumprod[t]
        ab_prev = self.alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
        beta_prod_t, beta_prod_prev = 1 - ab_t, 1 - ab_prev
        alpha_t = ab_t / ab_prev
        beta_t = 1 - alpha_t
        z0 = predicted_clean(self.prediction, output, z, ab_t ** 0.5, beta_prod_t ** 0.5)  # (B, T, D)
        mean = (ab_prev ** 0.5 * beta_t / beta_prod_t) * z0 + (alpha_t ** 0.5 * beta_prod_prev / beta_prod_t) * z
        if t == 0:
            return mean
        noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)  # (B, T, D)
        variance = torch.clamp(beta_prod_prev / beta_prod_t * beta_t, min=1e-20)
        return mean + variance ** 0.5 * noise


class Ddim:
    """DDIM with trailing timestep spacing; ``eta`` 0 is deterministic, eta > 0 draws one noise tensor
    per step but the last from the generator (sigma_t = eta sqrt((1-ab_prev)/(1-ab_t) (1-ab_t/ab_prev)))."""

    def __init__(self, alphas_cumprod: torch.Tensor, prediction: str, steps: int, eta: float = 0.0) -> None:
        self.alphas_cumprod = alphas_cumprod.float().cpu()  # (S,)
        self.prediction = prediction
        self.eta = eta
        train_steps = len(alphas_cumprod)
        self.timesteps = [int(np.round(train_steps - k * (train_steps / steps))) - 1 for k in range(steps)]
        self.stride = train_steps // steps

    def step(self, i: int, output: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        t = self.timesteps[i]
        ab_t = self.alphas_cumprod[t]
        ab_prev = self.alphas_cumprod[t - self.stride] if t >= self.stride else torch.tensor(1.0)
        a, s = ab_t ** 0.5, (1 - ab_t) ** 0.5
        z0 = predicted_clean(self.prediction, output, z, a, s)  # (B, T, D)
        eps = output if self.prediction == "epsilon" else a * output + s * z  # (B, T, D)
        sigma = self.eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)) ** 0.5
        z_prev = ab_prev ** 0.5 * z0 + (1 - ab_prev - sigma ** 2).clamp_min(0.0) ** 0.5 * eps  # (B, T, D)
        if sigma == 0:
            return z_prev
        return z_prev + sigma * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)


class DpmSolver2M:
    """Multistep DPM-Solver++ of order 2 in data prediction; keeps the previous step's z_0 estimate,
    so one instance samples once. ``sde``: the SDE form (diffusers' "sde-dpmsolver++"), which
    scales the z_0 terms by 1 - e^{-2h} instead of 1 - e^{-h} and adds sigma_t sqrt(1 - e^{-2h})
    times fresh noise from the generator at every step but the last."""

    def __init__(self, alphas_cumprod: torch.Tensor, prediction: str, steps: int, *, sde: bool = False) -> None:
        ab = alphas_cumprod.float().cpu()  # (S,)
        self.prediction = prediction
        self.sde = sde
        timesteps = np.linspace(0, len(ab) - 1, steps + 1).round()[::-1][:-1].astype(np.int64)
        self.timesteps = [int(t) for t in timesteps]
        sigmas = ((1 - ab) / ab) ** 0.5  # (S,) noise-to-signal ratio of each training step
        sigma = torch.cat([sigmas[torch.from_numpy(timesteps)], torch.zeros(1)])  # (steps + 1,), ends at 0
        self.alpha = 1 / (sigma ** 2 + 1) ** 0.5  # (steps + 1,)
        self.sigma = sigma * self.alpha
        self.log_snr = torch.log(self.alpha) - torch.log(self.sigma)  # lambda; +inf at the end
        self._previous: torch.Tensor | None = None

    def step(self, i: int, output: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        z0 = predicted_clean(self.prediction, output, z, self.alpha[i], self.sigma[i])  # (B, T, D)
        previous, self._previous = self._previous, z0
        h = self.log_snr[i + 1] - self.log_snr[i]
        ratio = self.sigma[i + 1] / self.sigma[i]
        if self.sde:
            decay = self.alpha[i + 1] * (torch.exp(-2.0 * h) - 1.0)
            ratio = ratio * torch.exp(-h)
        else:
            decay = self.alpha[i + 1] * (torch.exp(-h) - 1.0)
        if previous is None or i == len(self.timesteps) - 1:  # first order: first step, and the step to sigma 0
            z_next = ratio * z - decay * z0
        else:
            r = (self.log_snr[i] - self.log_snr[i - 1]) / h
            difference = (1.0 / r) * (z0 - previous)  # (B, T, D)
            z_next = ratio * z - decay * z0 - 0.5 * decay * difference
        if not self.sde or i == len(self.timesteps) - 1:  # the last step lands on sigma 0: no noise
            return z_next
        noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)  # (B, T, D)
        return z_next + self.sigma[i + 1] * (1.0 - torch.exp(-2.0 * h)) ** 0.5 * noise

