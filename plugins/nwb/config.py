"""Options of the ``nwb`` data source, without torch (read when a spec is validated)."""

from __future__ import annotations

import attrs

from ldns_framework import lazy_option, memory_limit_option, option

__all__ = ["NwbConfig"]


def _pair_ok(_instance, attribute, value) -> None:
    if len(value) != 2 or int(value[0]) != value[0] or int(value[1]) != value[1] or value[0] >= value[1]:
        raise ValueError(f"expected two whole milliseconds [start, stop] with start < stop, got {list(value)}")


def _fractions_ok(value) -> None:
    if len(value) != 3 or any(v < 0 for v in value) or abs(sum(value) - 1.0) > 1e-6:
        raise ValueError(f"expected three non-negative fractions (train, val, test) summing to 1, got {list(value)}")


@attrs.frozen
class NwbConfig:
    """Options of the ``nwb`` data source (trial-aligned, as the Neural Latents Benchmark)."""

    path: str = option(doc="An .nwb file, or a directory whose *.nwb files (in it or below it) are all read, sorted by path.")
    align_event: str = option("move_onset_time", doc="Trials-table column (seconds) each trial is aligned to.")
    align_range_ms: tuple[int, int] = attrs.field(
        default=(-250, 450), validator=_pair_ok,
        metadata={"ldns_doc": "Spike window [start, stop) in ms relative to the alignment event; "
                              "its length must be a multiple of bin_ms."})
    bin_ms: int = option(5, doc="Bin width in whole milliseconds (bins lie on each file's clock grid).", ge=1)
    split_column: str | None = option("split", doc="Trials-table column naming each trial's split; null = none.")
    select: tuple[str, ...] = option(("train", "val"), doc="Values of split_column whose trials are loaded.")
    splits: str = option("reference", choices=("reference", "file"),
                         doc="reference: train + first half of val / rest of val split val:test 1:3 "
                             "(LDNS's MC_Maze split); file: one split per value of split_column.")
    split_seed: int = option(42, doc="Seed of the random draws: the reference split's val/test (torch.Generator), "
                                     "the windows split.", ge=0)
    heldout_column: str = option("heldout", doc="Units column marking held-out units (placed after the held-in "
                                                "ones); a file without it has only held-in units.")
    behavior: tuple[str, ...] = option(("hand_vel",), doc="Behaviour series loaded as (trials, time, dim) covariates "
                                                          "(a name, or container/name inside the module).")
    behavior_module: str = option("behavior", doc="Processing module holding the behaviour series "
                                                  "('acquisition' for the file's acquisition group).")
    behavior_lag_ms: int = option(100, doc="Behaviour window = spike window shifted by this many ms.")
    behavior_scale: float | None = option(None, doc="Factor applied to behaviour values; null = each series' "
                                                    "conversion (to its declared unit: mm/s -> m/s for MC_Maze).")
    allow_silent_units: bool = option(False, doc="Keep units with no spike in any selected window "
                                                 "(otherwise an error names them).")
    unit_column: str | None = option(None, doc="Units column used to select units (e.g. a brain region or a "
                                               "quality label); null = every unit.")
    unit_values: tuple[str, ...] = option((), doc="Values of unit_column whose units are kept (compared as text).")
    lazy: bool | None = lazy_option("Bin each batch's windows from the spike times when the batch is read instead "
                                    "of binning every window at load (spike times and behaviour stay in memory)")
    memory_limit_mb: int | None = memory_limit_option()
    cut: str = option("trials", choices=("trials", "windows", "stored"),
                      doc="trials: align on a trials-table event; windows: fixed-length windows tiled over the "
                          "recording (or the intervals of a named table), for recordings without trials; stored: "
                          "the trial cut recorded in a file written by `ldns sample/encode --out FILE.nwb` "
                          "(its other options replace these).")
    lengths_from_stop: bool = option(False, doc="trials: a trial's valid bins end at its stop_time (variable-length "
                                                "trials, zero-padded to the window; lengths < bins).")
    window_ms: int = option(1000, doc="windows: window length in ms (a multiple of bin_ms).", ge=1)
    stride_ms: int | None = option(None, doc="windows: ms between window starts; null = window_ms.", ge=1)
    intervals: str | None = option(None, doc="windows: interval table (e.g. epochs) whose intervals are tiled; "
                                             "null = the whole recording.")
    tags: tuple[str, ...] = option((), doc="windows: keep only the intervals with one of these tags.")
    window_split: tuple[float, float, float] = attrs.field(
        default=(0.7, 0.1, 0.2), validator=lambda _i, _a, v: _fractions_ok(v),
        metadata={"ldns_doc": "windows: train/val/test fractions of the random split (split_seed)."})

    def __attrs_post_init__(self) -> None:
        if not self.path:
            raise ValueError("path: expected an .nwb file or a directory of them, got nothing")
        length = self.align_range_ms[1] - self.align_range_ms[0]
        if length % self.bin_ms:
            raise ValueError(f"align_range_ms: window length {length} ms is not a multiple of bin_ms={self.bin_ms}")
        if self.window_ms % self.bin_ms:
            raise ValueError(f"window_ms: {self.window_ms} ms is not a multiple of bin_ms={self.bin_ms}")
        if self.stride_ms is not None and self.stride_ms % self.bin_ms:
            raise ValueError(f"stride_ms: {self.stride_ms} ms is not a multiple of bin_ms={self.bin_ms}")
        if self.unit_column is not None and not self.unit_values:
            raise ValueError("unit_values: unit_column is set, so list the values of the units to keep")
        if self.cut == "trials" and self.splits == "reference" and self.split_column is None:
            raise ValueError("splits: 'reference' needs a split_column")
