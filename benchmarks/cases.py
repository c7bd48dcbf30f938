"""The model sizes and timed operations of `make bench` (benchmarks/run_all.py).

Sizes are the reference's (METHOD.md sections 1 and 3): the Lorenz autoencoder (128 neurons, 256
hidden, 8 latents, 4 bidirectional blocks, 256 bins), the monkey autoencoder (182 neurons, 256
hidden, 16 latents, 4 causal blocks, 140 bins), the Lorenz denoiser (64 hidden, 4 blocks) and the
monkey denoiser (256 hidden, 6 blocks). Weights are untrained: speed does not depend on them.
``quick`` swaps in tiny sizes for the harness test. Every timing alternates the frozen baseline
layer (benchmarks/baseline_s4d.py) with the current one on the same model, so a ratio is measured
under the same machine load. A case's ``"device"`` (default ``"cpu"``) places the model and its
data; on a GPU each call ends with a synchronisation, so that its time is the kernels' time, and
the ``bf16`` variant runs the current layer under bfloat16 autocast (as ``precision: bf16-mixed`` does).

Run one case in its own process to measure its peak memory (the RSS high-water mark is per process),
or its time per call under the allocator settings the process started with (``LDNS_KEEP_FREED_MEMORY``,
ldns_framework/allocator.py; they are process-wide and cannot be undone, so each needs a process):

    python benchmarks/cases.py memory '{"kind": "train", "model": "lorenz-autoencoder", "batch": 64}' current
    python benchmarks/cases.py time '{"kind": "train", "model": "lorenz-autoencoder", "batch": 64}' baseline 3
"""

from __future__ import annotations

import contextlib
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_s4d import baseline_layers
from machine import synchronised

from ldns_framework import Batch
from ldns_framework.allocator import keep_freed_memory

#: name -> (kind, options, neurons or latents, bins); full and quick sizes.
MODELS: dict[str, dict[str, Any]] = {
    "lorenz-autoencoder": {"kind": "autoencoder", "hidden": 256, "latent_dim": 8, "blocks": 4, "bidirectional": True,
                           "dropout_prob": 0.2, "neurons": 128, "bins": 256},
    "monkey-autoencoder": {"kind": "autoencoder", "hidden": 256, "latent_dim": 16, "blocks": 4, "bidirectional": False,
                           "dropout_prob": 0.5, "neurons": 182, "bins": 140},
    "lorenz-denoiser": {"kind": "denoiser", "hidden": 64, "blocks": 4, "latent_dim": 8, "bins": 256},
    "monkey-denoiser": {"kind": "denoiser", "hidden": 256, "blocks": 6, "latent_dim": 16, "bins": 140},
}
QUICK = {"hidden": 16, "blocks": 1, "bins": 32, "neurons": 12}
VARIANTS = ("baseline", "current")
#: The variants a case can run in: :data:`VARIANTS` and the current layer under bfloat16 autocast.
ALL_VARIANTS = (*VARIANTS, "bf16")


def model_size(name: str, quick: bool, **changes: int) -> dict[str, Any]:
    size = dict(MODELS[name])
    if quick:
        size.update({k: v for k, v in QUICK.items() if k in size})
        size["latent_dim"] = min(size["latent_dim"], 4)
    size.update(changes)
    return size


def build(size: dict[str, Any], device: str = "cpu") -> torch.nn.Module:
    """The built-in plugin model for ``size`` (seeded, untrained) on ``device``."""
    torch.manual_seed(0)
    if size["kind"] == "autoencoder":
        from ldns_plugins.s4_autoencoder.model import S4Autoencoder, S4AutoencoderConfig

        config = S4AutoencoderConfig(hidden=size["hidden"], latent_dim=size["latent_dim"], blocks=size["blocks"],
                                     bidirectional=size["bidirectional"], dropout_prob=size["dropout_prob"])
        return S4Autoencoder(config, n_neurons=size["neurons"]).to(device)
    from ldns_plugins.latent_diffusion.model import LatentDiffusion, LatentDiffusionConfig

    return LatentDiffusion(LatentDiffusionConfig(hidden=size["hidden"], blocks=size["blocks"]),
                           latent_dim=size["latent_dim"]).to(device)


