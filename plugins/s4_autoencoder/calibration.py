"""Rate calibration of a trained autoencoder's softplus decoder.

Why: in eval mode the encoder sees every count, whereas in training coordinated dropout hid a
fraction p of them (and rescaled the rest), and the Poisson fit of a finite model leaves its own
offset. On the demo's Lorenz data the decoded rates of the high-rate neurons came out 1-3% above
the counts they reconstruct. Shifting each neuron's output bias so that its mean decoded rate over
the training split equals its mean count removes that bias without touching the latents (the
diffusion model's data) or anything else the decoder learnt.

It is off by default (``calibrate_rates``): generated latents come out slightly under-dispersed
(DPM-Solver++ and deterministic DDIM shrink their spread by a few percent), which lowers the high-rate
neurons' generated rates by a similar amount; the encoder's high bias happens to offset that, so
calibrating the encoder alone leaves generated rates 2-3% low. Sampling with DPM-Solver++'s SDE form
(``sample.sde: true``) keeps the latents' spread; with both, the demo's high-rate neurons came out
within 0.5% of the data, at some cost in its population statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["CALIBRATION_ENTRIES", "calibration_trials", "softplus_bias_shift"]

#: Most (bin, neuron) pre-activations held while calibrating (float32: 128 MiB); larger training
#: splits are calibrated on evenly spaced trials.
CALIBRATION_ENTRIES = 2 ** 25
#: Largest change of a bias in one Newton step (a vanishing slope cannot throw it away).
_MAX_STEP = 4.0


def calibration_trials(n_trials: int, entries_per_trial: int, limit: int = CALIBRATION_ENTRIES) -> torch.Tensor:
    """Indices (int64) of evenly spaced trials whose entries fit in ``limit``: all of them when they fit."""
    keep = max(1, min(n_trials, limit // max(1, entries_per_trial)))
    return torch.linspace(0, n_trials - 1, keep).round().long().unique()


def softplus_bias_shift(logits: torch.Tensor, target: torch.Tensor, *, iterations: int = 50,
                        rtol: float = 1e-5) -> torch.Tensor:
    """Per-neuron shift b with mean(softplus(logits + b)) = target, logits (bins, N), target (N,).

    Newton's method: the mean is convex and increasing in b, so from the first step on the
    iterates approach the root from above and converge. Neurons with target 0 (no solution:
    softplus is positive) keep shift 0."""
    shift = torch.zeros_like(target)
    active = target > 0
    for _ in range(iterations):
        shifted = logits + shift  # (bins, N)
        residual = F.softplus(shifted).mean(0) - target  # (N,)
        if bool((residual.abs() <= rtol * target)[active].all()):
            break
        slope = torch.sigmoid(shifted).mean(0).clamp_min(torch.finfo(logits.dtype).tiny)  # (N,)
        shift = torch.where(active, shift - (residual / slope).clamp(-_MAX_STEP, _MAX_STEP), shift)
    return shift
