"""ldns_framework.nn: FFT and Toeplitz convolution and the S4D layer against independent O(L^2) computations,
causality, the kernel cache, gradients, inits, and loading weights written under older names."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ldns_framework
from ldns_framework.nn import (
    DIRECT_LONG,
    DIRECT_MAX_LENGTH,
    DIRECT_MIN_BATCH,
    INITS,
    S4D,
    PointwiseConv1d,
    auto_method,
    convolution_operator,
    fft_convolution,
    fft_size,
    long_convolution,
    s4d_imag_init,
)

H, L = 16, 32


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def direct_convolution(u: torch.Tensor, kernel: torch.Tensor, backward: torch.Tensor | None = None) -> torch.Tensor:
    """y_t = sum_{s<=t} K[t-s] u_s + sum_{s>t} K_back[s-t-1] u_s, term by term: u (B, H, L), kernels (..., H, K)."""
    length = u.shape[-1]
    y = torch.zeros_like(u)  # (B, H, L)
    for t in range(length):
        for s in range(length):
            if s <= t and t - s < kernel.shape[-1]:
                y[..., t] += kernel[..., t - s] * u[..., s]
            elif s > t and backward is not None and s - t - 1 < backward.shape[-1]:
                y[..., t] += backward[..., s - t - 1] * u[..., s]
    return y


def zoh_kernel(layer: S4D, length: int) -> torch.Tensor:
    """Eq. (2) with one complex exponential per lag, in float64 -> (dir, H, L)."""
    a = layer.a.detach().to(torch.complex128)  # (H, N/2)
    dt_a = layer.log_dt.detach().double().exp()[:, None] * a  # (H, N/2)
    c = torch.view_as_complex(layer.c.detach().double()) * (dt_a.exp() - 1) / a  # (dir, H, N/2)
    powers = torch.exp(dt_a[..., None] * torch.arange(length, dtype=torch.float64))  # (H, N/2, L)
    return 2 * (c[..., None] * powers).sum(-2).real  # (dir, H, L)


# --- FFT convolution ------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 2, 17, 32])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fft_convolution_equals_the_direct_sum(length: int, bidirectional: bool) -> None:
    u = torch.randn(3, 4, length, dtype=torch.float64)  # (B, H, L)
    kernel, backward = torch.randn(4, length, dtype=torch.float64), torch.randn(4, length, dtype=torch.float64)
    backward = backward if bidirectional else None
    torch.testing.assert_close(fft_convolution(u, kernel, backward), direct_convolution(u, kernel, backward))


@pytest.mark.parametrize("forward_taps, backward_taps", [(1, 0), (5, 0), (3, 7), (1, 4), (50, 50)])
def test_fft_convolution_with_short_or_long_kernels(forward_taps: int, backward_taps: int) -> None:
    """Kernels of any length: short ones need a small FFT, taps past the input length are ignored."""
    u = torch.randn(2, 3, 21, dtype=torch.float64)
    kernel = torch.randn(3, forward_taps, dtype=torch.float64)
    backward = torch.randn(3, backward_taps, dtype=torch.float64) if backward_taps else None
    torch.testing.assert_close(fft_convolution(u, kernel, backward), direct_convolution(u, kernel, backward))


def test_fft_convolution_broadcasts_per_trial_kernels() -> None:
    u = torch.randn(3, 4, 11, dtype=torch.float64)
    kernel, backward = torch.randn(3, 4, 11, dtype=torch.float64), torch.randn(4, 11, dtype=torch.float64)
    expected = torch.stack([direct_convolution(u[i:i + 1], kernel[i], backward)[0] for i in range(3)])
    torch.testing.assert_close(fft_convolution(u, kernel, backward), expected)


def test_fft_size_is_fast_and_just_long_enough() -> None:
    assert fft_size(256, 256) == 512  # 2L - 1 = 511 -> 512
    assert fft_size(140, 140, 140) == 288  # 279 -> 2^5 3^2
    assert fft_size(100, 1) == 100  # a lag-0 kernel needs no padding
    assert fft_size(100, 5) == 108  # 104 -> 2^2 3^3
    for length in range(1, 80):
        n = fft_size(length, length, length)
        assert n >= 2 * length - 1
        while n % 2 == 0 or n % 3 == 0 or n % 5 == 0:
            n //= 2 if n % 2 == 0 else 3 if n % 3 == 0 else 5
        assert n == 1


def test_fft_convolution_keeps_half_precision_inputs_accurate() -> None:
    u = torch.randn(2, 4, 23)
    kernel = torch.randn(4, 23)
    y = fft_convolution(u.bfloat16(), kernel)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), fft_convolution(u.bfloat16().float(), kernel), rtol=1e-2, atol=1e-2)


def test_fft_convolution_rejects_empty_inputs() -> None:
    with pytest.raises(ValueError, match="u"):
        fft_convolution(torch.zeros(1, 2, 0), torch.ones(2, 3))
    with pytest.raises(ValueError, match="kernel"):
        fft_convolution(torch.zeros(1, 2, 5), torch.ones(2, 0))


# --- long convolution: Toeplitz product or FFT ------------------------------------------------------

@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
@pytest.mark.parametrize("length", [1, 2, 17])
@pytest.mark.parametrize("forward_taps, backward_taps", [(1, 0), (5, 0), (40, 0), (3, 7), (40, 40)])
def test_long_convolution_equals_the_direct_sum(method: str, length: int, forward_taps: int, backward_taps: int) -> None:
    u = torch.randn(3, 4, length, dtype=torch.float64)  # (B, H, L)
    kernel = torch.randn(4, forward_taps, dtype=torch.float64)
    backward = torch.randn(4, backward_taps, dtype=torch.float64) if backward_taps else None
    y = long_convolution(u, kernel, backward, method=method)
    assert y.dtype == torch.float64 and y.shape == u.shape
    torch.testing.assert_close(y, direct_convolution(u, kernel, backward))


def test_direct_method_takes_leading_dimensions_and_half_precision() -> None:
    u = torch.randn(2, 3, 4, 9)  # (..., H, L) with two leading dimensions
    kernel, backward = torch.randn(4, 9), torch.randn(4, 9)
    expected = direct_convolution(u.reshape(6, 4, 9).double(), kernel.double(), backward.double()).reshape(u.shape)
    torch.testing.assert_close(long_convolution(u, kernel, backward, method="direct").double(), expected,
                               rtol=1e-5, atol=1e-5)
    y = long_convolution(u.bfloat16(), kernel, method="direct")
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), long_convolution(u.bfloat16().float(), kernel), rtol=1e-2, atol=1e-2)


def test_direct_and_fft_gradients_agree() -> None:
    u = torch.randn(2, 3, 12, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    backward = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 3, 12, dtype=torch.float64)
    grads = []
    for method in ("direct", "fft"):
        grads.append(torch.autograd.grad((long_convolution(u, kernel, backward, method=method) * weights).sum(),
                                         (u, kernel, backward)))
    for direct, fft in zip(*grads):
        torch.testing.assert_close(direct, fft)


@pytest.mark.parametrize("length, forward_taps, backward_taps", [(1, 1, 0), (2, 3, 1), (9, 4, 0), (9, 9, 9), (9, 12, 3)])
def test_direct_convolution_gradients_pass_gradcheck(length: int, forward_taps: int, backward_taps: int) -> None:
    """The Toeplitz product's hand-written adjoint (the taps' gradient by FFT), with leading
    dimensions, kernels shorter or longer than the input, and each input alone requiring a gradient."""
    u = torch.randn(2, 2, 3, length, dtype=torch.float64, requires_grad=True)  # (..., H, L)
    kernel = torch.randn(3, forward_taps, dtype=torch.float64, requires_grad=True)
    backward = torch.randn(3, backward_taps, dtype=torch.float64, requires_grad=True) if backward_taps else None

    def direct(*args: torch.Tensor) -> torch.Tensor:
        return long_convolution(*args, method="direct")

    inputs = (u, kernel) if backward is None else (u, kernel, backward)
    assert torch.autograd.gradcheck(direct, inputs)
    assert torch.autograd.gradcheck(lambda k: direct(u.detach(), k), (kernel,))
    assert torch.autograd.gradcheck(lambda x: direct(x, kernel.detach()), (u,))


@pytest.mark.parametrize("u_shape, kernel_shape", [((2, 3, 9), (3, 9)), ((2, 3, 9), (2, 3, 4)), ((1, 3, 9), (2, 3, 9))])
def test_fft_convolution_gradients_pass_gradcheck_with_broadcasting(u_shape: tuple[int, ...],
                                                                   kernel_shape: tuple[int, ...]) -> None:
    """The hand-written adjoint of the FFT convolution, including kernels or inputs broadcast over trials."""
    u = torch.randn(u_shape, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(kernel_shape, dtype=torch.float64, requires_grad=True)
    backward = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *args: fft_convolution(*args), (u, kernel, backward))


def test_with_gradients_long_inputs_need_more_trials_for_the_toeplitz_product() -> None:
    length, trials = DIRECT_LONG
    assert auto_method(length, DIRECT_MIN_BATCH[0], grad=True) == "direct"
    assert auto_method(length + 1, DIRECT_MIN_BATCH[0], grad=True) == "fft"
    assert auto_method(DIRECT_MAX_LENGTH, trials, grad=True) == "direct"
    assert auto_method(DIRECT_MAX_LENGTH, trials - 1, grad=True) == "fft"
    assert auto_method(DIRECT_MAX_LENGTH, DIRECT_MIN_BATCH[1], grad=False) == "direct"  # eval: the matrix is cached


def test_auto_takes_the_toeplitz_product_for_short_inputs_and_per_channel_kernels() -> None:
    kernel = torch.randn(4, 8)
    assert convolution_operator(kernel, kernel, DIRECT_MAX_LENGTH).method == "direct"
    assert convolution_operator(kernel, kernel, DIRECT_MAX_LENGTH + 1).method == "fft"
    assert convolution_operator(torch.randn(2, 4, 8), None, 16).method == "fft"  # one kernel per trial
    with_grad, without_grad = DIRECT_MIN_BATCH
    assert convolution_operator(kernel, None, 16, batch=with_grad).method == "direct"
    assert convolution_operator(kernel, None, 16, batch=with_grad - 1).method == "fft"  # the matrix is not repaid
    with torch.no_grad():
        assert convolution_operator(kernel, None, 16, batch=without_grad).method == "direct"
        assert convolution_operator(kernel, None, 16, batch=without_grad - 1).method == "fft"
    operator = convolution_operator(kernel, None, 16)
    assert operator.weights.shape == (4, 16, 16)


def test_convolution_operator_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="method"):
        convolution_operator(torch.ones(2, 3), None, 5, method="winograd")
    with pytest.raises(ValueError, match="kernel"):
        convolution_operator(torch.ones(2, 2, 3), None, 5, method="direct")
    with pytest.raises(ValueError, match="u: expected 5 time bins"):
        convolution_operator(torch.ones(2, 3), None, 5)(torch.zeros(1, 2, 6))


# --- S4D: the kernel and the layer against independent computations --------------------------------

@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_s4d_kernel_is_eq2_for_any_length(init: str, bidirectional: bool) -> None:
    layer = S4D(H, state_size=8, bidirectional=bidirectional, init=init)
    for length in (1, 2, 7, 31, 32, 100):
        kernel = layer.kernel(length)
        assert kernel.shape == (2 if bidirectional else 1, H, length)
        torch.testing.assert_close(kernel.double(), zoh_kernel(layer, length), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [31, 32])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_s4d_layer_equals_the_direct_convolution(length: int, bidirectional: bool) -> None:
    layer = S4D(H, state_size=8, bidirectional=bidirectional).double()
    u = torch.randn(3, H, length, dtype=torch.float64)  # (B, H, L)
    kernel = zoh_kernel(layer, length)  # (dir, H, L)
    expected = direct_convolution(u, kernel[0], kernel[1] if bidirectional else None) + layer.d[:, None] * u
    torch.testing.assert_close(layer(u), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_s4d_layer_on_long_inputs_takes_the_fft_and_equals_the_toeplitz_product(bidirectional: bool) -> None:
    """Beyond DIRECT_MAX_LENGTH the layer convolves by FFT; the Toeplitz product (itself held to the
    direct sum above) must give the same."""
    length = DIRECT_MAX_LENGTH + 7
    layer = S4D(4, state_size=8, bidirectional=bidirectional).double()
    u = torch.randn(2, 4, length, dtype=torch.float64)
    kernel = zoh_kernel(layer, length)  # (dir, H, L)
    expected = long_convolution(u, kernel[0], kernel[1] if bidirectional else None, method="direct")
    assert layer.operator(length).method == "fft"
    torch.testing.assert_close(layer(u), expected + layer.d[:, None] * u, rtol=1e-9, atol=1e-9)


def test_s4d_takes_the_toeplitz_product_for_large_batches_and_agrees_with_the_fft() -> None:
    layer = S4D(4, state_size=8).double()
    u = torch.randn(DIRECT_MIN_BATCH[0], 4, L, dtype=torch.float64)  # (B, H, L), enough trials for "direct"
    assert layer.operator(L, u.shape[0]).method == "direct" and layer.operator(L, 1).method == "fft"
    torch.testing.assert_close(layer(u), layer.operator(L, 1)(u), rtol=1e-9, atol=1e-9)


def test_s4d_is_the_zoh_discretised_recurrence() -> None:
    """Eq. (1) stepped in time, x_t = exp(dt A) x_{t-1} + (exp(dt A) - 1)/A u_t, y_t = 2 Re(C x_t) + D u_t."""
    layer = S4D(H, state_size=8, bidirectional=False, dt_max=0.5).double()
    u = torch.randn(1, H, L, dtype=torch.float64)
    with torch.no_grad():
        a = layer.a  # (H, N/2)
        dt_a = layer.log_dt.exp()[:, None] * a
        decay, gain = dt_a.exp(), (dt_a.exp() - 1) / a
        c = torch.view_as_complex(layer.c)[0]  # (H, N/2)
        state = torch.zeros_like(a)
        outputs = []
        for t in range(L):
            state = decay * state + gain * u[0, :, t, None]
            outputs.append(2 * (c * state).sum(-1).real + layer.d * u[0, :, t])
        torch.testing.assert_close(layer(u)[0], torch.stack(outputs, -1))


def test_s4d_float32_matches_float64() -> None:
    layer = S4D(H, bidirectional=True)
    u = torch.randn(2, H, 140)
    torch.testing.assert_close(layer(u).double(), layer.double()(u.double()), rtol=1e-4, atol=1e-4)


# --- causality -----------------------------------------------------------------------------------

def test_causal_output_never_sees_later_inputs() -> None:
    """A change at bin t changes nothing before t (and does change bin t)."""
    layer = S4D(H, bidirectional=False)
    kernel = torch.randn(H, L)
    u = torch.randn(2, H, L)
    with torch.no_grad():
        base_layer, base_conv = layer(u), fft_convolution(u, kernel)
        for t in range(L):
            changed = u.clone()
            changed[..., t] += 10.0
            out_layer, out_conv = layer(changed), fft_convolution(changed, kernel)
            torch.testing.assert_close(out_layer[..., :t], base_layer[..., :t], rtol=0, atol=1e-5)
            torch.testing.assert_close(out_conv[..., :t], base_conv[..., :t], rtol=0, atol=1e-5)
            assert (out_layer[..., t] - base_layer[..., t]).abs().min() > 1e-3


def test_bidirectional_output_sees_later_inputs() -> None:
    layer = S4D(H, bidirectional=True)
    u = torch.randn(2, H, L)
    changed = u.clone()
    changed[..., 20] += 1.0
    assert (layer(changed)[..., :20] - layer(u)[..., :20]).abs().max() > 1e-3


def test_causal_layer_ignores_right_padding() -> None:
    layer = S4D(H, bidirectional=False)
    trial = torch.randn(1, H, 20)  # (1, H, 20) valid bins only
    padded = torch.cat([trial, 5 * torch.randn(1, H, L - 20)], dim=-1)  # (1, H, L) garbage padding
    torch.testing.assert_close(layer(padded)[..., :20], layer(trial), rtol=1e-4, atol=1e-5)


# --- kernel cache --------------------------------------------------------------------------------

def test_cache_is_used_in_eval_without_gradients_and_equals_a_fresh_kernel() -> None:
    layer = S4D(H, bidirectional=True).eval()
    u = torch.randn(2, H, L)
    fresh = layer(u)  # gradients on: never cached
    assert fresh.requires_grad and not layer._cache
    with torch.no_grad():
        first = layer.kernel(L)
        assert layer.kernel(L) is first  # reused
        assert layer.kernel(L + 1) is not first and set(layer._cache) == {L, L + 1}
        torch.testing.assert_close(layer(u), fresh.detach(), rtol=0, atol=0)


def test_cache_keeps_the_convolution_operator_and_drops_it_when_d_changes() -> None:
    layer = S4D(H).eval()
    u = torch.randn(2, H, L)
    with torch.no_grad():
        before = layer(u)
        assert layer.operator(L) is layer.operator(L)
        layer.d.add_(1.0)  # the skip term is folded into the operator's lag 0
        torch.testing.assert_close(layer(u), before + u)


def test_cache_is_not_kept_in_training_mode() -> None:
    layer = S4D(H).eval()
    with torch.no_grad():
        layer.kernel(L)
        assert layer._cache
        layer.train()
        assert layer.kernel(L) is not layer.kernel(L) and not layer._cache


def test_cache_is_invalidated_by_an_optimiser_step() -> None:
    layer = S4D(H, bidirectional=True)
    u = torch.randn(2, H, L)
    optimiser = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer.eval()
    with torch.no_grad():
        before = layer(u)
    layer.train()
    layer(u).square().mean().backward()
    optimiser.step()
    layer.eval()
    with torch.no_grad():
        after = layer(u)
        assert (after - before).abs().max() > 1e-3
        layer.clear_cache()
        torch.testing.assert_close(after, layer(u), rtol=0, atol=0)


def test_cache_is_invalidated_by_loading_weights_and_by_in_place_updates() -> None:
    layer, other = S4D(H).eval(), S4D(H).eval()
    u = torch.randn(2, H, L)
    with torch.no_grad():
        layer(u)
        layer.load_state_dict(other.state_dict())
        torch.testing.assert_close(layer(u), other(u), rtol=0, atol=0)
        layer.c.lerp_(torch.zeros_like(layer.c), 0.5)  # an EMA-style in-place update
        other.c.mul_(0.5)
        torch.testing.assert_close(layer(u), other(u), rtol=1e-6, atol=1e-6)


def test_cache_follows_a_dtype_change() -> None:
    """A dtype or device change gives the parameters new storage without bumping their version."""
    layer = S4D(H).eval()
    with torch.no_grad():
        assert layer.kernel(L).dtype == torch.float32
        assert layer.double().kernel(L).dtype == torch.float64


def test_cache_follows_copies_held_as_buffers() -> None:
    """An EMA copy of the weights holds them as buffers, updated in place."""
    layer = S4D(H).eval()
    u = torch.randn(2, H, L)
    with torch.no_grad():
        layer(u)
        for name, value in list(layer._parameters.items()):
            del layer._parameters[name]
            layer.register_buffer(name, value.detach().clone())
        kernel = layer.kernel(L)
        layer.a_imag.add_(1.0)
        assert not torch.equal(layer.kernel(L), kernel)


def test_clear_cache_after_writes_through_data() -> None:
    layer = S4D(H).eval()
    with torch.no_grad():
        stale = layer.kernel(L).clone()
        layer.c.data.mul_(2.0)  # bypasses the version counter
        layer.clear_cache()
        torch.testing.assert_close(layer.kernel(L), 2 * stale)


# --- training: gradients, stability, inits, options -----------------------------------------------

@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_reach_every_parameter(bidirectional: bool) -> None:
    layer = S4D(H, bidirectional=bidirectional)
    layer(torch.randn(2, H, L)).square().sum().backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_imaginary_inits_are_s4d_lin_and_s4d_inv() -> None:
    n = torch.arange(4, dtype=torch.float32)
    torch.testing.assert_close(s4d_imag_init("lin", 8), math.pi * n)
    torch.testing.assert_close(s4d_imag_init("inv", 8), 8 / math.pi * (8 / (2 * n + 1) - 1))
    assert torch.equal(S4D(3, state_size=8, init="inv").a_imag, s4d_imag_init("inv", 8).expand(3, -1))


@pytest.mark.parametrize("init", INITS)
def test_both_inits_give_stable_decaying_kernels(init: str) -> None:
    layer = S4D(H, init=init, dt_min=1e-2, dt_max=1e-1)
    assert (layer.a.real < 0).all()
    with torch.no_grad():
        kernel = layer.kernel(3000)  # (dir, H, L)
    assert torch.isfinite(kernel).all()
    assert (kernel[..., -500:].abs().amax(-1) < 1e-2 * kernel.abs().amax(-1)).all()  # exp(-0.5 * 0.01 * 2500)


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="state_size"):
        S4D(H, state_size=7)
    with pytest.raises(ValueError, match="dt_min"):
        S4D(H, dt_min=0.1, dt_max=0.01)
    with pytest.raises(ValueError, match="init"):
        S4D(H, init="legs")
    with pytest.raises(ValueError, match="channels"):
        S4D(0)


# --- loading and the public API ------------------------------------------------------------------

def test_weights_saved_under_the_older_denoiser_names_load() -> None:
    """Runs written before the two copies were merged hold log_neg_real / imag for log_a_real / a_imag."""
    source = torch.nn.Sequential(S4D(H, state_size=8))
    renames = {"log_a_real": "log_neg_real", "a_imag": "imag"}
    old = {".".join(k.split(".")[:-1] + [renames.get(k.split(".")[-1], k.split(".")[-1])]): v
           for k, v in source.state_dict().items()}
    assert "0.imag" in old and "0.log_neg_real" in old
    target = torch.nn.Sequential(S4D(H, state_size=8))
    target.load_state_dict(old)  # strict
    u = torch.randn(1, H, L)
    torch.testing.assert_close(target(u), source(u), rtol=0, atol=0)


def test_nn_is_public_from_the_package_root() -> None:
    assert ldns_framework.nn.S4D is S4D and "nn" in ldns_framework.__all__


def test_next_fast_length_is_scipys_next_fast_len():
    import scipy.fft

    from ldns_framework.nn.fftconv import next_fast_length

    assert all(next_fast_length(n) == scipy.fft.next_fast_len(n, real=True) for n in range(1, 5000))


# --- pointwise (1x1) convolution --------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 4), channels=st.integers(1, 6), out=st.integers(1, 6), length=st.integers(1, 9),
       bias=st.booleans())
def test_pointwise_convolution_is_conv1d_forward_and_backward(batch: int, channels: int, out: int, length: int,
                                                              bias: bool) -> None:
    """Same parameters (a checkpoint of either loads into the other), same outputs and gradients."""
    torch.manual_seed(0)
    pointwise = PointwiseConv1d(channels, out, bias=bias).double()
    conv = torch.nn.Conv1d(channels, out, 1, bias=bias).double()
    conv.load_state_dict(pointwise.state_dict())
    x = torch.randn(batch, channels, length, dtype=torch.float64)
    weights = torch.randn(batch, out, length, dtype=torch.float64)
    grads = []
    for layer in (pointwise, conv):
        xi = x.clone().requires_grad_()
        y = layer(xi)
        grads.append((y, *torch.autograd.grad((y * weights).sum(), (xi, *layer.parameters()))))
    for mine, reference in zip(*grads):
        torch.testing.assert_close(mine, reference)


def test_pointwise_convolution_follows_autocast() -> None:
    layer = PointwiseConv1d(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(torch.randn(2, 4, 5).transpose(1, 2).contiguous().transpose(1, 2))  # a non-contiguous input
    assert y.dtype == torch.bfloat16 and y.shape == (2, 3, 5)
