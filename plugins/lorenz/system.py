"""The Lorenz generator of METHOD.md section 6: chaotic latents -> softplus rates -> Poisson spikes.

Pure numpy, vectorised over trials: one RK4 step advances every trial at once, so 5000 trials
cost the same number of Python-level steps as one. Shapes: n trials, T bins, N neurons, 3 latents.

Time axis. The reference samples ``dysts.flows.Lorenz().make_trajectory`` (dysts <= 0.6) at its
default of 100 points per period of 1.5008 time units, i.e. one bin every ~0.015 time units
(LDNS_NOTES section 2.1). Here each bin is ``steps_per_bin`` fixed RK4 steps of ``dt`` (defaults
3 x 0.005 = 0.015), bin 0 being the initial state, as in the reference's trajectory.
"""

from __future__ import annotations

import numpy as np

#: The default initial condition of ``dysts.flows.Lorenz`` (the reference's generator).
LORENZ_INITIAL_STATE = np.array([-9.7869288, -15.03852, 20.533978])
N_LATENTS = 3


def lorenz_derivative(state: np.ndarray, sigma: float, rho: float, beta: float) -> np.ndarray:
    """d(x, y, z)/dt of the Lorenz system for states (..., 3)."""
    x, y, z = state[..., 0], state[..., 1], state[..., 2]
    return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=-1)


