"""The LDNS S4 autoencoder (Kapoor, Schulz et al. 2024, Sec. 3.1 and App. A; METHOD.md Sec. 1).

counts (B, T, N) -> 1x1 conv to C channels -> ``blocks`` residual S4 blocks -> grouped 1x1
bottleneck -> latents (B, T, D), no activation. The reference decoder is pointwise in time
(grouped 1x1 conv D -> C, GELU, 1x1 conv C -> N, softplus), so all temporal structure lives in
the latents; ``decoder_blocks`` > 0 inserts residual blocks before the output conv.

Normalisation: the reference's instance norm takes its statistics over the whole trial, so a
bin's latents depend on later bins even with backward-only S4 kernels. ``norm: causal`` uses a
running (cumulative) instance norm instead: with ``bidirectional: false`` every output at bin t
then depends on bins <= t only (``is_causal``), so right-padding can never change a valid output,
however much of it there is and whatever it holds (variable-length data, METHOD.md Sec. 4).

Training (Sec. 3.1, Eq. 1) uses coordinated dropout: each (trial, bin, neuron) entry is hidden
from the encoder with probability p, the input is rescaled by 1/(1-p), and only the hidden
entries are scored, so the autoencoder cannot learn the identity map. Latent L2 and temporal
smoothness penalties keep the latents small and smooth for the diffusion model.

Usage::

    import torch
    from ldns_framework import Batch
    from ldns_plugins.poisson.model import PoissonObservation
    from ldns_plugins.s4_autoencoder.model import S4Autoencoder, S4AutoencoderConfig

    config = S4AutoencoderConfig(hidden=64, latent_dim=8, bidirectional=False, norm="causal")  # causal
    model = S4Autoencoder(config, n_neurons=50)
    observation = PoissonObservation()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    counts = torch.poisson(torch.full((32, 100, 50), 0.3))      # (B, T, N)
    mask = torch.ones(32, 100, dtype=torch.bool)                 # (B, T), False = padding

    for step in range(100):
        losses = model.training_loss(Batch(counts, mask), observation)  # "loss", "recon", "l2", "td"
        optimiser.zero_grad()
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimiser.step()

    model.eval()                                                 # no coordinated dropout
    with torch.no_grad():
        latents = model.encode(counts, mask)                     # (B, T, D)
        rates = model.decode(latents, mask)                      # (B, T, N), positive
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ldns_framework import Batch, Encoder, ObservationModel
from ldns_framework.nn import S4D, PointwiseConv1d
from ldns_plugins.s4_autoencoder.calibration import calibration_trials, softplus_bias_shift
from ldns_plugins.s4_autoencoder.config import NORMS, S4AutoencoderConfig

__all__ = ["NORMS", "NORM_EPS", "ResidualBlock", "S4Autoencoder", "S4AutoencoderConfig", "causal_instance_norm", "latent_penalties",
           "masked_instance_norm", "valid_bins"]


#: The instance norms' epsilon (torch's InstanceNorm1d default, as in the reference).
NORM_EPS = 1e-5


def masked_instance_norm(x: torch.Tensor, valid: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """InstanceNorm1d without affine, with the statistics taken over valid bins only.

    x (B, C, T), valid (B, 1, T) float 0/1 -> (B, C, T). The reference normalises over the padded
    length too, so padding would shift valid outputs; without padding this equals torch's norm.
    """
    count = valid.sum(-1, keepdim=True).clamp_min(1.0)  # (B, 1, 1)
    mean = (x * valid).sum(-1, keepdim=True) / count  # (B, C, 1)
    var = ((x - mean).square() * valid).sum(-1, keepdim=True) / count  # (B, C, 1), biased like InstanceNorm1d
    return (x - mean) * torch.rsqrt(var + eps)  # (B, C, T)


def causal_instance_norm(x: torch.Tensor, valid: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Instance norm with running statistics: bin t is normalised by the mean and (biased) variance
    of the valid bins <= t, so no output depends on a later bin.

    x (B, C, T), valid (B, 1, T) float 0/1 -> (B, C, T). A bin before the first valid one, or the
    first valid bin itself (zero variance), maps to 0 up to eps.
    """
    count = valid.cumsum(-1).clamp_min(1.0)  # (B, 1, T)
    # shifted by the first bin (the variance does not change) so the running sums stay small
    shifted = (x - x[..., :1]) * valid  # (B, C, T): a padded bin adds nothing to later statistics
    mean = shifted.cumsum(-1) / count  # (B, C, T)
    var = (shifted.square().cumsum(-1) / count - mean.square()).clamp_min(0.0)  # (B, C, T)
    return (shifted - mean) * torch.rsqrt(var + eps)  # (B, C, T)


