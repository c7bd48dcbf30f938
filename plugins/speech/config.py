"""Options of the ``speech-synthetic`` data source, without torch (read when a spec is validated)."""

from __future__ import annotations

import attrs

from ldns_framework import option

__all__ = ["SpeechSyntheticConfig"]


@attrs.frozen
class SpeechSyntheticConfig:
    """Options of the ``speech-synthetic`` data source; defaults follow the human data's shape (METHOD.md section 6)."""

    n_trials: int = option(1000, doc="Number of trials (the human data has 8417 training trials); n_trials x "
                                     "max_length x n_channels must fit in memory (checked before generating).",
                           ge=3, le=10_000_000)
    n_channels: int = option(128, doc="Recording channels (the human data: 128 threshold-crossing channels of area 6v).",
                             ge=1, le=100_000)
    min_length: int = option(50, doc="Shortest trial, in bins (1 s at 20 ms bins).", ge=1, le=1_000_000)
    max_length: int = option(400, doc="Longest trial, in bins; every trial is padded to it (the human data: <= 512).",
                             ge=1, le=1_000_000)
    bin_width_s: float = option(0.02, doc="Bin width in seconds (the human data: 20 ms).", gt=0, le=10)
    n_oscillators: int = option(3, doc="Latent oscillators K (latent dimension 2K).", ge=1, le=1000)
    min_frequency_hz: float = option(0.5, doc="Lowest oscillator frequency; frequencies are spread log-evenly.", gt=0)
    max_frequency_hz: float = option(4.0, doc="Highest oscillator frequency (below the Nyquist 1 / (2 bin_width_s)).",
                                     gt=0)
    correlation_time_s: float = option(1.0, doc="Decay time tau of each oscillator's memory, in seconds.", gt=0)
    gain: float = option(0.5, doc="Gain g of the latent drive on the log-rates.", ge=0, le=10)
    mean_rate: float = option(0.4, doc="Median channel mean count per bin (0.4 per 20 ms = 20 Hz).", gt=0, le=1000)
    rate_spread: float = option(0.4, doc="Std of the log of the channel mean counts around log(mean_rate).",
                                ge=0, le=10)
    split: tuple[float, float, float] = option((0.8, 0.1, 0.1), doc="Train/val/test fractions, summing to 1.",
                                               ge=0, le=1)
    seed: int = option(0, doc="Seed of lengths, latents, readout and spikes.", ge=0, le=2**32 - 1)

    def __attrs_post_init__(self) -> None:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length: expected <= max_length={self.max_length}, got {self.min_length}")
        if self.min_frequency_hz > self.max_frequency_hz:
            raise ValueError(f"min_frequency_hz: expected <= max_frequency_hz={self.max_frequency_hz}, "
                             f"got {self.min_frequency_hz}")
        if self.max_frequency_hz >= 0.5 / self.bin_width_s:
            raise ValueError(f"max_frequency_hz: expected below the Nyquist frequency {0.5 / self.bin_width_s:g} Hz "
                             f"of bin_width_s={self.bin_width_s}, got {self.max_frequency_hz}")
        if len(self.split) != 3 or abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split: expected three fractions (train, val, test) summing to 1, got {list(self.split)}")
