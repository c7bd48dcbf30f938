"""Latent dynamics of the speech-style data: independent noisy 2-d rotations (stochastic oscillators).

Each oscillator k turns by omega_k dt per bin and decays with correlation time tau, driven by
Gaussian noise scaled so that its stationary distribution is N(0, I):

    x_{t+1} = rho R(omega_k dt) x_t + sqrt(1 - rho^2) eps_t,    rho = exp(-dt / tau),  eps_t ~ N(0, I).

Trials start from that stationary distribution (a random state), so the process looks the same at
every bin: a trial's statistics do not depend on where it starts or on how long it is.
"""

from __future__ import annotations

import numpy as np

__all__ = ["oscillator_latents", "poisson_rates"]


def oscillator_latents(rng: np.random.Generator, n_trials: int, length: int, frequencies_hz: np.ndarray,
                       bin_width_s: float, correlation_time_s: float) -> np.ndarray:
    """(n_trials, length, 2K) float64 latents of K oscillators with the given frequencies (K,)."""
    angles = 2 * np.pi * np.asarray(frequencies_hz) * bin_width_s  # (K,)
    rho = np.exp(-bin_width_s / correlation_time_s)
    cos, sin = rho * np.cos(angles), rho * np.sin(angles)  # (K,)
    kick = np.sqrt(1.0 - rho**2)
    n_osc = angles.size
    state = rng.standard_normal((n_trials, n_osc, 2))  # (n, K, 2): the stationary distribution
    out = np.empty((n_trials, length, n_osc, 2))
    for t in range(length):
        out[:, t] = state
        x, y = state[..., 0], state[..., 1]  # (n, K) each
        turned = np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)  # (n, K, 2)
        state = turned + kick * rng.standard_normal((n_trials, n_osc, 2))
    return out.reshape(n_trials, length, 2 * n_osc)


def poisson_rates(latents: np.ndarray, readout: np.ndarray, baselines: np.ndarray, gain: float) -> np.ndarray:
    """Expected counts per bin, latents (n, T, L) -> (n, T, N) float32:

        r = b_n exp(g c_n . x - g^2 |c_n|^2 / 2),

    whose mean over the stationary N(0, I) latents is exactly the channel's baseline b_n."""
    log_base = (np.log(baselines) - 0.5 * gain**2 * np.square(readout).sum(axis=1)).astype(np.float32)  # (N,)
    flat = latents.reshape(-1, latents.shape[-1]).astype(np.float32)  # (n T, L): one 2-d product
    log_rates = flat @ (gain * readout.T).astype(np.float32) + log_base  # (n T, N)
    return np.exp(log_rates, out=log_rates).reshape(*latents.shape[:-1], readout.shape[0])
