"""`make bench`: the speed table of the reference sizes, written to benchmarks/results/ as history.

    .venv/bin/python benchmarks/run_all.py [--quick] [--scaling] [--quality] [--device cuda] [--out-dir benchmarks/results]

Prints one table and writes ``<out-dir>/<YYYY-MM-DD>-<machine>.json`` (rows, machine, settings):

- machine: the fp32 4096 matmul rate and a 512 MiB copy's bandwidth, measured in this run;
- conv: the S4 convolution alone (forward + backward): the baseline FFT, the current FFT and the
  Toeplitz product (JSON ``*_s_per_call``), "current" being what ``method="auto"`` picks;
- train: optimiser steps per second x batch (samples/s) of the Lorenz and monkey autoencoder and
  denoiser, the frozen pre-issue-13 S4D layer (``baseline``) and the current one alternated on the
  same model (medians), with the step's FLOPs (torch's FlopCounterMode on the baseline step:
  GEMM/conv only) over its time, as a share of the matmul rate; this process keeps freed memory
  (ldns_framework/allocator.py), as `ldns train` does;
- allocator: whole training steps in fresh processes with glibc's default allocator and with freed
  memory kept, and the step before issue 13 (baseline layer, default allocator) against now;
- profile: the share of the Lorenz autoencoder step (batch 64) per op category (torch.profiler);
- encode: eval-mode encoding (batch 1 and 128); sample: trials/s per sampler and step count (and
  DPM-Solver++ 25 baseline vs current); spike-history sampling; evaluation wall time;
- peak memory of each train/encode/sample case: the growth of the RSS high-water mark over two calls in a fresh
  process per case (benchmarks/cases.py; tracemalloc does not see torch's allocator);
- start-up: ``benchmarks/startup.py``'s figures;
- ``--scaling``: whole epochs of the Lorenz autoencoder through the Trainer as trials double (1k, 2k,
  4k), and seconds per step as trial length (128 .. 1024) and neurons (128 .. 1024) double;
- ``--quality``: then runs the training-and-quality benchmarks whose tables benchmarks/README.md
  quotes (:data:`QUALITY`: the Lorenz encoder, the generator with each prediction target, the
  samplers, evaluation, spike history; about an hour on 2 cores), each printing its own table.

``--device cuda`` runs the machine rows (fp32 and bf16 matmul, copy) and the conv, train, encode and
sample sections on the GPU (:data:`GPU_SECTIONS`; the others time CPU-only paths), with peak memory
from torch's CUDA allocator and a ``bf16`` column: the current training step under bfloat16
autocast, against fp32 in the same run.

``--quick`` runs every case at tiny sizes (the harness test; no figure from it means anything).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from ldns_framework.allocator import keep_freed_memory

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cases
import evaluate_speed
import machine
import spike_history_speed
import startup

TRAIN = [("lorenz-autoencoder", 64), ("lorenz-autoencoder", 128), ("lorenz-denoiser", 128), ("lorenz-denoiser", 512),
         ("monkey-autoencoder", 64), ("monkey-denoiser", 128)]
ENCODE = [("lorenz-autoencoder", 1), ("lorenz-autoencoder", 128)]
SAMPLERS = [("ddpm", 1000), ("ddim", 10), ("ddim", 25), ("ddim", 50),
            ("dpm-solver++", 10), ("dpm-solver++", 25), ("dpm-solver++", 50)]
SAMPLE_TRIALS = 64
COLUMNS = ("section", "case", "batch", "unit", "baseline", "current", "speed-up", "GFLOP/sample", "GFLOP/s",
           "% matmul", "peak MiB", "bf16")
#: The training-and-quality benchmarks whose tables benchmarks/README.md quotes (--quality), in order.
QUALITY = [("encoder_lorenz.py", []),
           ("generator_lorenz.py", ["--out", "runs/bench-generator-epsilon", "--set", "generator.prediction=epsilon",
                                    "--samplers", "dpm-solver++:25"]),
           ("generator_lorenz.py", ["--out", "runs/bench-generator-epsilon-clip", "--set", "generator.prediction=epsilon",
                                    "--set", "generator.x0_clip=3", "--samplers", "dpm-solver++:25"]),
           ("generator_lorenz.py", []),
           ("sampler_speed.py", ["--run", "runs/bench-generator", "--n", "16", "--repeats", "2"]),
           ("evaluate_speed.py", []),
           ("spike_history_speed.py", []),
           ("spike_history_quality.py", [])]


def significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (the JSON keeps what the table shows, at any scale)."""
    return float(f"{value:.{digits}g}")