class ResidualBlock(nn.Module):
    """The reference ``AutoEncoderBlock`` (LDNS_NOTES 1.2): an S4 time mixer and an MLP channel mixer,
    each behind a masked instance norm with a learned, zero-initialised per-channel shift/scale."""

    def __init__(self, channels: int, config: S4AutoencoderConfig) -> None:
        super().__init__()
        self.modulation = nn.Parameter(torch.zeros(1, 4 * channels, 1))  # shift/scale of both norms; zeros = plain norm
        self.time_mixer = S4D(channels, state_size=config.state_size, bidirectional=config.bidirectional,
                              dt_min=config.dt_min, dt_max=config.dt_max, init=config.s4_init)
        self.post_scale = nn.Conv1d(channels, channels, 1, groups=channels)  # per-channel scale and bias
        self.mlp = nn.Sequential(PointwiseConv1d(channels, 2 * channels, bias=False), nn.GELU(),
                                 PointwiseConv1d(2 * channels, channels, bias=False))
        self.causal = config.norm == "causal"

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """x (B, C, T), valid (B, 1, T) float, or None when no bin is padding -> (B, C, T).

        The S4 input is zeroed on padding, so with either norm (both skip padded bins) no padded bin
        reaches a valid one, in either direction; the other layers are pointwise in time.
        """
        shift_tm, scale_tm, shift_cm, scale_cm = self.modulation.chunk(4, dim=1)  # each (1, C, 1)
        y = self._modulated_norm(x, valid, shift_tm, scale_tm)  # (B, C, T)
        mixed = F.gelu(self.time_mixer(y if valid is None else y * valid))  # (B, C, T)
        # post_scale is a per-channel affine: one addcmul, not oneDNN's slower depthwise convolution
        x = x + torch.addcmul(self.post_scale.bias[:, None], self.post_scale.weight[:, 0], mixed)  # (B, C, T)
        return x + self.mlp(self._modulated_norm(x, valid, shift_cm, scale_cm))  # (B, C, T)

    def _modulated_norm(self, x: torch.Tensor, valid: torch.Tensor | None, shift: torch.Tensor,
                        scale: torch.Tensor) -> torch.Tensor:
        """norm(x) * (1 + scale) + shift, (B, C, T). Without padding the whole-trial norm is torch's
        fused instance norm (one pass forward and backward instead of about ten elementwise ones)."""
        if valid is None and not self.causal:
            return F.instance_norm(x, weight=(1 + scale).flatten(), bias=shift.flatten(), eps=NORM_EPS)
        if valid is None:
            valid = x.new_ones(x.shape[0], 1, x.shape[-1])  # (B, 1, T)
        norm = causal_instance_norm if self.causal else masked_instance_norm
        return norm(x, valid) * (1 + scale) + shift


