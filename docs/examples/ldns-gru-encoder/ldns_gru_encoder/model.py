"""A causal GRU autoencoder: counts (B, T, N) -> latents (B, T, D) -> rates (B, T, N).

Encoder: log(1 + x_t) -> a unidirectional GRU with ``hidden`` units -> a linear map to D latents;
the GRU reads bins in time order only, so the latent at bin t depends on bins <= t
(``is_causal``), and right-padding can never change a valid bin. Decoder, pointwise in time:
r_t = softplus(W z_t + b), so all temporal structure lives in the latents.

Training (``training_loss``) uses coordinated dropout (Keshtkaran & Pandarinath 2019; LDNS Eq. 1):
each valid (trial, bin, neuron) entry is hidden from the encoder with probability p, the input is
rescaled by 1/(1 - p), and only the hidden entries are scored. Scoring goes through the
observation model's element-wise contract, ``observation.log_prob_elements(counts, rates,
scored)``, so any factorised observation model (with per-neuron parameters too) trains it. A
latent L2 penalty keeps the latents small for the generator.

Usage::

    import torch
    from ldns_framework import Batch
    from ldns_gru_encoder.model import GruAutoencoder, GruAutoencoderConfig

    model = GruAutoencoder(GruAutoencoderConfig(hidden=32, latent_dim=4), n_neurons=20)
    counts = torch.poisson(torch.full((8, 50, 20), 0.5))      # (B, T, N)
    mask = torch.ones(8, 50, dtype=torch.bool)                 # (B, T)
    losses = model.training_loss(Batch(counts, mask), observation)   # {"loss", "recon", "l2"}
    latents = model.encode(counts, mask)                       # (B, T, 4)
    rates = model.decode(latents, mask)                        # (B, T, 20), positive

In a spec: ``encoder: {type: gru, hidden: 32, latent_dim: 4}``.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from ldns_framework import Batch, Encoder, ObservationModel, option


@attrs.frozen
class GruAutoencoderConfig:
    """Options of the ``gru`` encoder."""

    hidden: int = option(64, doc="GRU hidden units.", ge=1)
    latent_dim: int = option(8, doc="Latent channels D.", ge=1)
    layers: int = option(1, doc="Stacked GRU layers.", ge=1)
    dropout_prob: float = option(0.2, doc="Coordinated-dropout probability p per (trial, bin, neuron); 0 scores "
                                          "every valid entry.", ge=0, lt=1)
    beta_l2: float = option(1.0e-3, doc="Weight of the latent L2 penalty, per valid entry.", ge=0)


class GruAutoencoder(Encoder):
    """Unidirectional GRU encoder, pointwise softplus decoder."""

    config_class = GruAutoencoderConfig

    def __init__(self, config: GruAutoencoderConfig | None = None, *, n_neurons: int) -> None:
        super().__init__(config, n_neurons=n_neurons)
        c = self.config
        self.gru = nn.GRU(n_neurons, c.hidden, num_layers=c.layers, batch_first=True)
        self.to_latents = nn.Linear(c.hidden, c.latent_dim)
        self.readout = nn.Linear(c.latent_dim, n_neurons)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def is_causal(self) -> bool:
        return True  # the GRU runs forward in time only

    def encode(self, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """counts (B, T, N), mask (B, T) -> latents (B, T, D), zero on padded bins."""
        hidden, _ = self.gru(torch.log1p(counts))  # (B, T, H): bin t sees bins <= t
        return self.to_latents(hidden) * mask[..., None]  # (B, T, D)

    def decode(self, latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """latents (B, T, D) -> rates (B, T, N) > 0, pointwise in time."""
        return F.softplus(self.readout(latents)) + 1e-6  # (B, T, N)

    def training_loss(self, batch: Batch, observation: ObservationModel) -> dict[str, torch.Tensor]:
        """Coordinated dropout: hide entries from the encoder, score the observation model on them."""
        counts, mask = batch.counts, batch.mask
        valid = mask[..., None].expand_as(counts)  # (B, T, N)
        p = self.config.dropout_prob if self.training else 0.0
        if p > 0:
            keep = torch.rand(counts.shape, device=counts.device) >= p  # (B, T, N): True = shown to the encoder
            inputs = counts * keep / (1.0 - p)
            scored = valid & ~keep
        else:
            inputs, scored = counts, valid
        latents = self.encode(inputs, mask)  # (B, T, D)
        rates = self.decode(latents, mask)  # (B, T, N)
        entries = valid.sum().clamp_min(1)
        recon = -observation.log_prob_elements(counts, rates, scored).sum() / entries
        l2 = self.config.beta_l2 * latents.pow(2).sum() / entries
        return {"loss": recon + l2, "recon": recon.detach(), "l2": l2.detach()}