def repeats(quick: bool, expensive: bool = False) -> int:
    return 1 if quick else (3 if expensive else 5)


def peak_mib(case: dict[str, Any], variant: str, quick: bool) -> float | None:
    """The case's peak memory: on the CPU from a fresh process (cases.py memory), None when that
    process fails; on a GPU from the CUDA allocator's peak, in this process."""
    if case.get("device", "cpu") != "cpu":
        return round(cases.peak_memory_mib(case, variant, quick), 1)
    payload = json.dumps({**case, "quick": quick})
    done = subprocess.run([sys.executable, str(HERE / "cases.py"), "memory", payload, variant],
                          capture_output=True, text=True, cwd=HERE.parent, check=False)
    if done.returncode:
        print(f"  (peak memory of {case} failed: {done.stderr.strip().splitlines()[-1:]})", flush=True)
        return None
    return round(json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"], 1)


def speed_rows(section: str, case: dict[str, Any], name: str, quick: bool, matmul: float, memory: bool,
               variants: tuple[str, ...] = cases.VARIANTS, flops: bool = False) -> list[dict[str, Any]]:
    """Time ``case`` (alternating ``variants``) -> one row per case with both variants' throughput."""
    model, call, trials = cases.make_case(case, quick)
    seconds = cases.time_interleaved(model, call, repeats(quick, case["kind"] == "sample"), variants)
    unit = "samples/s" if section in ("train", "encode") else "trials/s"
    row: dict[str, Any] = {"section": section, "case": name, "batch": case["batch"], "unit": unit,
                           "baseline": None, "current": None, "speed-up": None}
    for variant, value in seconds.items():
        row[variant] = significant(trials / value)
        row[f"{variant}_s_per_call"] = value
    if "bf16" in seconds:
        row["bf16_speed_up"] = significant(seconds["current"] / seconds["bf16"], 3)
    if "baseline" in seconds:
        row["speed-up"] = significant(seconds["baseline"] / seconds["current"], 3)
    if flops:
        per_call = cases.counted_flops(model, call)
        row["GFLOP/sample"] = significant(per_call / trials / 1e9)
        row["GFLOP/s"] = significant(per_call / seconds["current"] / 1e9, 3)
        row["baseline_gflops"] = significant(per_call / seconds["baseline"] / 1e9, 3)
        row["% matmul"] = significant(100 * row["GFLOP/s"] / matmul, 3)
        row["baseline_pct_matmul"] = significant(100 * row["baseline_gflops"] / matmul, 3)
        other, gemm = cases.counted_bytes(model, call)
        row["gbytes_other_per_call"] = significant(other / 1e9)
        row["gbytes_gemm_per_call"] = significant(gemm / 1e9)
        row["counted_gflop_current_per_call"] = significant(current_flops(model, call) / 1e9)
    row["peak MiB"] = peak_mib(case, "current", quick) if memory else None
    if memory and "baseline" in seconds:
        row["baseline_peak_mib"] = peak_mib(case, "baseline", quick)
    print(f"  {section} {name} batch {case['batch']}: " + ", ".join(f"{k} {v:.4g} s" for k, v in seconds.items()),
          flush=True)
    return [row]


def current_flops(model: Any, call: Any) -> float:
    """FLOPs of one call of the current model as counted (the Toeplitz products add GEMM FLOPs that the
    baseline's FFTs do not count, so this is above the model FLOPs the table reports)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        call()
    return float(counter.get_total_flops())


def roofline(rows: list[dict[str, Any]]) -> str:
    """Per training row: the time the GEMM FLOPs need at the measured (fp32) matmul rate, the time
    the non-GEMM bytes need at the measured copy bandwidth, and the measured time (seconds per step)."""
    machine_row = {row["unit"]: row["current"] for row in rows
                   if row["section"] == "machine" and "bf16" not in row["case"]}
    lines = ["roofline (s/step): GEMM FLOPs / matmul rate, other ops' bytes / copy bandwidth, measured"]
    for row in rows:
        if row["section"] == "train" and "gbytes_other_per_call" in row:
            compute = row["counted_gflop_current_per_call"] / machine_row["GFLOP/s"]
            memory = row["gbytes_other_per_call"] / machine_row["GB/s"]
            lines.append(f"  {row['case']} batch {row['batch']}: compute {compute:.3f}, memory {memory:.3f}, "
                         f"measured {row['current_s_per_call']:.3f} (baseline {row['baseline_s_per_call']:.3f})")
    return "\n".join(lines)


#: (batch, channels, length) of the bidirectional S4 convolution alone: the autoencoder's sizes
#: around the DIRECT_MAX_LENGTH and DIRECT_MIN_BATCH crossovers, and the denoiser's at batch 512.
CONVOLUTIONS = [(64, 256, 128), (32, 256, 256), (64, 256, 256), (64, 256, 512), (512, 64, 256)]


def convolution_rows(quick: bool, device: str = "cpu") -> list[dict[str, Any]]:
    """Forward + backward of the long convolution alone at each of :data:`CONVOLUTIONS`."""
    return [convolution_row(*size, quick, device) for size in ([(2, 4, 16), (2, 4, 32)] if quick else CONVOLUTIONS)]


def convolution_row(batch: int, channels: int, length: int, quick: bool, device: str = "cpu") -> dict[str, Any]:
    """The baseline FFT, the current FFT (hand-written adjoint) and the Toeplitz product, alternated;
    "current" is what ``method="auto"`` picks with gradients on."""
    import statistics

    from baseline_s4d import baseline_fft_convolution

    from ldns_framework.nn import auto_method, long_convolution

    def tensor(*shape: int, grad: bool = True) -> torch.Tensor:
        return torch.randn(*shape, device=device).requires_grad_(grad)

    u = tensor(batch, channels, length)  # (B, H, L)
    kernel, backward = tensor(channels, length), tensor(channels, length)
    grad = tensor(batch, channels, length, grad=False)
    calls = {"baseline": lambda: baseline_fft_convolution(u, kernel, backward).backward(grad),
             "fft": lambda: long_convolution(u, kernel, backward, method="fft").backward(grad),
             "direct": lambda: long_convolution(u, kernel, backward, method="direct").backward(grad)}
    calls = {name: machine.synchronised(call, device) for name, call in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    for round_ in range(repeats(quick)):
        for name in list(calls) if round_ % 2 == 0 else list(calls)[::-1]:
            started = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - started)
    seconds = {name: statistics.median(values) for name, values in times.items()}
    current = seconds[auto_method(length, batch, grad=True)]
    print(f"  conv H {channels} L {length} batch {batch}: "
          + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in seconds.items()), flush=True)
    return {"section": "conv", "case": f"H {channels} L {length} fwd+bwd", "batch": batch,
            "unit": "samples/s", "baseline": significant(batch / seconds["baseline"]),
            "current": significant(batch / current), "speed-up": significant(seconds["baseline"] / current, 3),
            **{f"{name}_s_per_call": value for name, value in seconds.items()}}


def profile_rows(quick: bool) -> list[dict[str, Any]]:
    """Where the Lorenz autoencoder step at batch 64 spends its time, baseline and current (share of
    the profiled self CPU time per op category)."""
    case = {"kind": "train", "model": "lorenz-autoencoder", "batch": 4 if quick else 64}
    model, call, _ = cases.make_case(case, quick)
    shares = {}
    for variant in cases.VARIANTS:
        seconds = cases.time_by_category(model, call, variant)
        shares[variant] = {category: value / sum(seconds.values()) for category, value in seconds.items()}
    categories = sorted(set(shares["baseline"]) | set(shares["current"]))
    return [{"section": "profile", "case": f"lorenz-autoencoder step: {category}", "batch": case["batch"],
             "unit": "% of time", "baseline": significant(100 * shares["baseline"].get(category, 0.0), 3),
             "current": significant(100 * shares["current"].get(category, 0.0), 3)} for category in categories]


def machine_rows(quick: bool, device: str = "cpu") -> tuple[list[dict[str, Any]], float]:
    """The compute and memory roofs on ``device``: fp32 matmul (and bf16 on a GPU) and a large copy."""
    size, mib, times = (512, 16, 1) if quick else (4096 if device == "cpu" else 8192, 512, 3)
    matmul = machine.matmul_gflops(size, repeats=times, device=device)
    copy = machine.copy_gbytes_per_s(mib, repeats=times, device=device)
    rows = [{"section": "machine", "case": f"matmul {size} fp32", "unit": "GFLOP/s", "current": round(matmul, 1)},
            {"section": "machine", "case": f"copy {mib} MiB", "unit": "GB/s", "current": round(copy, 2)}]
    if device != "cpu":
        bf16 = machine.matmul_gflops(size, repeats=times, device=device, dtype=torch.bfloat16)
        rows.insert(1, {"section": "machine", "case": f"matmul {size} bf16", "unit": "GFLOP/s", "current": round(bf16, 1)})
    return rows, matmul


def scaling_rows(quick: bool) -> list[dict[str, Any]]:
    """How training time grows with the data: whole epochs of the Lorenz autoencoder at batch 64
    through the Trainer as trials double (data gathering and logging included), and seconds per step
    as trial length (128 .. 1024) and neurons (128 .. 1024) double."""
    batch = 4 if quick else 64
    base = {"kind": "train", "model": "lorenz-autoencoder", "batch": batch}
    rows = []
    for trials in ((8, 16) if quick else (1000, 2000, 4000)):
        seconds = epoch_seconds(cases.model_size(base["model"], quick), trials, batch)
        rows.append({"section": "scaling", "case": f"epoch of {trials} trials", "batch": batch, "unit": "s/epoch",
                     "current": round(seconds, 2), "s_per_trial": seconds / trials})
        print(f"  scaling: epoch of {trials} trials {seconds:.1f} s", flush=True)
    lengths = (16, 32) if quick else (128, 256, 512, 1024)
    neurons = (8, 16) if quick else (128, 256, 512, 1024)
    for key, values in (("bins", lengths), ("neurons", neurons)):
        for value in values:
            model, call, _ = cases.make_case({**base, "size": {key: value}}, quick)
            seconds = cases.time_interleaved(model, call, repeats(quick, True), ("current",))["current"]
            rows.append({"section": "scaling", "case": f"{key} {value}", "batch": batch, "unit": "s/step",
                         "current": round(seconds, 4)})
            print(f"  scaling {key} {value}: {seconds:.3f} s/step", flush=True)
    return rows


def epoch_seconds(size: dict[str, Any], trials: int, batch: int) -> float:
    """Wall seconds of one training epoch (the stage log's figure) of the autoencoder of ``size`` on
    ``trials`` random Poisson trials, through :class:`ldns_framework.training.Trainer` on the CPU."""
    import tempfile

    from ldns_framework.spec import TrainConfig
    from ldns_framework.training import LOG_NAME, Trainer
    from ldns_plugins.poisson.model import PoissonObservation

    model = cases.build(size).train()
    observation = PoissonObservation()
    counts = torch.poisson(torch.full((trials, size["bins"], size["neurons"]), 0.3))  # (trials, T, N)
    mask = torch.ones(trials, size["bins"], dtype=torch.bool)

    def loss(module: torch.nn.Module, counts: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return module.training_loss(cases.Batch(counts, mask), observation)

    with tempfile.TemporaryDirectory() as stage:
        Trainer(TrainConfig(epochs=1, batch_size=batch), stage, seed=0, progress=False).fit(model, loss, (counts, mask))
        return json.loads((Path(stage) / LOG_NAME).read_text().splitlines()[-1])["seconds"]


#: The training steps of the allocator section (those of the issue's targets).
ALLOCATOR = [("lorenz-autoencoder", 64), ("lorenz-autoencoder", 128), ("lorenz-denoiser", 128), ("lorenz-denoiser", 512)]
#: (layer variant, LDNS_KEEP_FREED_MEMORY) per configuration of the allocator section.
ALLOCATOR_CONFIGS = {"before issue 13": ("baseline", "0"), "glibc default": ("current", "0"),
                     "freed memory kept": ("current", "1")}


def process_seconds(case: dict[str, Any], variant: str, keep: str, quick: bool) -> float:
    """Median seconds per call of ``case`` in a fresh process started with ``LDNS_KEEP_FREED_MEMORY=keep``."""
    payload = json.dumps({**case, "quick": quick})
    done = subprocess.run([sys.executable, str(HERE / "cases.py"), "time", payload, variant, str(repeats(quick, True))],
                          capture_output=True, text=True, cwd=HERE.parent, check=True,
                          env={**os.environ, "LDNS_KEEP_FREED_MEMORY": keep,
                               "OMP_NUM_THREADS": str(torch.get_num_threads())})
    return json.loads(done.stdout.strip().splitlines()[-1])["s_per_call"]


def allocator_rows(quick: bool) -> list[dict[str, Any]]:
    """The allocator setting's effect (ldns_framework/allocator.py) on whole training steps: each of
    :data:`ALLOCATOR_CONFIGS` in its own process (the setting is process-wide), in two rounds of
    alternating order; rows: glibc default -> kept, and the step before issue 13 (baseline layer,
    default allocator) -> now."""
    import statistics

    rows = []
    for name, batch in ALLOCATOR:
        case = {"kind": "train", "model": name, "batch": 4 if quick else batch}
        times: dict[str, list[float]] = {config: [] for config in ALLOCATOR_CONFIGS}
        for round_ in range(2):
            for config in list(ALLOCATOR_CONFIGS)[::1 if round_ == 0 else -1]:
                times[config].append(process_seconds(case, *ALLOCATOR_CONFIGS[config], quick))
        seconds = {config: statistics.median(values) for config, values in times.items()}
        print(f"  allocator {name} batch {case['batch']}: " + ", ".join(f"{k} {v:.4g} s" for k, v in seconds.items()),
              flush=True)
        for label, before in (("glibc default -> freed memory kept", "glibc default"),
                              ("before issue 13 -> now", "before issue 13")):
            rows.append({"section": "allocator", "case": f"{name} step: {label}", "batch": case["batch"],
                         "unit": "samples/s", "baseline": significant(case["batch"] / seconds[before]),
                         "current": significant(case["batch"] / seconds["freed memory kept"]),
                         "speed-up": significant(seconds[before] / seconds["freed memory kept"], 3),
                         "baseline_s_per_call": seconds[before],
                         "current_s_per_call": seconds["freed memory kept"]})
    return rows


SECTIONS = ("conv", "train", "allocator", "profile", "encode", "sample", "spike-history", "evaluate", "startup")
#: The sections that time the model on a GPU with ``--device cuda``; the others time CPU-only paths
#: (glibc's allocator, CPU profiles, spike-history sampling and evaluation in numpy, the CLI's start-up).
GPU_SECTIONS = ("conv", "train", "encode", "sample")


def bench(quick: bool, scaling: bool, memory: bool = True, sections: tuple[str, ...] = SECTIONS,
          device: str = "cpu") -> list[dict[str, Any]]:
    """Every row of the table: the machine's yardsticks, then ``sections`` in order (and scaling). A
    section that raises leaves a ``failed`` row (and its traceback on stderr); the others still run."""
    kept = keep_freed_memory()
    where = torch.cuda.get_device_name(device) if device != "cpu" else f"{torch.get_num_threads()} torch threads"
    print(f"make bench{' --quick' if quick else ''}: {where}, freed memory "
          f"{'kept' if kept else 'returned (glibc default)'} in this process", flush=True)
    rows, matmul = machine_rows(quick, device)
    runners = {"conv": lambda: convolution_rows(quick, device),
               "train": lambda: train_rows(quick, matmul, memory, device),
               "allocator": lambda: allocator_rows(quick),
               "profile": lambda: profile_rows(quick),
               "encode": lambda: encode_rows(quick, matmul, memory, device),
               "sample": lambda: sample_rows(quick, matmul, memory, device),
               "spike-history": lambda: spike_history_rows(quick),
               "evaluate": lambda: evaluate_rows(quick),
               "startup": lambda: startup_rows(quick),
               "scaling": lambda: scaling_rows(quick)}
    for name in [*(s for s in SECTIONS if s in sections), *(["scaling"] if scaling else [])]:
        try:
            rows += runners[name]()
        except Exception as exc:  # noqa: BLE001 -- a broken section must not lose the others' figures
            traceback.print_exc()
            rows.append({"section": name, "case": f"failed: {type(exc).__name__}: {exc}"[:200], "failed": True})
    return rows


def train_rows(quick: bool, matmul: float, memory: bool, device: str = "cpu") -> list[dict[str, Any]]:
    """Training steps, baseline against current layer (and, on a GPU, against bf16 autocast)."""
    variants = cases.VARIANTS if device == "cpu" else cases.ALL_VARIANTS
    rows = []
    for name, batch in TRAIN:
        case = {"kind": "train", "model": name, "batch": 4 if quick else batch, "device": device}
        rows += speed_rows("train", case, name, quick, matmul, memory, variants=variants, flops=True)
    return rows


def encode_rows(quick: bool, matmul: float, memory: bool, device: str = "cpu") -> list[dict[str, Any]]:
    rows = []
    for name, batch in ENCODE:
        case = {"kind": "encode", "model": name, "batch": batch if not quick else min(batch, 4), "device": device}
        rows += speed_rows("encode", case, name, quick, matmul, memory)
    return rows


def sample_rows(quick: bool, matmul: float, memory: bool, device: str = "cpu") -> list[dict[str, Any]]:
    """Trials/s per sampler and step count on SAMPLE_TRIALS Lorenz trials; DPM-Solver++ 25 also baseline."""
    rows = []
    trials = 4 if quick else SAMPLE_TRIALS
    for sampler, steps in SAMPLERS:
        steps = min(steps, 5) if quick else steps
        both = sampler == "dpm-solver++" and steps in (5, 25)
        case = {"kind": "sample", "model": "lorenz-denoiser", "batch": trials, "sampler": sampler, "steps": steps,
                "device": device}
        rows += speed_rows("sample", case, f"lorenz {sampler} {steps if sampler != 'ddpm' else 1000}", quick, matmul,
                           memory, variants=cases.VARIANTS if both else ("current",))
    return rows


def startup_rows(quick: bool) -> list[dict[str, Any]]:
    """The numeric figures of benchmarks/startup.py."""
    return [{"section": "startup", "case": key, "unit": "", "current": round(float(value), 4)}
            for key, value in startup.run(quick).items() if isinstance(value, (int, float))]


def spike_history_rows(quick: bool) -> list[dict[str, Any]]:
    history = spike_history_speed.run(*((50, 16, 12) if quick else (2000, 140, 182)), repeats=1 if quick else 3,
                                      fit_iterations=1, verbose=False)
    return [{"section": "spike-history", "case": "sample 2000 x 140 x 182" if not quick else "sample (quick)",
             "unit": "s", "current": round(history["sample_s"], 3)}]


def evaluate_rows(quick: bool) -> list[dict[str, Any]]:
    started = time.perf_counter()
    evaluated = evaluate_speed.run(*((40, 16, 12, 2) if quick else (2000, 140, 182, 5)), workers=1 if quick else min(2, os.cpu_count() or 1),
                                   verbose=False)
    rows = [{"section": "evaluate", "case": "6 metrics, 5 folds, 2000 x 140 x 182" if not quick else "(quick)",
             "unit": "s", "current": round(evaluated["evaluate_s"], 2)}]
    slowdown = evaluate_speed.blas_thread_slowdown(2000 if quick else 20_000, repeats=1 if quick else 3)
    rows.append({"section": "evaluate", "case": "X^T X 2 BLAS threads / 1", "unit": "ratio",
                 "current": round(slowdown["xtx_2_thread_s"] / slowdown["xtx_1_thread_s"], 2)})
    print(f"  evaluation {time.perf_counter() - started:.1f} s", flush=True)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    cells = [[cell(row.get(column)) for column in COLUMNS] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(COLUMNS)]
    lines = [" | ".join(column.ljust(width) for column, width in zip(COLUMNS, widths))]
    lines.append("-+-".join("-" * width for width in widths))
    lines += [" | ".join(value.ljust(width) for value, width in zip(line, widths)) for line in cells]
    return "\n".join(lines)


def write_results(rows: list[dict[str, Any]], out_dir: Path, settings: dict[str, Any]) -> Path:
    """<out_dir>/<date>-<machine>.json; a second run the same day gets a -2, -3, ... suffix."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.date.today().isoformat()}-{machine.machine_name(settings.get('device', 'cpu'))}"
    path, count = out_dir / f"{stem}.json", 1
    while path.exists():
        count += 1
        path = out_dir / f"{stem}-{count}.json"
    record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine.machine_name(settings.get("device", "cpu")), "torch": torch.__version__,
              "threads": torch.get_num_threads(),
              "load_average_after": os.getloadavg(), "settings": settings, "rows": rows}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def run_quality() -> int:
    for name, args in QUALITY:
        print(f"\n=== {name} ===", flush=True)
        code = subprocess.call([sys.executable, str(HERE / name), *args], cwd=HERE.parent)
        if code:
            print(f"{name} failed with exit code {code}", flush=True)
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, measures nothing")
    parser.add_argument("--scaling", action="store_true", help="add the scaling section (several minutes)")
    parser.add_argument("--quality", action="store_true", help="also train and score the Lorenz pipeline (slow)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-case peak-memory processes")
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated subset of {','.join(SECTIONS)} (the machine rows always run; "
                             f"default: all, or {','.join(GPU_SECTIONS)} with --device cuda)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where the models run (cuda: the GPU sections on the first GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--note", default="", help="a remark kept in the results file (e.g. the machine's load)")
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    allowed = SECTIONS if args.device == "cpu" else GPU_SECTIONS
    sections = allowed if args.sections is None else tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = sorted(set(sections) - set(allowed))
    if unknown:
        parser.error(f"--sections: expected names from {', '.join(allowed)}"
                     f"{' (with --device cuda)' if args.device != 'cpu' else ''}, got {', '.join(unknown)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device: 'cuda' asked for, but torch finds no CUDA device on this machine")
    if args.device == "cuda" and (args.scaling or args.quality):
        parser.error("--scaling and --quality time the CPU; run them without --device cuda")
    load_before = os.getloadavg()
    rows = bench(args.quick, args.scaling, memory=not args.no_memory, sections=sections, device=args.device)
    print(format_table(rows))
    if "train" in sections:
        print(roofline(rows))
    path = write_results(rows, args.out_dir, {"quick": args.quick, "scaling": args.scaling, "device": args.device,
                                                    "memory": not args.no_memory, "sections": sections,
                                                    "load_average_before": load_before, "note": args.note})
    print(f"results: {path}")
    if any(row.get("failed") for row in rows):
        print("some sections failed (rows marked failed)", file=sys.stderr)
        return 1
    return run_quality() if args.quality else 0


if __name__ == "__main__":
    raise SystemExit(main())
