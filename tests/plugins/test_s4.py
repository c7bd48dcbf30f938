"""The S4D layer: causality, FFT vs direct convolution, the ZOH kernel, any length."""

from __future__ import annotations

import pytest
import torch

from ldns_plugins.s4_autoencoder.s4 import S4D, direct_convolution, fft_convolution

H, L = 16, 32


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_causal_output_ignores_later_inputs() -> None:
    layer = S4D(H, bidirectional=False)
    u = torch.randn(2, H, L)  # (B, H, L)
    for t in (0, 10, L - 2):
        changed = u.clone()
        changed[..., t + 1:] = torch.randn(2, H, L - t - 1)
        torch.testing.assert_close(layer(changed)[..., : t + 1], layer(u)[..., : t + 1])


def test_bidirectional_output_sees_later_inputs() -> None:
    layer = S4D(H, bidirectional=True)
    u = torch.randn(2, H, L)
    changed = u.clone()
    changed[..., 20:] += 1.0
    assert (layer(changed)[..., :20] - layer(u)[..., :20]).abs().max() > 1e-3


@pytest.mark.parametrize("bidirectional", [False, True])
def test_fft_path_equals_direct_convolution(bidirectional: bool) -> None:
    layer = S4D(H, bidirectional=bidirectional)
    u = torch.randn(3, H, L)
    with torch.no_grad():
        kernel = layer.kernel(L)  # (dir, H, L)
        assert kernel.shape == (2 if bidirectional else 1, H, L)
        expected = direct_convolution(u, kernel, layer.d)
        torch.testing.assert_close(fft_convolution(u, kernel, layer.d), expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer(u), expected, rtol=1e-4, atol=1e-5)


def test_kernel_is_the_zoh_discretised_recurrence() -> None:
    layer = S4D(H, state_size=8, bidirectional=False, dt_max=0.5)
    u = torch.randn(1, H, L, dtype=torch.float64)
    with torch.no_grad():
        a = torch.complex(-layer.log_a_real.exp(), layer.a_imag).to(torch.complex128)  # (H, N/2)
        dt_a = layer.log_dt.exp().double()[:, None] * a
        decay, gain = dt_a.exp(), (dt_a.exp() - 1) / a  # ZOH: x_t = exp(dt A) x_{t-1} + (exp(dt A) - 1)/A u_t
        c = torch.view_as_complex(layer.c)[0].to(torch.complex128)
        state = torch.zeros_like(a)
        outputs = []
        for t in range(L):
            state = decay * state + gain * u[0, :, t, None]
            outputs.append(2 * (c * state).sum(-1).real + layer.d.double() * u[0, :, t])
        torch.testing.assert_close(layer(u.float())[0].double(), torch.stack(outputs, -1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_kernel_works_for_any_length(bidirectional: bool) -> None:
    layer = S4D(H, bidirectional=bidirectional)
    with torch.no_grad():
        longest = layer.kernel(100)
        for length in (1, 7, 32, 100):
            kernel = layer.kernel(length)
            torch.testing.assert_close(kernel, longest[..., :length])
            assert layer(torch.randn(2, H, length)).shape == (2, H, length)
        assert torch.isfinite(layer.kernel(5000)).all()


def test_causal_layer_with_right_padding_keeps_valid_outputs() -> None:
    layer = S4D(H, bidirectional=False)
    trial = torch.randn(1, H, 20)  # (1, H, 20) valid bins only
    padded = torch.cat([trial, 5 * torch.randn(1, H, L - 20)], dim=-1)  # (1, H, L) garbage padding
    torch.testing.assert_close(layer(padded)[..., :20], layer(trial), rtol=1e-4, atol=1e-5)


def test_gradients_reach_every_parameter() -> None:
    layer = S4D(H, bidirectional=True)
    layer(torch.randn(2, H, L)).square().sum().backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="state_size"):
        S4D(H, state_size=7)
    with pytest.raises(ValueError, match="dt_min"):
        S4D(H, dt_min=0.1, dt_max=0.01)
    with pytest.raises(ValueError, match="init"):
        S4D(H, init="legs")