def training_step(size: dict[str, Any], batch: int, device: str = "cpu") -> tuple[torch.nn.Module, Callable[[], None]]:
    """One optimiser step (loss, backward, AdamW) on a fixed random batch: (model, step)."""
    model = build(size, device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    mask = torch.ones(batch, size["bins"], dtype=torch.bool, device=device)  # (B, T)
    if size["kind"] == "autoencoder":
        from ldns_plugins.poisson.model import PoissonObservation

        observation = PoissonObservation()
        counts = torch.poisson(torch.full((batch, size["bins"], size["neurons"]), 0.3)).to(device)  # (B, T, N)

        def loss() -> torch.Tensor:
            return model.training_loss(Batch(counts, mask), observation)["loss"]
    else:
        latents = torch.randn(batch, size["bins"], size["latent_dim"]).to(device)  # (B, T, D)

        def loss() -> torch.Tensor:
            return model.training_loss(latents, mask, None)["loss"]

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss().backward()
        optimiser.step()

    return model, step


def encode_call(size: dict[str, Any], batch: int, device: str = "cpu") -> tuple[torch.nn.Module, Callable[[], None]]:
    """An eval-mode, no-grad encode of ``batch`` trials (the latents stage): (model, call)."""
    model = build(size, device).eval()
    counts = torch.poisson(torch.full((batch, size["bins"], size["neurons"]), 0.3)).to(device)  # (B, T, N)
    mask = torch.ones(batch, size["bins"], dtype=torch.bool, device=device)

    def call() -> None:
        with torch.inference_mode():
            model.encode(counts, mask)

    return model, call


def sampling_call(size: dict[str, Any], trials: int, sampler: str, steps: int,
                  device: str = "cpu") -> tuple[torch.nn.Module, Callable[[], None]]:
    """Sampling ``trials`` latent trials with ``sampler`` at ``steps`` steps: (model, call)."""
    model = build(size, device)
    options = model.samplers[sampler]() if sampler == "ddpm" else model.samplers[sampler](steps=steps)
    lengths = torch.full((trials,), size["bins"], dtype=torch.long)

    def call() -> None:
        model.sample(trials, lengths, generator=torch.Generator(device=device).manual_seed(0), sampler=sampler,
                     options=options)

    return model, call


def make_case(case: dict[str, Any], quick: bool) -> tuple[torch.nn.Module, Callable[[], None], int]:
    """(model, timed call, trials per call) for a case {"kind": train|encode|sample, "model", "batch", ...}."""
    size = model_size(case["model"], quick, **case.get("size", {}))
    device = case.get("device", "cpu")
    if case["kind"] == "train":
        model, call = training_step(size, case["batch"], device)
    elif case["kind"] == "encode":
        model, call = encode_call(size, case["batch"], device)
    else:
        model, call = sampling_call(size, case["batch"], case["sampler"], case["steps"], device)
    return model, synchronised(call, device), case["batch"]


@contextlib.contextmanager
def variant(model: torch.nn.Module, name: str) -> Iterator[None]:
    """Run ``model`` with the baseline S4D layers, the current ones, or the current ones under bfloat16 autocast."""
    if name == "baseline":
        with baseline_layers(model):
            yield
    elif name == "bf16":
        device_type = next(model.parameters()).device.type
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
            yield
    else:
        yield


def time_interleaved(model: torch.nn.Module, call: Callable[[], None], repeats: int,
                     variants: tuple[str, ...] = VARIANTS) -> dict[str, float]:
    """Median seconds per call of each variant, alternating them (and their order) ``repeats`` times
    after one untimed warm-up call each."""
    for name in variants:
        with variant(model, name):
            call()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(repeats):
        for name in variants if round_ % 2 == 0 else variants[::-1]:
            with variant(model, name):
                started = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def counted_flops(model: torch.nn.Module, call: Callable[[], None]) -> float:
    """FLOPs of one call of the baseline model (GEMM/conv/bmm as torch's FlopCounterMode counts them; FFTs
    and elementwise work are not counted): the model's FLOPs, independent of how the S4D layers convolve."""
    from torch.utils.flop_counter import FlopCounterMode

    with variant(model, "baseline"), FlopCounterMode(display=False) as counter:
        call()
    return float(counter.get_total_flops())


def counted_bytes(model: torch.nn.Module, call: Callable[[], None]) -> tuple[float, float]:
    """(bytes read and written by the non-GEMM ops, by the GEMM/conv ops) of one call of the current
    model: the sum over aten ops of their tensor inputs' and outputs' sizes. A proxy for memory
    traffic (caches may serve some of it; views and in-place ops are counted as touching their data)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    gemm_ops = {"mm", "bmm", "addmm", "baddbmm", "convolution", "convolution_backward", "mkldnn_convolution",
                "_convolution", "matmul"}
    totals = {"other": 0.0, "gemm": 0.0}

    class ByteCounter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func._overloadpacket.__name__ in ("view", "_unsafe_view", "t", "transpose", "permute", "expand",
                                                 "slice", "select", "unsqueeze", "squeeze", "detach", "alias",
                                                 "as_strided", "unfold", "split", "chunk", "_reshape_alias"):
                return out  # no data moved
            moved = sum(t.numel() * t.element_size() for t in tree_leaves((args, kwargs, out))
                        if isinstance(t, torch.Tensor))
            totals["gemm" if func._overloadpacket.__name__ in gemm_ops else "other"] += moved
            return out

    with ByteCounter():
        call()
    return totals["other"], totals["gemm"]


#: Profiler op-name fragments by category, checked in this order; the rest is "elementwise/reductions".
OP_CATEGORIES = (("gemm/conv", ("conv", "mm", "matmul")), ("fft", ("fft",)),
                 ("copies/fills", ("copy_", "fill_", "flip", "cat", "pad", "unfold", "clone", "zero")))


def time_by_category(model: torch.nn.Module, call: Callable[[], None], case_variant: str) -> dict[str, float]:
    """Self CPU seconds of one call by op category (:data:`OP_CATEGORIES`), from torch.profiler."""
    from torch.profiler import profile

    with variant(model, case_variant):
        call()
        with profile() as profiler:
            call()
    seconds: dict[str, float] = {}
    for event in profiler.key_averages():
        category = next((name for name, keys in OP_CATEGORIES if any(k in event.key for k in keys)),
                        "elementwise/reductions")
        seconds[category] = seconds.get(category, 0.0) + event.self_cpu_time_total / 1e6
    return seconds


def _status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_memory_mib(case: dict[str, Any], case_variant: str, quick: bool) -> float:
    """Peak resident memory two calls of ``case`` add (MiB) over the resident size before them, in
    this process. Linux: the process's RSS high-water mark (``VmHWM``), reset first through
    /proc/self/clear_refs; not ``ru_maxrss``, which a process inherits from its parent across exec,
    so a child of a larger bench process reads the parent's peak and a growth of 0. Elsewhere
    ``ru_maxrss``. (tracemalloc sees only Python's allocator, not torch's.)"""
    model, call, _ = make_case(case, quick)
    if case.get("device", "cpu").startswith("cuda"):
        return peak_gpu_memory_mib(model, call, case_variant)
    proc = Path("/proc/self/clear_refs").exists()
    if proc:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _status_kib("VmHWM")  # not VmRSS, which may have grown past the reset mark since
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with variant(model, case_variant):
        call()
        call()
    after = _status_kib("VmHWM") if proc else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) / 1024.0  # KiB on Linux


def peak_gpu_memory_mib(model: torch.nn.Module, call: Callable[[], None], case_variant: str) -> float:
    """Peak GPU memory two calls add (MiB) over what was allocated before them (torch's CUDA allocator
    keeps the peak; it can be reset, so GPU cases need no process of their own)."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    with variant(model, case_variant):
        call()
        call()
    return (torch.cuda.max_memory_allocated() - before) / 2 ** 20


def seconds_per_call(case: dict[str, Any], case_variant: str, repeats: int, quick: bool) -> float:
    """Median seconds per call of ``case`` with one variant, after one untimed call."""
    model, call, _ = make_case(case, quick)
    return time_interleaved(model, call, repeats, (case_variant,))[case_variant]


def main(argv: list[str]) -> int:
    if not (len(argv) == 3 and argv[0] == "memory" or len(argv) == 4 and argv[0] == "time"):
        print("usage: cases.py memory CASE_JSON VARIANT | cases.py time CASE_JSON VARIANT REPEATS", file=sys.stderr)
        return 2
    keep_freed_memory()  # as the product does, unless LDNS_KEEP_FREED_MEMORY=0
    case = json.loads(argv[1])
    if argv[0] == "memory":
        print(json.dumps({"peak_mib": peak_memory_mib(case, argv[2], bool(case.get("quick")))}))
    else:
        print(json.dumps({"s_per_call": seconds_per_call(case, argv[2], int(argv[3]), bool(case.get("quick")))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
