"""Options of the ``arrays`` data source, without torch (read when a spec is validated)."""

from __future__ import annotations

import attrs

from ldns_framework import lazy_option, memory_limit_option, option

__all__ = ["ArraysConfig"]


def _fractions_ok(_instance, _attribute, value) -> None:
    if len(value) != 3 or any(v < 0 for v in value) or abs(sum(value) - 1.0) > 1e-6:
        raise ValueError(f"expected three non-negative fractions (train, val, test) summing to 1, got {list(value)}")


@attrs.frozen
class ArraysConfig:
    """Options of the ``arrays`` data source."""

    path: str = option(doc="Path of the .npz file, or of a .npy file holding the counts alone.")
    layout: str = option("trials time neurons", doc="Axis order of 'counts' in the file.",
                         choices=("trials time neurons", "trials neurons time", "neurons time trials",
                                  "time trials neurons", "neurons trials time", "time neurons trials"))
    bin_width_s: float | None = option(None, doc="Bin width in seconds; null = the file's 'bin_width_s', else 0.005.", gt=0)
    split: tuple[float, float, float] = attrs.field(
        default=(0.7, 0.1, 0.2), validator=_fractions_ok,
        metadata={"ldns_doc": "Train/val/test fractions used when the file has no split/<name> arrays."})
    split_seed: int = option(42, doc="Seed of the random split.", ge=0)
    lazy: bool | None = lazy_option("Leave the counts in the file and read each batch from it (needs .npy or an "
                                    "np.savez archive, not np.savez_compressed, with trials first)")
    memory_limit_mb: int | None = memory_limit_option()

    def __attrs_post_init__(self) -> None:
        if not self.path:
            raise ValueError("path: expected the path of an .npz or .npy file, got nothing")