def valid_bins(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """The mask as (B, 1, T) 0/1 floats for the channels-first layers, or None when every bin is
    valid (fixed-length data), which lets them skip their masking passes."""
    return None if bool(mask.all()) else mask[:, None, :].to(dtype)


def latent_penalties(latents: torch.Tensor, mask: torch.Tensor, td_lags: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unweighted, unnormalised penalties of Eq. 1 over valid bins: (sum z^2, sum_k sum (z_t - z_{t+k})^2 / (1+k)).

    latents (B, T, D), mask (B, T) bool; a lag-k pair counts only when both of its bins are valid.
    """
    valid = mask[..., None].to(latents.dtype)  # (B, T, 1)
    l2 = (latents.square() * valid).sum()
    td = latents.new_zeros(())
    for k in range(1, td_lags + 1):
        both = valid[:, :-k] * valid[:, k:]  # (B, T-k, 1)
        td = td + ((latents[:, :-k] - latents[:, k:]).square() * both).sum() / (1 + k)
    return l2, td


class S4Autoencoder(Encoder):
    """The LDNS autoencoder: S4 encoder, grouped bottleneck, pointwise softplus decoder (Sec. 3.1)."""

    config_class = S4AutoencoderConfig
    tags = frozenset({"supports_mask"})

    def __init__(self, config: S4AutoencoderConfig | None = None, *, n_neurons: int) -> None:
        super().__init__(config, n_neurons=n_neurons)
        hidden, latent_dim = self.config.hidden, self.config.latent_dim
        self.encoder_in = PointwiseConv1d(n_neurons, hidden)
        self.encoder_blocks = nn.ModuleList(ResidualBlock(hidden, self.config) for _ in range(self.config.blocks))
        self.bottleneck = nn.Conv1d(hidden, latent_dim, 1, groups=latent_dim)
        self.decoder_in = nn.Conv1d(latent_dim, hidden, 1, groups=latent_dim)
        self.decoder_blocks = nn.ModuleList(ResidualBlock(hidden, self.config) for _ in range(self.config.decoder_blocks))
        self.decoder_out = PointwiseConv1d(hidden, n_neurons)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def is_causal(self) -> bool:
        """True with ``bidirectional: false`` and ``norm: causal``: backward-only kernels and running
        statistics, so outputs at bin t depend on bins <= t only. With the reference's instance norm
        the statistics span all of a trial's valid bins, so a bin's latents depend on later valid bins
        even with backward kernels. Padding never reaches a valid bin in any mode (the norm's
        statistics and the S4 input skip it)."""
        return not self.config.bidirectional and self.config.norm == "causal"

    def encode(self, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """counts (B, T, N), mask (B, T) -> latents (B, T, D), zero on padded bins."""
        valid = valid_bins(mask, counts.dtype)  # (B, 1, T) or None
        inputs = counts.transpose(1, 2)  # (B, N, T)
        h = self.encoder_in(inputs if valid is None else inputs * valid)  # (B, C, T)
        for block in self.encoder_blocks:
            h = block(h, valid)  # (B, C, T)
        latents = self.bottleneck(h)  # (B, D, T)
        return (latents if valid is None else latents * valid).transpose(1, 2)  # (B, T, D)

    def decode(self, latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """latents (B, T, D), mask (B, T) -> rates (B, T, N) = softplus(...) > 0."""
        return F.softplus(self._logits(latents, mask))  # (B, T, N)

    def _logits(self, latents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The decoder before its softplus: latents (B, T, D) -> (B, T, N)."""
        valid = valid_bins(mask, latents.dtype)  # (B, 1, T) or None
        h = F.gelu(self.decoder_in(latents.transpose(1, 2)))  # (B, C, T)
        for block in self.decoder_blocks:
            h = block(h, valid)  # (B, C, T)
        return self.decoder_out(h).transpose(1, 2)  # (B, T, N)

    @torch.no_grad()
    def calibrate(self, counts: Any, mask: torch.Tensor) -> dict[str, float]:
        """With ``calibrate_rates``, shift each neuron's output bias so that its mean eval-mode rate
        over the training trials equals its mean count (see :mod:`.calibration` for why, and why not
        by default)."""
        if not self.config.calibrate_rates:
            return {}
        trials = calibration_trials(mask.shape[0], mask.shape[1] * self.n_neurons)
        device = self.decoder_out.bias.device
        was_training = self.training
        self.eval()
        logits, count_sum = [], torch.zeros(self.n_neurons, dtype=torch.float64)
        for chunk in trials.split(64):
            chunk_mask = mask[chunk].to(device)  # (B, T)
            chunk_counts = counts[chunk].to(device)  # (B, T, N)
            logits.append(self._logits(self.encode(chunk_counts, chunk_mask), chunk_mask)[chunk_mask].cpu())
            count_sum += chunk_counts[chunk_mask].sum(0).double().cpu()
        self.train(was_training)
        all_logits = torch.cat(logits)  # (valid bins, N)
        if not len(all_logits):
            return {}
        target = (count_sum / all_logits.shape[0]).float()  # (N,)
        before = F.softplus(all_logits).mean(0)  # (N,)
        shift = softplus_bias_shift(all_logits, target)  # (N,)
        self.decoder_out.bias += shift.to(device)
        return {"trials": int(len(trials)), "rate_ratio_before": float(before.sum() / target.sum()),
                "largest_bias_shift": float(shift.abs().max())}

    def training_loss(self, batch: Batch, observation: ObservationModel) -> dict[str, torch.Tensor]:
        """Eq. 1 with coordinated dropout (training mode only). Every part is divided by B*T*N, as
        in the reference, and weighted, so that ``loss = recon + l2 + td``; "recon" scores the dropped
        valid entries in training mode with p > 0, and all valid entries otherwise. The dropped entries
        are scored in place by ``observation.log_prob_elements``, so per-neuron parameters stay
        aligned and an autoregressive model scores each one given the true earlier counts."""
        counts, mask = batch.counts, batch.mask  # (B, T, N), (B, T)
        p = self.config.dropout_prob if self.training else 0.0
        kept = torch.rand_like(counts) >= p if p > 0 else None  # (B, T, N), Bernoulli(1 - p)
        inputs = counts if kept is None else counts * kept / (1.0 - p)  # (B, T, N)
        latents = self.encode(inputs, mask)  # (B, T, D)
        rates = self.decode(latents, mask)  # (B, T, N)
        numel = counts.numel()
        if kept is None:
            recon = -observation.log_prob(counts, rates, mask).sum() / numel
        else:
            scored = ~kept & mask[..., None]  # (B, T, N): the dropped valid entries
            recon = -observation.log_prob_elements(counts, rates, scored).sum() / numel
        l2, td = latent_penalties(latents, mask, self.config.td_lags)
        l2, td = self.config.beta_l2 * l2 / numel, self.config.beta_td * td / numel
        return {"loss": recon + l2 + td, "recon": recon, "l2": l2, "td": td}
