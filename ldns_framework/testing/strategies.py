"""Hypothesis strategies for spike data, in the (trials, time, neurons) layout (DESIGN.md section 2).

Each dimension argument takes an int (fixed) or a strategy of ints (drawn); ``None`` uses a
small default range. Arrays are numpy (``observation_batches`` gives torch tensors)::

    from hypothesis import given
    from ldns_framework.testing import strategies as lst

    @given(lst.observation_batches(n_neurons=3))
    def test_log_prob_is_finite(batch):
        counts, rates, mask = batch                  # (B, T, 3) float32, (B, T, 3) float32, (B, T) bool
        ...

Requires ``hypothesis`` (the ``test`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["conditions", "lengths", "masks", "observation_batches", "rates", "shapes", "spike_counts", "spike_data"]

IntOrStrategy = Any  # int | st.SearchStrategy[int] | None


def _dim(value: IntOrStrategy, default: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    if value is None:
        return default
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(int(value))


@st.composite
def shapes(draw: st.DrawFn, n_trials: IntOrStrategy = None, n_time: IntOrStrategy = None,
           n_neurons: IntOrStrategy = None) -> tuple[int, int, int]:
    """(trials, time, neurons), by default 1-4 trials, 1-12 bins, 1-5 neurons."""
    return (draw(_dim(n_trials, st.integers(1, 4))), draw(_dim(n_time, st.integers(1, 12))),
            draw(_dim(n_neurons, st.integers(1, 5))))


@st.composite
def spike_counts(draw: st.DrawFn, shape: tuple[int, int, int] | None = None, *, max_count: int = 10,
                 n_trials: IntOrStrategy = None, n_time: IntOrStrategy = None,
                 n_neurons: IntOrStrategy = None) -> np.ndarray:
    """Non-negative integer counts (trials, time, neurons), int64, in 0..max_count, mostly small (sparse)."""
    shape = shape or draw(shapes(n_trials, n_time, n_neurons))
    small = st.integers(0, min(2, max_count))
    elements = st.one_of(st.just(0), small, st.integers(0, max_count))
    return draw(hnp.arrays(np.int64, shape, elements=elements))


@st.composite
def rates(draw: st.DrawFn, shape: tuple[int, int, int] | None = None, *, min_rate: float = 1e-3,
          max_rate: float = 20.0, n_trials: IntOrStrategy = None, n_time: IntOrStrategy = None,
          n_neurons: IntOrStrategy = None) -> np.ndarray:
    """Positive expected counts per bin (trials, time, neurons), float64, log-uniform-ish in [min_rate, max_rate]."""
    if not 0 < min_rate <= max_rate:
        raise ValueError(f"expected 0 < min_rate <= max_rate, got {min_rate}, {max_rate}")
    shape = shape or draw(shapes(n_trials, n_time, n_neurons))
    log_lo, log_hi = np.log(min_rate), np.log(max_rate)
    logs = draw(hnp.arrays(np.float64, shape, elements=st.floats(log_lo, log_hi, allow_nan=False)))
    return np.clip(np.exp(logs), min_rate, max_rate)


@st.composite
def lengths(draw: st.DrawFn, n_trials: IntOrStrategy = None, max_length: IntOrStrategy = None, *,
            full_trial: bool = False) -> np.ndarray:
    """Valid lengths of right-padded trials, int64 in 1..max_length; ``full_trial`` makes the first one full."""
    n = draw(_dim(n_trials, st.integers(1, 4)))
    longest = draw(_dim(max_length, st.integers(1, 12)))
    out = draw(hnp.arrays(np.int64, (n,), elements=st.integers(1, longest)))
    if full_trial and n:
        out[0] = longest
    return out


@st.composite
def masks(draw: st.DrawFn, n_trials: IntOrStrategy = None, n_time: IntOrStrategy = None, *,
          full_trial: bool = False) -> np.ndarray:
    """Masks (trials, time) bool of right-padded trials: True on each trial's first ``length`` >= 1 bins."""
    n_time_value = draw(_dim(n_time, st.integers(1, 12)))
    valid = draw(lengths(n_trials, n_time_value, full_trial=full_trial))
    return np.arange(n_time_value)[None, :] < valid[:, None]


CONDITION_KINDS = ("vector", "sequence", "angle")


def conditions(kind: str = "vector", n_trials: IntOrStrategy = None, dim: IntOrStrategy = None,
               n_time: IntOrStrategy = None, *, bound: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    """Condition arrays as conditioners produce them, float32: "vector" (trials, dim), "sequence" (trials, time, dim).

    ``kind="angle"`` gives reach directions as (cos theta, sin theta) vectors (trials, 2).
    """
    if kind not in CONDITION_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(CONDITION_KINDS)}, got {kind!r}")
    return _conditions(kind, n_trials, dim, n_time, bound)


@st.composite
def _conditions(draw: st.DrawFn, kind: str, n_trials: IntOrStrategy, dim: IntOrStrategy, n_time: IntOrStrategy,
                bound: float) -> np.ndarray:
    n = draw(_dim(n_trials, st.integers(1, 4)))
    if kind == "angle":
        theta = draw(hnp.arrays(np.float64, (n,), elements=st.floats(-np.pi, np.pi, allow_nan=False)))
        return np.stack([np.cos(theta), np.sin(theta)], axis=1).astype(np.float32)
    d = draw(_dim(dim, st.integers(1, 3)))
    shape: tuple[int, ...] = (n, d) if kind == "vector" else (n, draw(_dim(n_time, st.integers(1, 12))), d)
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=32)
    return draw(hnp.arrays(np.float32, shape, elements=elements))


@st.composite
def spike_data(draw: st.DrawFn, n_trials: IntOrStrategy = None, n_time: IntOrStrategy = None,
               n_neurons: IntOrStrategy = None, *, max_count: int = 10, variable_length: bool = True) -> Any:
    """A valid :class:`ldns_framework.SpikeData` (counts zero on padding when ``variable_length``)."""
    from ldns_framework.data import SpikeData

    shape = draw(shapes(n_trials, n_time, n_neurons))
    counts = draw(spike_counts(shape, max_count=max_count))
    if variable_length:
        valid = draw(lengths(shape[0], shape[1]))
        counts = counts * (np.arange(shape[1])[None, :] < valid[:, None])[..., None]
        return SpikeData(counts=counts, lengths=valid)
    return SpikeData(counts=counts)


@st.composite
def observation_batches(draw: st.DrawFn, n_neurons: IntOrStrategy = None, n_trials: IntOrStrategy = None,
                        n_time: IntOrStrategy = None, *, max_count: int = 5, min_rate: float = 1e-3,
                        max_rate: float = 10.0, padded: bool = True) -> tuple[Any, Any, Any]:
    """(counts, rates, mask) torch tensors for ``log_prob``: float32, float32 > 0, bool; counts zero on padding."""
    import torch

    shape = draw(shapes(n_trials, n_time, n_neurons))
    counts = draw(spike_counts(shape, max_count=max_count))
    rate_values = draw(rates(shape, min_rate=min_rate, max_rate=max_rate))
    mask = draw(masks(shape[0], shape[1])) if padded else np.ones(shape[:2], dtype=bool)
    counts = counts * mask[..., None]
    return (torch.as_tensor(counts, dtype=torch.float32), torch.as_tensor(rate_values, dtype=torch.float32),
            torch.as_tensor(mask))
