"""What the ``nwb`` source selected, in words: the lines ``ldns data`` prints under the summary.

The source stores them as ``metadata["listing"]`` (label -> one line), so the CLI prints them
without knowing this plugin: which units (ids, held-in/held-out, the filter), how trials were
split and into how many, and the windows (count, length, stride, alignment or intervals).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["selection_listing"]


def _ids(ids: list[int], most: int = 8) -> str:
    """Unit ids for one line: all of them when few, else the first and last few."""
    if len(ids) <= most:
        return ", ".join(str(i) for i in ids)
    return f"{', '.join(str(i) for i in ids[:most // 2])}, ..., {', '.join(str(i) for i in ids[-(most // 2):])}"


def _split_rule(cfg: Any) -> str:
    if cfg.cut == "windows":
        fractions = ", ".join(f"{f:g}" for f in cfg.window_split)
        return f"windows shuffled (seed {cfg.split_seed}) and split train/val/test {fractions}"
    if cfg.split_column is None:
        return "no split column: every trial in train"
    if cfg.splits == "file":
        return f"one split per value of trials.{cfg.split_column}, selecting {list(cfg.select)}"
    return (f"reference: train = {cfg.split_column} 'train' + first half of 'val'; the rest of 'val' split "
            f"val:test 1:3 (seed {cfg.split_seed}); selecting {list(cfg.select)}")


def selection_listing(cfg: Any, metadata: Mapping[str, Any], splits: Mapping[str, np.ndarray],
                      n_bins: int) -> dict[str, str]:
    """label -> line describing the units, splits, windows and files a load selected."""
    ids = list(metadata["unit_ids"])
    held = (f"{metadata['n_heldin']} held-in, {metadata['n_heldout']} held-out by column {cfg.heldout_column!r}"
            if metadata["n_heldout"] else f"all held-in: none marked by a column {cfg.heldout_column!r}")
    chosen = (f"{cfg.unit_column} in {list(cfg.unit_values)}" if cfg.unit_column else "every unit")
    n_windows = sum(len(v) for v in splits.values())
    if cfg.cut == "windows":
        where = (f"intervals/{cfg.intervals}" + (f" tagged {list(cfg.tags)}" if cfg.tags else "")
                 if cfg.intervals else "the whole recording")
        windows = (f"{n_windows} windows of {cfg.window_ms} ms ({n_bins} bins of {cfg.bin_ms} ms), stride "
                   f"{cfg.stride_ms or cfg.window_ms} ms, over {where}")
    else:
        start, stop = cfg.align_range_ms
        windows = (f"{n_windows} trials aligned on trials.{cfg.align_event}, window [{start}, {stop}) ms "
                   f"({n_bins} bins of {cfg.bin_ms} ms)"
                   + (", each ending at its stop_time" if cfg.lengths_from_stop else ""))
    files = f"{len(metadata['files'])} read: {', '.join(metadata['files'])}"
    if metadata["skipped_files"]:
        files += f"; skipped (nothing selected): {', '.join(metadata['skipped_files'])}"
    return {
        "units": f"{len(ids)} ({held}); {chosen}; ids {_ids(ids)}",
        "splits": f"{', '.join(f'{k} {len(v)}' for k, v in splits.items())} ({_split_rule(cfg)})",
        "windows": windows,
        "files": files,
    }
