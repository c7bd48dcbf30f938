"""Neurodata Without Borders (NWB) helpers of the core: synthetic files laid out as real recordings.

:func:`write_synthetic_mc_maze` writes a pair of files named and laid out as the Neural Latents
Benchmark's MC_Maze files (DANDI 000128), with latent-driven spikes; ``ldns make-synthetic-nwb``
calls it. pynwb is imported only when a file is written.
"""

from __future__ import annotations

from ldns_framework.nwb.synthetic import (
    PRESETS,
    SyntheticPreset,
    write_synthetic_mc_maze,
)

__all__ = ["PRESETS", "SyntheticPreset", "write_synthetic_mc_maze"]
