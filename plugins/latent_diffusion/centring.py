"""Centred, edge-replicated windows of variable-length trials (the reference human setting, LDNS_NOTES 1.6).

A trial of length l is placed in a window of W bins with (W - l) // 2 bins before it and the
rest after; the bins outside are copies of its first and last bins (``replicate`` padding, not
zeros), and the window's mask is 1 on the trial. :func:`centre` builds the windows from
right-padded trials (the framework's layout) and :func:`uncentre` cuts them back out.
"""

from __future__ import annotations

import torch

__all__ = ["centre", "centred_mask", "uncentre"]


def _offsets(lengths: torch.Tensor, window: int) -> torch.Tensor:
    """Left padding of each trial, (W - l) // 2, (B,) long."""
    if int(lengths.max()) > window:
        raise ValueError(f"lengths: expected at most the window of {window} bins, got {int(lengths.max())}")
    return torch.div(window - lengths, 2, rounding_mode="floor")


def centred_mask(lengths: torch.Tensor, window: int) -> torch.Tensor:
    """lengths (B,) long -> (B, W) bool, True on each trial's centred bins."""
    left = _offsets(lengths, window)[:, None]  # (B, 1)
    bins = torch.arange(window, device=lengths.device)[None, :]  # (1, W)
    return (bins >= left) & (bins < left + lengths[:, None])


def centre(values: torch.Tensor, lengths: torch.Tensor, window: int) -> torch.Tensor:
    """values (B, T, C) right-padded, lengths (B,) long -> (B, W, C): each trial centred in the
    window, edge-replicated outside it. Bins of ``values`` past a trial's length are never read."""
    left = _offsets(lengths, window)[:, None]  # (B, 1)
    bins = torch.arange(window, device=values.device)[None, :]  # (1, W)
    last = (lengths[:, None] - 1).clamp_min(0)  # (B, 1): a trial's last bin (bin 0 for an empty one)
    source = torch.minimum((bins - left).clamp_min(0), last)  # (B, W): index into the trial
    return values.gather(1, source[..., None].expand(-1, -1, values.shape[-1]))  # (B, W, C)


def uncentre(windows: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """windows (B, W, C), lengths (B,) long -> (B, max(lengths), C): each trial's centred bins,
    right-padded with zeros (the inverse of :func:`centre` on valid bins)."""
    length = int(lengths.max())
    left = _offsets(lengths, windows.shape[1])[:, None]  # (B, 1)
    bins = torch.arange(length, device=windows.device)[None, :]  # (1, L)
    source = (left + bins).clamp_max(windows.shape[1] - 1)  # (B, L)
    cut = windows.gather(1, source[..., None].expand(-1, -1, windows.shape[-1]))  # (B, L, C)
    return cut.masked_fill(~(bins < lengths[:, None])[..., None], 0.0)  # (B, L, C): zero past each length
