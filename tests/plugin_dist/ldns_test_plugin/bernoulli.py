"""Bernoulli observation model: a bin holds a spike with probability 1 - exp(-rate)."""

from __future__ import annotations

import attrs
import torch

from ldns_framework import ObservationModel, option


@attrs.frozen
class BernoulliConfig:
    eps: float = option(1.0e-6, doc="Probabilities are kept in [eps, 1 - eps].", gt=0, lt=0.5)


class BernoulliObservation(ObservationModel):
    config_class = BernoulliConfig

    def _p(self, rates: torch.Tensor) -> torch.Tensor:
        return (-torch.expm1(-rates.clamp_min(0.0))).clamp(self.config.eps, 1 - self.config.eps)

    def log_prob(self, counts, rates, mask):
        p = self._p(rates)
        per_bin = torch.where(counts > 0, torch.log(p), torch.log1p(-p))  # (B, T, N)
        per_bin = torch.where(counts > 1, torch.full_like(per_bin, -torch.inf), per_bin)
        return (per_bin * mask[..., None]).nan_to_num(0.0, neginf=-torch.inf).sum(dim=(1, 2))

    def sample(self, rates, mask, generator=None):
        return torch.bernoulli(self._p(rates), generator=generator) * mask[..., None]
