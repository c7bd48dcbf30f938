"""The ``speech-synthetic`` data source: variable-length trials shaped like the human attempted-speech
data (METHOD.md section 6; LDNS_NOTES 2.3): 20 ms bins, 128 channels, trials over a wide range of lengths.

SYNTHETIC, for testing variable-length generation: K noisy latent oscillators (dynamics.py; 0.5-4 Hz
by default, syllable-like rhythms) started from their stationary distribution, so the dynamics do not
depend on the trial length; rates r = b_n exp(g c_n . x - g^2 |c_n|^2 / 2) through a random readout
(unit-norm rows c_n, per-channel baselines b_n log-normal around ``mean_rate``); counts ~
Poisson(r), history-free. Lengths are uniform integers in [min_length, max_length]; every trial is
right-padded with zeros to ``max_length`` bins and ``SpikeData.lengths`` holds the lengths. The true
latents and rates are the covariates ``latents_true`` and ``rates_true`` (zero on padding).

Trials are independent draws, so the splits are contiguous blocks in trial order (train, val, test).

Usage::

    from ldns_plugins.speech.source import SpeechSyntheticConfig, SpeechSyntheticSource

    data = SpeechSyntheticSource(SpeechSyntheticConfig(n_trials=300, seed=1)).load()
    data.counts.shape                  # (300, 400, 128) int32, zero past each length
    data.lengths.min(), data.lengths.max()   # within [50, 400]
    data.bin_width_s                   # 0.02

In a spec: ``data: {type: speech-synthetic, n_trials: 2000, min_length: 50, max_length: 400}``.
"""

from __future__ import annotations

import attrs
import numpy as np

from ldns_framework import DataSource, SpikeData, limits
from ldns_plugins.speech.config import SpeechSyntheticConfig
from ldns_plugins.speech.dynamics import oscillator_latents, poisson_rates

__all__ = ["SpeechSyntheticConfig", "SpeechSyntheticSource"]

#: Trials simulated and read out together (bounds the temporaries to a few MB per block).
_TRIALS_PER_BLOCK = 64


class SpeechSyntheticSource(DataSource):
    """Generates the speech-style data set; the same config (seed included) gives identical arrays."""

    config_class = SpeechSyntheticConfig

    def frequencies_hz(self) -> np.ndarray:
        """The K oscillator frequencies (K,), log-evenly spaced between the configured bounds."""
        cfg = self.config
        return np.geomspace(cfg.min_frequency_hz, cfg.max_frequency_hz, cfg.n_oscillators)

    def load(self) -> SpikeData:
        cfg = self.config
        limits.check_array("data", {"n_trials": cfg.n_trials, "max_length": cfg.max_length,
                                    "n_channels": cfg.n_channels}, 8)  # counts and true rates, 4 bytes each
        length_seed, readout_seed, latent_seed, spike_seed = np.random.SeedSequence(cfg.seed).spawn(4)
        lengths = np.random.default_rng(length_seed).integers(cfg.min_length, cfg.max_length + 1, cfg.n_trials)
        readout_rng = np.random.default_rng(readout_seed)
        n_latents = 2 * cfg.n_oscillators
        readout = readout_rng.standard_normal((cfg.n_channels, n_latents))  # (N, 2K)
        readout /= np.linalg.norm(readout, axis=1, keepdims=True)  # unit rows: every channel's drive has std g
        baselines = cfg.mean_rate * np.exp(cfg.rate_spread * readout_rng.standard_normal(cfg.n_channels))  # (N,)
        shape = (cfg.n_trials, cfg.max_length)
        latents = np.zeros((*shape, n_latents), dtype=np.float32)
        rates = np.zeros((*shape, cfg.n_channels), dtype=np.float32)
        counts = np.zeros((*shape, cfg.n_channels), dtype=np.int32)
        valid = np.arange(cfg.max_length)[None, :] < lengths[:, None]  # (n, T)
        latent_rng, spike_rng = np.random.default_rng(latent_seed), np.random.default_rng(spike_seed)
        for start in range(0, cfg.n_trials, _TRIALS_PER_BLOCK):
            part = slice(start, start + _TRIALS_PER_BLOCK)
            block = oscillator_latents(latent_rng, valid[part].shape[0], cfg.max_length, self.frequencies_hz(),
                                       cfg.bin_width_s, cfg.correlation_time_s)  # (b, T, 2K)
            keep = valid[part]  # (b, T): padding stays zero in all three arrays
            latents[part][keep] = block[keep]
            rates[part][keep] = poisson_rates(block[keep][None], readout, baselines, cfg.gain)[0]
            counts[part][keep] = spike_rng.poisson(rates[part][keep])
        return SpikeData(counts=counts, lengths=lengths, covariates={"latents_true": latents, "rates_true": rates},
                         bin_width_s=cfg.bin_width_s, splits=self._splits(), metadata=self._metadata())

    def _splits(self) -> dict[str, np.ndarray]:
        """Contiguous train/val/test blocks: the trials are independent draws, so any block is a random sample."""
        cfg = self.config
        bounds = np.rint(np.cumsum(cfg.split)[:2] * cfg.n_trials).astype(int)
        return dict(zip(("train", "val", "test"), np.split(np.arange(cfg.n_trials), bounds)))

    def _metadata(self) -> dict:
        cfg = self.config
        parameters = {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(cfg).items()}
        return {"source": "speech-synthetic", "synthetic": True,
                "generator": "noisy latent oscillators -> exponential readout -> Poisson (variable lengths)",
                "parameters": parameters, "frequencies_hz": self.frequencies_hz().tolist()}
