"""The spike-history observation model: a per-neuron autoregressive Poisson GLM (METHOD.md section 5).

For neuron n at bin t, given the rates r (B, T, N) and the neuron's own spikes s::

    lambda_t^n = link( sum_{k=1..H} w_{n,k} s_{t-k}^n  +  a_n log r_t^n  +  b_n ),   link = softplus | exp
    s_t^n ~ Poisson(lambda_t^n), capped at max_spikes

(LDNS_NOTES section 1.7, the reference's "CombinedLogisticRegression"). No coupling across
neurons. Bins before the first one are zeros (or a given ``history``), and padded bins are
zeros too, so they never feed the history of later bins.

The cap. ``max_spikes = C`` makes the count ``min(Poisson(lambda), C)``, which is what the
reference samples; its pmf is the Poisson pmf below C and the whole tail ``P(X >= C)`` at C
(a censored Poisson, ``log P(X >= C) = log gammainc(C, lambda)``). ``log_prob``, ``fit`` and
``sample`` all use this one distribution, so the sampler agrees with the likelihood; counts
above the cap have probability 0 (``log_prob`` is ``-inf`` there). ``fit`` caps the real counts
first, as the reference does, and reports how many it capped. ``bernoulli: true`` is the cap
C = 1: P(spike) = 1 - exp(-lambda).

Departures from the reference notebook, each deliberate: the fit scores every valid bin with the
zero history the sampler starts from (the reference drops the first H bins from the loss but then
samples from a zero history), uses the censored likelihood above instead of the plain Poisson NLL
of capped counts, starts from w = 0, a = 1, b = 0 (the Poisson model of the rates for the exp
link) instead of ``randn``, and stops early once the loss has converged.

Computation (no Python loop over time outside the sampler). ``log_prob`` computes the history
drives ``sum_k w_{n,k} s_{t-k}`` of all bins at once with one vectorised multiply-add per lag
(:func:`history_drive`). ``fit`` builds chunked count windows once (they do not change while
fitting), computes the drives as a banded Toeplitz matmul per neuron (:func:`drive_from_windows`),
writes the gradient out instead of using autograd, and evaluates ``s log lambda`` only where
s > 0 (spikes are sparse). ``sample`` is sequential over time and vectorised over trials and
neurons; each drawn spike adds its filter to the drives of the next H bins. Timings at monkey
size (2000 x 140 x 182, one CPU thread) are printed by ``benchmarks/spike_history_speed.py``.

Usage::

    model = SpikeHistory(SpikeHistoryConfig(history=20, max_spikes=5))
    model.fit(counts, rates, mask)        # real training spikes and the encoder's rates, (B, T, N)
    spikes = model.sample(generated_rates, mask, generator=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from ldns_framework import DataError, LdnsError, ObservationModel
from ldns_plugins.spike_history.config import SpikeHistoryConfig, SpikeHistoryFitConfig  # noqa: F401  (public here too)

#: With the exp link, eta is clamped at this value (exp(20) ~ 5e8 spikes per bin), so it never overflows.
MAX_EXP_ETA = 20.0
#: Intensities are kept >= this inside logs (softplus underflows to 0 below eta ~ -100 in float32).
MIN_INTENSITY = 1e-10
#: Longest time chunk of the banded matmul in :func:`drive_from_windows`.
CHUNK = 64
#: ``fit`` has converged once the relative change of the loss stays <= tol this many iterations in a row.
PATIENCE = 3


# -- the history drive -------------------------------------------------------------------------

def history_drive(spikes: torch.Tensor, weights: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
    """History drives of every bin at once: spikes (B, T, N), weights (N, H)[, context (B, H, N)] -> (B, T, N).

    drive[b, t, n] = sum_{k=1..H} weights[n, k-1] * spikes[b, t-k, n], where the bins before bin 0
    are ``context`` (oldest first; zeros when None). Only earlier bins enter: no look-ahead. One
    vectorised multiply-add per lag k (H of them) in the (trials, time, neurons) layout.
    """
    n_trials, n_time, n_neurons = spikes.shape
    history = weights.shape[1]
    drive = spikes.new_zeros(n_trials, n_time, n_neurons, dtype=torch.result_type(spikes, weights))
    if context is not None:
        full = torch.cat([context.to(spikes.dtype), spikes], dim=1)  # (B, H + T, N)
        for k in range(1, history + 1):
            drive.addcmul_(full[:, history - k:history - k + n_time], weights[:, k - 1])
        return drive
    for k in range(1, min(history, n_time - 1) + 1):
        drive[:, k:].addcmul_(spikes[:, :n_time - k], weights[:, k - 1])  # in place; autograd tracks the view
    return drive


def _toeplitz(weights: torch.Tensor, chunk: int) -> torch.Tensor:
    """Banded matrices mapping a window of chunk + H bins to the chunk's drives: (N, H) -> (N, chunk + H, chunk).

    Window bin i feeds output bin j at lag k = j + H - i; entry (i, j) is w[:, k - 1] for 1 <= k <= H, else 0.
    """
    n_neurons, history = weights.shape
    rows = torch.arange(chunk + history, device=weights.device)[:, None]
    lag = torch.arange(chunk, device=weights.device)[None, :] + history - rows  # (chunk + H, chunk)
    inside = (lag >= 1) & (lag <= history)
    return weights[:, (lag - 1).clamp(0, history - 1)] * inside  # (N, chunk + H, chunk)


def chunk_size(n_time: int) -> int:
    """Time chunk of the banded matmul: at most CHUNK bins, dividing T exactly when a near divisor exists."""
    if n_time <= CHUNK:
        return n_time
    fewest = -(-n_time // CHUNK)
    for n_chunks in range(fewest, 2 * fewest + 1):
        if n_time % n_chunks == 0:
            return n_time // n_chunks
    return -(-n_time // fewest)


def history_windows(spikes: torch.Tensor, history: int) -> torch.Tensor:
    """Overlapping count windows for :func:`drive_from_windows`: spikes (B, T, N) -> (N, B * n_chunks, chunk + H).

    Each chunk of :func:`chunk_size` bins comes with the H bins before it (zeros before bin 0).
    """
    n_trials, n_time, n_neurons = spikes.shape
    chunk = chunk_size(n_time)
    n_chunks = -(-n_time // chunk)
    padded = F.pad(spikes, (0, 0, history, n_chunks * chunk - n_time))  # (B, H + n_chunks * chunk, N)
    windows = padded.unfold(1, chunk + history, chunk)  # (B, n_chunks, N, chunk + H), a view
    return windows.permute(2, 0, 1, 3).reshape(n_neurons, n_trials * n_chunks, chunk + history)


def drive_from_windows(windows: torch.Tensor, weights: torch.Tensor, n_time: int) -> torch.Tensor:
    """The drives of :func:`history_drive` as one banded matmul per neuron, neurons first: -> (N, B, T).

    Faster than :func:`history_drive` when the windows are reused (``fit`` builds them once).
    """
    n_neurons, rows, width = windows.shape
    chunk = width - weights.shape[1]
    n_chunks = -(-n_time // chunk)
    out = windows @ _toeplitz(weights, chunk)  # (N, B * n_chunks, chunk)
    return out.reshape(n_neurons, rows // n_chunks, n_chunks * chunk)[..., :n_time]


def log_poisson_tail(cap: int, lam: torch.Tensor) -> torch.Tensor:
    """log P(X >= cap) for X ~ Poisson(lam), stable for small lam and differentiable in lam."""
    if cap == 1:
        return torch.log(-torch.expm1(-lam))
    tail = torch.special.gammainc(torch.full_like(lam, float(cap)), lam)  # regularised lower incomplete gamma
    # For tiny lam the tail underflows; its leading terms pmf(cap) * (1 + lam / (cap + 1)) are then exact.
    series = cap * torch.log(lam) - lam - math.lgamma(cap + 1.0) + torch.log1p(lam / (cap + 1.0))
    return torch.where(tail > 1e-30, torch.log(tail.clamp_min(1e-30)), series)


def capped_poisson(lam: torch.Tensor, cap: int | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """min(Poisson(lam), cap) elementwise, float (cap None: plain Poisson; cap 1: Bernoulli(1 - exp(-lam)))."""
    if cap == 1:
        return torch.bernoulli(-torch.expm1(-lam), generator=generator)
    draw = torch.poisson(lam, generator=generator)
    return draw if cap is None else draw.clamp_(max=cap)


# -- the model ---------------------------------------------------------------------------------

@attrs.define
class _FitData:
    """What one full-batch objective needs, laid out neurons first (N, B, T) and computed once."""

    windows: torch.Tensor  # (N, B * n_chunks, chunk + H): count windows of the history drive
    log_rates: torch.Tensor  # (N, B, T)
    no_spike_cap: torch.Tensor  # (N, B, T) float: valid entries scored by the Poisson pmf (count < cap)
    spike_index: torch.Tensor  # (S,) flat indices of valid entries with 0 < count (< cap)
    spike_counts: torch.Tensor  # (S,) their counts
    cap_index: torch.Tensor  # (C,) flat indices of valid entries at the cap
    constant: float  # -sum log(count!) over the Poisson-scored entries
    n_entries: int  # valid (bin, neuron) entries
    n_time: int


class SpikeHistory(ObservationModel):
    """Per-neuron autoregressive Poisson GLM; parameters are sized by :meth:`fit` (or ``n_neurons``).

    Parameters: ``history_weights`` (N, H), column k - 1 weighing the count k bins back;
    ``rate_gain`` a (N,); ``bias`` b (N,). A model built without ``n_neurons`` has empty
    parameters until it is fitted or loads a state dict (``load_state_dict`` resizes them to the
    stored shapes), so a run can rebuild it from its spec and then load its weights.
    """

    config_class = SpikeHistoryConfig
    tags: ClassVar[frozenset[str]] = frozenset({"autoregressive", "supports_mask", "per_neuron"})
    is_autoregressive: ClassVar[bool] = True
    needs_fitting: ClassVar[bool] = True

    def __init__(self, config: SpikeHistoryConfig | None = None, *, n_neurons: int | None = None) -> None:
        super().__init__(config)
        history = self.config.history
        self.history_weights = nn.Parameter(torch.zeros(0, history))  # (N, H)
        self.rate_gain = nn.Parameter(torch.zeros(0))  # (N,)
        self.bias = nn.Parameter(torch.zeros(0))  # (N,)
        if n_neurons:
            self.reset_parameters(n_neurons)

    # -- parameters ------------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return int(self.bias.shape[0])

    @property
    def is_fitted(self) -> bool:
        """True once the parameters are sized (fitted, loaded, or built with ``n_neurons``)."""
        return self.n_neurons > 0

    @property
    def cap(self) -> int | None:
        """The largest count the model produces (None: uncapped)."""
        return 1 if self.config.bernoulli else self.config.max_spikes

    def encoder_observation(self) -> str:
        """The factorised model (``config.encoder_observation``) that trains the encoder before this one is fitted."""
        return self.config.encoder_observation

    def reset_parameters(self, n_neurons: int) -> None:
        """(Re)create the parameters for ``n_neurons`` at w = 0, a = 1, b = 0, on their current device."""
        device, dtype = self.bias.device, self.bias.dtype
        self.history_weights = nn.Parameter(torch.zeros(n_neurons, self.config.history, device=device, dtype=dtype))
        self.rate_gain = nn.Parameter(torch.ones(n_neurons, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_neurons, device=device, dtype=dtype))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        stored = state_dict.get(prefix + "bias")
        if isinstance(stored, torch.Tensor) and stored.ndim == 1 and stored.shape[0] != self.n_neurons:
            self.reset_parameters(int(stored.shape[0]))  # sized by the weights being loaded
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _check(self, rates: torch.Tensor, counts: torch.Tensor | None = None,
               mask: torch.Tensor | None = None, scored: torch.Tensor | None = None) -> None:
        if not self.is_fitted:
            raise LdnsError("spike-history: the model has no parameters yet; fit(counts, rates, mask) it on "
                            "training data or load fitted weights")
        if rates.ndim != 3 or rates.shape[-1] != self.n_neurons:
            raise DataError("rates", f"expected (trials, time, {self.n_neurons}) for this fitted model, "
                                     f"got {tuple(rates.shape)}")
        if mask is not None and mask.shape != rates.shape[:2]:
            raise DataError("mask", f"expected {tuple(rates.shape[:2])} (trials, time), got {tuple(mask.shape)}")
        if scored is not None and scored.shape != rates.shape:
            raise DataError("scored", f"expected the shape of rates {tuple(rates.shape)}, got {tuple(scored.shape)}")
        if counts is not None and counts.shape != rates.shape:
            raise DataError("counts", f"expected the shape of rates {tuple(rates.shape)}, got {tuple(counts.shape)}")

    def _context(self, history: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        """Given history (B, H', N), oldest first -> the last H bins (B, H, N), zero-padded on the left."""
        if history is None:
            return None
        n_trials, _, n_neurons = like.shape
        if history.ndim != 3 or history.shape[0] != n_trials or history.shape[2] != n_neurons:
            raise DataError("history", f"expected ({n_trials}, bins, {n_neurons}), got {tuple(history.shape)}")
        h = self.config.history
        history = history.to(like.dtype)[:, -h:] if history.shape[1] else like.new_zeros(n_trials, 0, n_neurons)
        return F.pad(history, (0, 0, h - history.shape[1], 0))  # (B, H, N)

    def _link(self, eta: torch.Tensor) -> torch.Tensor:
        lam = torch.exp(eta.clamp_max(MAX_EXP_ETA)) if self.config.link == "exp" else F.softplus(eta)
        return lam.clamp_min(MIN_INTENSITY)

    def _params(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self.history_weights.to(like.dtype), self.rate_gain.to(like.dtype), self.bias.to(like.dtype))

    # -- likelihood ------------------------------------------------------------------------
    def intensity(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor,
                  history: torch.Tensor | None = None) -> torch.Tensor:
        """lambda (B, T, N) given the counts before each bin (padded bins count as zeros)."""
        self._check(rates, counts, mask=mask)
        return self._intensity(torch.where(mask[..., None], counts.to(rates.dtype), 0.0), rates, history)

    def _intensity(self, spikes: torch.Tensor, rates: torch.Tensor, history: torch.Tensor | None) -> torch.Tensor:
        """lambda (B, T, N) given spikes (B, T, N), whose earlier bins feed every bin's history drive."""
        weights, gain, bias = self._params(rates)
        drive = history_drive(spikes.to(rates.dtype), weights, self._context(history, rates))  # (B, T, N)
        return self._link(drive + gain * torch.log(rates.clamp_min(self.config.min_rate)) + bias)  # (B, T, N)

    def _spike_terms(self, counts: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """log p(count | lam) + lam for entries with count > 0 (1-d): what a spike adds to the -lam of a 0."""
        terms = counts * torch.log(lam) - torch.lgamma(counts + 1.0)
        cap = self.cap
        if cap is None:
            return terms
        terms = torch.where(counts < cap, terms, log_poisson_tail(cap, lam) + lam)
        return torch.where(counts > cap, -math.inf, terms)  # above the cap: impossible

    def log_prob_elements(self, counts: torch.Tensor, rates: torch.Tensor, scored: torch.Tensor,
                          history: torch.Tensor | None = None) -> torch.Tensor:
        """counts, rates, scored (B, T, N)[, history (B, H', N) oldest first] -> (B, T, N).

        Entry (b, t, n) is log p(s_t^n | s_{t-H..t-1}^n, r_t^n): the one-step conditional given the
        counts as passed for the earlier bins (all of them, scored or not: under coordinated dropout
        the history is the true earlier counts), 0 where ``scored`` is False. Every scored entry
        holds -lambda (the log-pmf of a 0); the entries with spikes, which are sparse, add the rest.
        """
        self._check(rates, counts, scored=scored)
        lam = self._intensity(counts, rates, history)  # (B, T, N)
        elements = torch.where(scored, -lam, 0.0)  # (B, T, N)
        counts = counts.to(lam.dtype)
        spiking = (scored & (counts > 0)).reshape(-1).nonzero().squeeze(1)  # (S,) flat indices
        if len(spiking):
            terms = self._spike_terms(counts.reshape(-1)[spiking], lam.reshape(-1)[spiking])  # (S,)
            elements.view(-1).index_add_(0, spiking, terms)  # in place: torch.where's backward needs no output
        return elements

    def log_prob(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor,
                 history: torch.Tensor | None = None) -> torch.Tensor:
        """counts, rates (B, T, N), mask (B, T)[, history (B, H', N) oldest first] -> (B,) log-likelihood.

        Factorises over time given the history: the sum over valid bins and neurons of
        log p(s_t | s_{t-H..t-1}, r_t). Padded bins contribute nothing and feed zeros to the
        history. (Overridden only to accept ``history``.)
        """
        self._check(rates, counts, mask=mask)
        valid = mask[..., None].expand_as(counts)  # (B, T, N)
        spikes = torch.where(valid, counts.to(rates.dtype), 0.0)  # (B, T, N): padded bins feed zeros to the history
        return self.log_prob_elements(spikes, rates, valid, history).sum(dim=(1, 2))  # (B,)

    # -- sampling --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, rates: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None,
               history: torch.Tensor | None = None) -> torch.Tensor:
        """rates (B, T, N), mask (B, T)[, history (B, H', N) oldest first] -> counts (B, T, N), float.

        Sequential over time from a zero history (or ``history``), vectorised over trials and
        neurons; counts are min(Poisson(lambda_t), cap) and zero on padded bins. Each drawn spike
        adds its count times w[n, :] to the drives of the next H bins (a scatter over the spikes
        only, since spikes are sparse), so a step costs O(B N + spikes x H), not O(B N H).
        """
        self._check(rates, mask=mask)
        n_trials, n_time, n_neurons = rates.shape
        h = self.config.history
        weights, gain, bias = self._params(rates)
        base = gain * torch.log(rates.clamp_min(self.config.min_rate)) + bias  # (B, T, N)
        drive = rates.new_zeros(n_trials, n_time + h, n_neurons)  # (B, T + H, N): history drive received so far
        context = self._context(history, rates)
        if context is not None:  # the given history's drive on the first H bins
            first = min(h, n_time)
            drive[:, :first] = history_drive(rates.new_zeros(n_trials, first, n_neurons), weights, context)
        valid = mask.to(rates.dtype)  # (B, T)
        spikes = rates.new_zeros(n_trials, n_time, n_neurons)  # (B, T, N)
        # Flat offsets into drive of (trial, bin t + k, neuron) relative to (trial, t, neuron), k = 1..H.
        lag_offsets = torch.arange(1, h + 1, device=rates.device) * n_neurons  # (H,)
        trial_offsets = torch.arange(n_trials, device=rates.device) * ((n_time + h) * n_neurons)  # (B,)
        flat_drive = drive.view(-1)
        dense_above = n_trials * n_neurons // 8  # more spikes than this in a bin: a dense update is cheaper
        for t in range(n_time):
            lam = self._link(drive[:, t] + base[:, t])  # (B, N)
            draw = capped_poisson(lam, self.cap, generator) * valid[:, t, None]  # (B, N)
            spikes[:, t] = draw
            trial, neuron = draw.nonzero(as_tuple=True)  # (S,), (S,)
            if len(trial) > dense_above:
                drive[:, t + 1:t + 1 + h] += draw[:, None, :] * weights.T[None]  # (B, H, N)
            elif len(trial):
                start = trial_offsets[trial] + t * n_neurons + neuron  # (S,)
                values = draw[trial, neuron][:, None] * weights[neuron]  # (S, H): lag k in column k - 1
                flat_drive.index_add_(0, (start[:, None] + lag_offsets).reshape(-1), values.reshape(-1))
        return spikes

    # -- fitting ---------------------------------------------------------------------------
    def _fit_data(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor) -> tuple[_FitData, int]:
        dtype = self.bias.dtype
        cap = self.cap
        valid = mask[..., None].expand(counts.shape)  # (B, T, N)
        spikes = torch.where(valid, counts.to(dtype), 0.0)  # (B, T, N)
        n_capped = int((spikes > cap).sum()) if cap is not None else 0
        if cap is not None:
            spikes = spikes.clamp_max(cap)
        windows = history_windows(spikes, self.config.history)  # (N, B * n_chunks, chunk + H)
        s = spikes.permute(2, 0, 1).contiguous()  # (N, B, T)
        ok = valid.permute(2, 0, 1)  # (N, B, T)
        poisson = ok & (s < cap) if cap is not None else ok
        spike_index = (poisson & (s > 0)).reshape(-1).nonzero().squeeze(1)
        cap_index = (ok & (s >= cap)).reshape(-1).nonzero().squeeze(1) if cap is not None else spike_index[:0]
        data = _FitData(
            windows=windows,
            log_rates=torch.log(rates.to(dtype).clamp_min(self.config.min_rate)).permute(2, 0, 1).contiguous(),  # (N, B, T)
            no_spike_cap=poisson.to(dtype),
            spike_index=spike_index,
            spike_counts=s.reshape(-1)[spike_index],
            cap_index=cap_index,
            constant=-float(torch.lgamma(s.reshape(-1)[spike_index] + 1.0).sum()),
            n_entries=int(ok.sum()),
            n_time=s.shape[-1],
        )
        return data, n_capped

    def _link_and_slope(self, eta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """lambda = link(eta) and d lambda / d eta, elementwise (no clamping at MIN_INTENSITY here)."""
        if self.config.link == "exp":
            lam = torch.exp(eta.clamp_max(MAX_EXP_ETA))
            return lam, lam.clone()
        return F.softplus(eta), torch.sigmoid(eta)

    def _loss_and_grad(self, data: _FitData) -> float:
        """Mean NLL per valid entry (equal to -log_prob.sum() / entries); its gradient is set on ``.grad``.

        The gradient is written out rather than taken by autograd, which halves the passes over
        the data (at monkey size, 51M entries per pass): with g = d NLL / d eta,
        g = lambda'(eta) (1 - s / lambda) on Poisson-scored entries and
        g = -lambda'(eta) d log P(X >= cap) / d lambda at the cap; then d/db = sum g,
        d/da = sum g log r, and d/dw is the adjoint of the banded matmul (autograd on the small
        Toeplitz construction only).
        """
        weights, gain, bias = self.history_weights, self.rate_gain, self.bias
        n_neurons, n_rows, width = data.windows.shape
        n_time = data.n_time
        chunk = width - weights.shape[1]
        n_chunks = n_rows // data.log_rates.shape[1]
        with torch.enable_grad():
            toeplitz = _toeplitz(weights, chunk)  # (N, chunk + H, chunk)
        with torch.no_grad():
            chunks = data.windows @ toeplitz.detach()  # (N, B * n_chunks, chunk)
            eta = chunks.view(n_neurons, -1, n_chunks * chunk)  # (N, B, n_chunks * chunk)
            eta = eta.add_(bias[:, None, None]) if n_chunks * chunk == n_time else eta[..., :n_time] + bias[:, None, None]
            del chunks
            eta.addcmul_(gain[:, None, None], data.log_rates)  # (N, B, T)
            lam, slope = self._link_and_slope(eta)  # (N, B, T) each
            del eta
            nll = torch.dot(lam.view(-1), data.no_spike_cap.view(-1))  # -log-pmf of a 0 is lambda
            sparse = []  # (flat indices, d NLL / d eta there) of spikes and capped entries
            if len(data.spike_index):
                lam_at = lam.view(-1)[data.spike_index].clamp_min(MIN_INTENSITY)
                nll = nll - (data.spike_counts * torch.log(lam_at)).sum()
                sparse.append((data.spike_index, -data.spike_counts / lam_at * slope.view(-1)[data.spike_index]))
            if len(data.cap_index):
                lam_at = lam.view(-1)[data.cap_index].clamp_min(MIN_INTENSITY).requires_grad_(True)
                with torch.enable_grad():
                    log_tail = log_poisson_tail(self.cap, lam_at)
                    (d_tail,) = torch.autograd.grad(log_tail.sum(), lam_at)
                nll = nll - log_tail.detach().sum()
                sparse.append((data.cap_index, -d_tail * slope.view(-1)[data.cap_index]))
            del lam
            loss = (float(nll) - data.constant) / data.n_entries
            grad = slope.mul_(data.no_spike_cap)  # (N, B, T): the slope's memory, reused
            for index, values in sparse:
                grad.view(-1).index_add_(0, index, values)
            grad.div_(data.n_entries)
            bias.grad = grad.sum(dim=(1, 2))
            gain.grad = torch.linalg.vecdot(grad.view(n_neurons, -1), data.log_rates.view(n_neurons, -1))
            padded = grad if n_chunks * chunk == n_time else F.pad(grad, (0, n_chunks * chunk - n_time))
            padded = padded.view(n_neurons, -1, chunk)  # (N, B * n_chunks, chunk)
            grad_toeplitz = data.windows.transpose(1, 2) @ padded  # (N, chunk + H, chunk)
        (weights.grad,) = torch.autograd.grad(toeplitz, weights, grad_toeplitz)
        return loss

    def fit(self, counts: torch.Tensor, rates: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
        """Fit w, a, b to real counts and encoder rates (B, T, N), mask (B, T), by full-batch AdamW.

        Parameters are (re)created for N neurons at w = 0, a = 1, b = 0 on the device of ``rates``.
        Returns the fit figures: final and initial mean NLL per valid entry (nats), iterations,
        whether the loss converged, how many counts were capped, and seconds taken.
        """
        if rates.ndim != 3 or counts.shape != rates.shape or mask.shape != rates.shape[:2]:
            raise DataError("counts", f"expected counts and rates of one shape (trials, time, neurons) and mask "
                                      f"(trials, time); got {tuple(counts.shape)}, {tuple(rates.shape)}, "
                                      f"{tuple(mask.shape)}")
        if not bool(mask.any()) or rates.shape[-1] == 0:
            raise DataError("mask", "spike-history: no valid bins to fit on")
        started = time.perf_counter()
        self.to(rates.device)
        self.reset_parameters(rates.shape[-1])
        data, n_capped = self._fit_data(counts, rates, mask)
        cfg = self.config.fit
        optimiser = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        from tqdm.auto import tqdm

        previous, calm, converged, initial, iterations = None, 0, False, math.nan, 0
        bar = tqdm(total=cfg.max_iter, desc="spike-history fit", unit="it", disable=not cfg.progress, leave=False)
        for iterations in range(1, cfg.max_iter + 1):
            value = self._loss_and_grad(data)  # sets .grad
            if not math.isfinite(value):
                raise LdnsError(f"spike-history: the NLL became {value} at iteration {iterations}; "
                                f"lower fit.lr (now {cfg.lr}) or use link: softplus")
            initial = value if iterations == 1 else initial
            optimiser.step()
            bar.update(1)
            bar.set_postfix(nll=f"{value:.5f}", refresh=False)
            steady = previous is not None and abs(previous - value) <= cfg.tol * max(abs(previous), 1e-12)
            calm = calm + 1 if steady else 0
            previous = value
            if calm >= PATIENCE:
                converged = True
                break
        bar.close()
        final = self._loss_and_grad(data)
        optimiser.zero_grad(set_to_none=True)
        return {"nll": final, "initial_nll": initial, "iterations": iterations, "converged": converged,
                "capped_counts": n_capped, "n_neurons": self.n_neurons, "seconds": time.perf_counter() - started}

    def extra_repr(self) -> str:
        cfg = self.config
        return (f"n_neurons={self.n_neurons}, history={cfg.history}, link={cfg.link!r}, cap={self.cap}"
                + (", bernoulli" if cfg.bernoulli else ""))
