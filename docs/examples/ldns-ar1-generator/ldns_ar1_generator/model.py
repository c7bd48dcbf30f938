"""A closed-form AR(1) Gaussian generator of (normalised) latents, one process per channel d::

    z_0 ~ N(mu, s0^2),    z_t = mu + phi (z_{t-1} - mu) + s e_t,    e_t ~ N(0, 1)

``fit`` computes every parameter from the training latents in closed form (``closed_form = True``:
no optimiser, no training epochs): mu the mean over valid bins, phi the least-squares slope of
z_t - mu on z_{t-1} - mu over consecutive valid bins (clipped to [-max_phi, max_phi]), s the
residual std, s0 the std of the first bins. The parameters are buffers, so they are saved with
the run and loaded back. ``training_loss`` is the exact negative log-likelihood per valid bin
(the validation figure). One sampler, ``ancestral`` (the base class's default), draws the
process forward in time from the generator it is given.

A baseline for the diffusion model: it captures each latent's mean, scale and one-step
autocorrelation, nothing across channels. Unconditional only.

Usage::

    import torch
    from ldns_ar1_generator.model import Ar1Gaussian

    model = Ar1Gaussian(latent_dim=8)
    model.fit(latents, mask, None)                                  # (B, T, 8), (B, T)
    z = model.sample(16, torch.full((16,), 100), generator=torch.Generator().manual_seed(0))  # (16, 100, 8)

In a spec: ``generator: {type: ar1}`` (``train.generator`` is not used: fitting is one pass).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch

from ldns_framework import LatentGenerator, LdnsError, option


@attrs.frozen
class Ar1Config:
    """Options of the ``ar1`` generator."""

    max_phi: float = option(0.999, doc="phi is clipped to [-max_phi, max_phi] so the process stays stationary.",
                            gt=0, lt=1)
    min_std: float = option(1.0e-3, doc="Lower bound of the fitted standard deviations.", gt=0)


class Ar1Gaussian(LatentGenerator):
    """Per-channel AR(1) Gaussian processes, fitted in closed form."""

    config_class = Ar1Config
    closed_form = True

    def __init__(self, config: Ar1Config | None = None, *, latent_dim: int, condition_kind: str | None = None,
                 condition_dim: int = 0) -> None:
        super().__init__(config, latent_dim=latent_dim, condition_kind=condition_kind, condition_dim=condition_dim)
        if condition_kind is not None:
            raise LdnsError(f"generator ar1: unconditional only, got a {condition_kind} condition "
                            f"(use conditioner type none)")
        for name, value in (("mu", 0.0), ("phi", 0.0), ("std", 1.0), ("first_std", 1.0)):
            self.register_buffer(name, torch.full((latent_dim,), value))

    def fit(self, latents: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor | None) -> dict[str, float]:
        """Closed-form parameters from all training latents (B, T, D) and their mask (B, T)."""
        z = latents.double()
        mu = z[mask].mean(0)  # (D,)
        x = z - mu  # (B, T, D)
        pairs = mask[:, 1:] & mask[:, :-1]  # (B, T-1): bin t and t-1 both valid
        before, after = x[:, :-1][pairs], x[:, 1:][pairs]  # (M, D)
        phi = ((before * after).sum(0) / before.pow(2).sum(0).clamp_min(1e-12))
        phi = phi.clamp(-self.config.max_phi, self.config.max_phi)
        std = (after - phi * before).pow(2).mean(0).sqrt().clamp_min(self.config.min_std)
        first_std = x[:, 0][mask[:, 0]].pow(2).mean(0).sqrt().clamp_min(self.config.min_std)
        for name, value in (("mu", mu), ("phi", phi), ("std", std), ("first_std", first_std)):
            getattr(self, name).copy_(value.to(self.mu))
        return {"phi_mean": float(phi.mean()), "std_mean": float(std.mean()), "pairs": int(pairs.sum())}

    def training_loss(self, latents: torch.Tensor, mask: torch.Tensor,
                      condition: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Exact Gaussian negative log-likelihood per valid bin and channel."""
        x = latents - self.mu  # (B, T, D)
        mean = torch.cat([torch.zeros_like(x[:, :1]), self.phi * x[:, :-1]], dim=1)  # (B, T, D)
        scale = torch.cat([self.first_std.expand_as(x[:, :1]), self.std.expand_as(x[:, 1:])], dim=1)
        nll = 0.5 * ((x - mean) / scale).pow(2) + scale.log() + 0.5 * math.log(2 * math.pi)  # (B, T, D)
        nll = torch.where(mask[..., None], nll, torch.zeros_like(nll))
        return {"loss": nll.sum() / (mask.sum() * self.latent_dim).clamp_min(1)}

    def sample(self, n: int, lengths: torch.Tensor, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               options: Any = None) -> torch.Tensor:
        """Draw (n, max(lengths), D) latents forward in time; bins past a trial's length are zero."""
        if sampler is not None and sampler not in self.samplers:
            raise LdnsError(f"sampler: unknown sampler {sampler!r}; ar1 has {', '.join(self.samplers)}")
        if condition is not None:
            raise LdnsError("condition: generator ar1 is unconditional")
        length = int(lengths.max())
        noise = torch.randn(n, length, self.latent_dim, generator=generator, device=self.mu.device)  # (n, T, D)
        x = torch.empty_like(noise)
        x[:, 0] = self.first_std * noise[:, 0]
        for t in range(1, length):
            x[:, t] = self.phi * x[:, t - 1] + self.std * noise[:, t]
        mask = torch.arange(length, device=x.device)[None, :] < lengths.to(x.device)[:, None]  # (n, T)
        return (x + self.mu) * mask[..., None]
