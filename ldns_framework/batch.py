"""The torch-side minibatch handed to components (imports torch; kept out of discovery)."""

from __future__ import annotations

import attrs
import torch

from ldns_framework.errors import DataError


@attrs.frozen
class Batch:
    """counts (B, T, N) float, mask (B, T) bool (True = valid bin), condition or None."""

    counts: torch.Tensor
    mask: torch.Tensor
    condition: torch.Tensor | None = None

    def __attrs_post_init__(self) -> None:
        if self.counts.ndim != 3:
            raise DataError("batch.counts", f"expected (B, T, N), got shape {tuple(self.counts.shape)}")
        if self.mask.dtype != torch.bool or tuple(self.mask.shape) != tuple(self.counts.shape[:2]):
            raise DataError("batch.mask", f"expected bool of shape {tuple(self.counts.shape[:2])}, got {self.mask.dtype} {tuple(self.mask.shape)}")
        if self.condition is not None and self.condition.shape[0] != self.counts.shape[0]:
            raise DataError("batch.condition", f"expected {self.counts.shape[0]} rows, got {self.condition.shape[0]}")

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.counts.to(device), self.mask.to(device),
                     None if self.condition is None else self.condition.to(device))
