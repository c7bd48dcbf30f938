"""Negative-binomial observation model: over-dispersed counts whose mean is the rate.

With rate r (the mean) and concentration theta > 0 (inverse dispersion)::

    p(x | r, theta) = Gamma(x + theta) / (Gamma(theta) x!) * (theta / (theta + r))^theta * (r / (theta + r))^x
    E[x] = r,   Var[x] = r + r^2 / theta       (theta -> infinity: Poisson)

i.e. x ~ Poisson(lambda) with lambda ~ Gamma(shape theta, mean r). theta is one number
(``dispersion: global``) or one per neuron (``dispersion: per_neuron``); ``fit`` estimates it by
maximum likelihood from real counts and the encoder's rates. Before fitting, every neuron uses
the configured ``concentration``, so the model can also serve as the encoder's training
likelihood.

Usage::

    import torch
    from ldns_negative_binomial.model import NegativeBinomialConfig, NegativeBinomialObservation

    model = NegativeBinomialObservation(NegativeBinomialConfig(dispersion="per_neuron"))
    model.fit(counts, rates, mask)                    # (B, T, N), (B, T, N), (B, T)
    model.concentration                               # (N,) fitted theta
    spikes = model.sample(rates, mask, generator=torch.Generator().manual_seed(0))
    log_lik = model.log_prob(spikes, rates, mask)     # (B,)
    per_entry = model.log_prob_elements(spikes, rates, mask[..., None].expand_as(spikes))  # (B, T, N)

In a spec: ``observation: {type: negative-binomial, dispersion: per_neuron}``.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import nn

from ldns_framework import DataError, ObservationModel, option

DISPERSIONS = ("global", "per_neuron")


@attrs.frozen
class NegativeBinomialConfig:
    """Options of the ``negative-binomial`` observation model."""

    dispersion: str = option("global", doc="One concentration for all neurons (global) or one per neuron "
                                           "(per_neuron, sized when fitted).", choices=DISPERSIONS)
    concentration: float = option(2.0, doc="theta before fitting (and where fitting starts); Var = r + r^2/theta.",
                                  gt=0)
    fit_iterations: int = option(300, doc="Full-batch Adam steps on log theta in fit() (0 = keep theta).", ge=0)
    fit_lr: float = option(0.05, doc="Adam learning rate on log theta.", gt=0)
    min_rate: float = option(1.0e-8, doc="Rates are clamped below at this value (avoids log 0).", gt=0)


class NegativeBinomialObservation(ObservationModel):
    """Gamma-Poisson counts with mean = rate and a learned concentration (global or per neuron)."""

    config_class = NegativeBinomialConfig
    needs_fitting = True  # fit() estimates the concentration on the encoder's rates

    def __init__(self, config: NegativeBinomialConfig | None = None, *, n_neurons: int | None = None) -> None:
        super().__init__(config)
        size = 1 if self.config.dispersion == "global" else (n_neurons or 0)
        self.log_concentration = nn.Parameter(torch.full((size,), math.log(self.config.concentration)))

    # -- what the conformance kit reads ------------------------------------------------------
    @property
    def tags(self) -> frozenset[str]:  # type: ignore[override]  # depends on the config
        tags = {"supports_mask", "rate_parameterised"}
        return frozenset(tags | {"per_neuron"}) if self.config.dispersion == "per_neuron" else frozenset(tags)

    @property
    def per_neuron(self) -> bool:
        return self.config.dispersion == "per_neuron"

    @property
    def n_neurons(self) -> int | None:
        """The number of neurons a per-neuron model was fitted to (None: any number)."""
        return int(self.log_concentration.shape[0]) if self.per_neuron and self.log_concentration.numel() else None

    @property
    def is_fitted(self) -> bool:
        """A per-neuron model needs fitting (or weights) before it has one concentration per neuron."""
        return not self.per_neuron or self.log_concentration.numel() > 0

    @property
    def concentration(self) -> torch.Tensor:
        """theta: (1,) global, (N,) per neuron, or the configured value (1,) before a per-neuron fit."""
        if self.log_concentration.numel() == 0:
            return torch.full((1,), self.config.concentration)
        return self.log_concentration.exp()

    # -- state dicts: a per-neuron model rebuilt from its config is resized by the weights it loads
    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        stored = state_dict.get(prefix + "log_concentration")
        if isinstance(stored, torch.Tensor) and stored.shape != self.log_concentration.shape:
            self.log_concentration = nn.Parameter(torch.empty_like(stored))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _theta(self, rates: torch.Tensor) -> torch.Tensor:
        theta = self.concentration.to(rates)
        if theta.numel() > 1 and theta.numel() != rates.shape[-1]:
            raise DataError("rates", f"this model was fitted to {theta.numel()} neurons, got {rates.shape[-1]}")
        return theta  # broadcasts over (B, T, N)

    # -- the interface --------------------------------------------------------------------------
    def log_prob_elements(self, counts: torch.Tensor, rates: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        """counts, rates, scored (B, T, N) -> (B, T, N): the NB log-pmf of every scored entry, 0 elsewhere.

        Entries keep their neuron axis, so a per-neuron theta (N,) lines up with every entry even
        when only some are scored (the encoder's coordinated dropout)."""
        theta = self._theta(rates)
        r = rates.clamp_min(self.config.min_rate)
        log_total = torch.log(theta + r)
        per_entry = (torch.lgamma(counts + theta) - torch.lgamma(theta) - torch.lgamma(counts + 1.0)
                     + theta * (torch.log(theta) - log_total) + counts * (torch.log(r) - log_total))  # (B, T, N)
        return torch.where(scored, per_entry, 0.0)  # (B, T, N)

    @torch.no_grad()
    def sample(self, rates: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Counts (B, T, N), zero on padded bins, by inverting the NB cdf with one uniform per entry.

        The pmf recursion p(k + 1) = p(k) (k + theta) / (k + 1) * r / (theta + r) walks the cdf
        up to each entry's uniform; the loop runs over count values, vectorised over entries.
        """
        theta = self._theta(rates).double()
        r = rates.double().clamp_min(self.config.min_rate)
        uniform = torch.rand(rates.shape, generator=generator, dtype=torch.float64, device=rates.device)
        odds = r / (theta + r)  # (B, T, N)
        pmf = torch.exp(theta * (torch.log(theta) - torch.log(theta + r)))  # P(x = 0)
        cdf = pmf.clone()
        counts = torch.zeros_like(r)
        active = uniform > cdf
        k = 0
        while active.any() and k < 100_000:
            pmf = pmf * (k + theta) / (k + 1) * odds
            k += 1
            cdf = cdf + pmf
            counts += active
            active &= (uniform > cdf) & (pmf > 0)
        return (counts * mask[..., None]).to(rates.dtype)

    def fit(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
        """Maximum-likelihood theta given real counts and the encoder's rates (full-batch Adam on log theta)."""
        n_neurons = rates.shape[-1]
        size = n_neurons if self.per_neuron else 1
        start = torch.full((size,), math.log(self.config.concentration), device=rates.device)
        self.log_concentration = nn.Parameter(start)  # every fit starts from the configured theta
        entries = float(mask.sum()) * n_neurons
        if self.config.fit_iterations == 0 or entries == 0:
            with torch.no_grad():
                return {"nll": float(-self.log_prob(counts, rates, mask).sum() / max(entries, 1.0)), "iterations": 0}
        optimiser = torch.optim.Adam([self.log_concentration], lr=self.config.fit_lr)
        rates = rates.detach()
        for _ in range(self.config.fit_iterations):
            optimiser.zero_grad(set_to_none=True)
            loss = -self.log_prob(counts, rates, mask).sum() / entries
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            nll = float(-self.log_prob(counts, rates, mask).sum() / entries)
            theta = self.concentration
        return {"nll": nll, "iterations": self.config.fit_iterations, "concentration_mean": float(theta.mean()),
                "concentration_min": float(theta.min()), "concentration_max": float(theta.max())}
