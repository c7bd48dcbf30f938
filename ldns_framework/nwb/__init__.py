"""Neurodata Without Borders (NWB) helpers of the core: synthetic files laid out as real recordings,
and the framework's products written as NWB.

:func:`write_synthetic_mc_maze` writes a pair of files named and laid out as the Neural Latents
Benchmark's MC_Maze files (DANDI 000128), with latent-driven spikes; ``ldns make-synthetic-nwb``
calls it. :mod:`ldns_framework.nwb.generated` writes and reads samples and encodings as NWB
(``ldns sample/encode --out FILE.nwb``), on the clock of :mod:`ldns_framework.nwb.layout`, with the
Units table of :mod:`ldns_framework.nwb.units`. pynwb is imported only when a file is written or read.
"""

from __future__ import annotations

from ldns_framework.nwb.synthetic import (
    PRESETS,
    SyntheticPreset,
    write_synthetic_mc_maze,
)

__all__ = ["PRESETS", "SyntheticPreset", "write_synthetic_mc_maze"]