def rk4_step(state: np.ndarray, dt: float, sigma: float, rho: float, beta: float) -> np.ndarray:
    """One classical Runge-Kutta step of size ``dt`` for states (..., 3)."""
    k1 = lorenz_derivative(state, sigma, rho, beta)
    k2 = lorenz_derivative(state + 0.5 * dt * k1, sigma, rho, beta)
    k3 = lorenz_derivative(state + 0.5 * dt * k2, sigma, rho, beta)
    k4 = lorenz_derivative(state + dt * k3, sigma, rho, beta)
    return state + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate_lorenz(initial: np.ndarray, n_bins: int, *, dt: float = 0.005, steps_per_bin: int = 3,
                     sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> np.ndarray:
    """Raw (un-normalised) trajectories sampled once per bin; bin 0 is ``initial``.

    initial (n, 3) -> (n, n_bins, 3) float64. Non-finite values mean ``dt`` was too large for RK4.
    """
    state = np.asarray(initial, dtype=np.float64)  # (n, 3)
    out = np.empty((state.shape[0], n_bins, N_LATENTS))  # (n, T, 3)
    for t in range(n_bins):
        out[:, t] = state
        for _ in range(steps_per_bin):
            state = rk4_step(state, dt, sigma, rho, beta)
    return out


def initial_states(rng: np.random.Generator, n_trials: int, noise: float) -> np.ndarray:
    """The dysts default initial condition plus i.i.d. N(0, noise^2) per trial and dimension: (n, 3)."""
    return LORENZ_INITIAL_STATE + noise * rng.standard_normal((n_trials, N_LATENTS))


def zscore_per_trial(trajectories: np.ndarray) -> np.ndarray:
    """Z-score each trial's trajectory per dimension over time (population std), as the reference does.

    (n, T, 3) -> (n, T, 3): every trial then has mean 0 and std 1 in every dimension, so the
    latents carry only the shape of the trajectory, not where on the attractor the trial sits.
    """
    centred = trajectories - trajectories.mean(axis=1, keepdims=True)
    return centred / centred.std(axis=1, keepdims=True)


def readout_matrix(rng: np.random.Generator, n_neurons: int) -> np.ndarray:
    """C ~ N(0, 1) of shape (N, 3) with unit-norm rows, sorted by the first column as in the reference.

    Sorting only orders the neurons (neighbours get similar tuning), which makes rasters readable.
    """
    readout = rng.standard_normal((n_neurons, N_LATENTS))
    readout /= np.linalg.norm(readout, axis=1, keepdims=True)
    return readout[np.argsort(readout[:, 0], kind="stable")]


def softplus(x: np.ndarray, beta: float) -> np.ndarray:
    """softplus_beta(x) = log(1 + exp(beta x)) / beta, stable for large |x| (keeps x's dtype)."""
    return np.logaddexp(0, beta * x) / beta


def rates_from_latents(latents: np.ndarray, readout: np.ndarray, mean_rate: float, beta: float) -> np.ndarray:
    """rates = softplus_beta(C z + log(mean_rate)): latents (n, T, 3), readout (N, 3) -> (n, T, N) float32.

    ``mean_rate`` sets only the bias; with the softplus link the realised mean rate is lower
    (about 0.14 spikes per bin for the reference's 0.3, LDNS_NOTES section 2.1).
    """
    drive = latents.astype(np.float32) @ readout.T.astype(np.float32)  # (n, T, N)
    drive += np.float32(np.log(mean_rate))
    return softplus(drive, beta)


# -- history-dependent spiking (an option; the reference data set has none) -------------------

#: The history filters the ``history_filter`` option offers; "none" is the reference (pure Poisson).
HISTORY_FILTERS = ("none", "refractory", "bursting", "mixed")
#: Length of every history filter in bins (the spike-history model's default H).
HISTORY_BINS = 20
#: The history drive is clipped at this value (a gain of at most e^2 ~ 7.4), so bursts cannot run away.
MAX_HISTORY_DRIVE = 2.0


def history_filters(kind: str, n_neurons: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Per-neuron history filters h (N, HISTORY_BINS), column k - 1 weighing the count k bins back.

    Spikes then follow lambda_t = r_t exp(min(sum_k h_k s_{t-k}, MAX_HISTORY_DRIVE)) per neuron
    (:func:`history_spikes`): the spike-history model with the exp link, a = 1, b = 0, w = h.

    * refractory: h_k = -3 exp(-(k - 1) / 2): right after a spike the rate drops to e^-3 ~ 5%
      and recovers over ~8 bins;
    * bursting: h_k = 1.2 exp(-(k - 1)) - 0.6 exp(-(k - 1) / 6): a spike raises the next bin's
      rate ~1.8x, then suppresses the following ones (the filter sums to -1.9, so it is stable);
    * mixed: each neuron is refractory or bursting with probability 1/2.

    Every neuron's filter is scaled by ``strength`` times its own factor ~ U(0.75, 1.25).
    """
    if kind not in HISTORY_FILTERS:
        raise ValueError(f"expected one of {', '.join(HISTORY_FILTERS)}, got {kind!r}")
    lag = np.arange(HISTORY_BINS, dtype=np.float64)  # k - 1
    refractory = -3.0 * np.exp(-lag / 2.0)
    bursting = 1.2 * np.exp(-lag) - 0.6 * np.exp(-lag / 6.0)
    scale = strength * rng.uniform(0.75, 1.25, n_neurons)  # (N,)
    if kind == "none":
        return np.zeros((n_neurons, HISTORY_BINS))
    if kind == "refractory":
        shape = np.tile(refractory, (n_neurons, 1))
    elif kind == "bursting":
        shape = np.tile(bursting, (n_neurons, 1))
    else:
        shape = np.where(rng.random(n_neurons)[:, None] < 0.5, refractory, bursting)  # (N, H)
    return shape * scale[:, None]


def history_spikes(rates: np.ndarray, filters: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spikes whose rate depends on the neuron's own past: rates (n, T, N), filters (N, H) -> counts (n, T, N) int32.

    s_t ~ Poisson(r_t exp(min(sum_{k=1..H} h_k s_{t-k}, MAX_HISTORY_DRIVE))), starting from a zero
    history. Sequential over time, vectorised over trials and neurons; each bin's spikes add
    their filter to the drives of the next H bins.
    """
    n_trials, n_time, n_neurons = rates.shape
    h = filters.shape[1]
    drive = np.zeros((n_trials, n_time + h, n_neurons))  # history drive received so far
    counts = np.empty((n_trials, n_time, n_neurons), dtype=np.int32)
    lagged = filters.T[None]  # (1, H, N): row k - 1 is lag k
    for t in range(n_time):
        lam = rates[:, t] * np.exp(np.minimum(drive[:, t], MAX_HISTORY_DRIVE))  # (n, N)
        counts[:, t] = rng.poisson(lam)
        drive[:, t + 1:t + 1 + h] += counts[:, t, None, :] * lagged
    return counts
