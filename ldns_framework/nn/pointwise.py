"""A 1x1 convolution over channels-first sequences computed as a batched matrix product.

``torch.nn.Conv1d`` with kernel size 1 goes through oneDNN's convolution on the CPU, which at the
shapes of the LDNS blocks (batch 32-128, 64-512 channels, 256 bins) runs well below the GEMM rate.
The same product as one ``baddbmm`` of the weight, broadcast over the batch, against x (B, C, L)
is faster, forward and backward (2 threads, fwd+bwd, ad-hoc timings on the development machine):
64 -> 128 channels at batch 64 5.8 -> 3.9 ms, 128 -> 64 5.8 -> 4.2 ms, 256 -> 512 at batch 128
176 -> 131 ms. On a GPU, where these steps are bound by kernel launches, cuDNN's convolution is the
faster or as fast (``make bench --device cuda`` on an H200, benchmarks/results/2026-11-26-nvidia-h200-2.json:
with the product the Lorenz denoiser steps took 1.08-1.10x as long, the autoencoder steps 0.94-1.11x),
so there the layer stays a convolution.
The parameters are Conv1d's (weight (O, C, 1), bias (O,)), so checkpoints and ``state_dict`` keys
are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PointwiseConv1d"]


class PointwiseConv1d(nn.Conv1d):
    """``nn.Conv1d(in_channels, out_channels, 1, bias=bias)``: x (B, C, L) -> (B, O, L)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return super().forward(x)
        weight = self.weight.squeeze(-1).expand(x.shape[0], -1, -1)  # (B, O, C), a view
        if self.bias is None:
            return torch.bmm(weight, x)  # (B, O, L)
        bias = self.bias[None, :, None].expand(x.shape[0], -1, x.shape[-1])  # (B, O, L), a view
        return torch.baddbmm(bias, weight, x)  # (B, O, L)
