"""Data-parallel training: two CPU processes (gloo, strategy ddp) train the tiny spec as one does.

Launches: ``torchrun --standalone`` (a free port of its own) for the uninterrupted run and the
interrupted one; Fabric's own launcher (``run.devices: 2``, no launcher) for the resume. Every
process runs :data:`WORKER`, which records every write under the runs directory (Python audit
hooks: open for writing, rename, remove, mkdir, chmod, truncate, mkstemp) and a digest of each
stage's product as that process holds it, then calls ``ldns_framework.cli.main``.

What "matches" means here. The two processes split each global batch of 8 trials (4 each) and
DDP averages their gradients, so each step sees the same trials as the single process's step.
The encoder's loss (coordinated dropout off) is deterministic, so its weights and losses agree
up to float32 rounding: a mean over 4 + 4 trials then an all-reduce adds in another order than a
mean over 8, and Adam carries those last-bit differences on (measured 6e-8 after 3-4 epochs; the
tolerance 1e-5 leaves a hundredfold margin). The generator draws its diffusion noise and
timesteps from per-process random streams, so it matches only in distribution: its loss is
compared loosely, and its exact agreement is checked between the two processes instead (same
weights and EMA on both, i.e. synchronised gradients) and between an interrupted-and-resumed DDP
run and an uninterrupted one (bit for bit).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ldns_framework.pipeline import Pipeline

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch has no torch.distributed")]

SPEC = {
    "seed": 1,
    "data": {"type": "lorenz", "n_trials": 24, "n_neurons": 8, "length": 32, "seed": 3},
    "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8,
                "dropout_prob": 0.0, "calibrate_rates": True},
    "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50},
    "train": {"encoder": {"epochs": 3, "batch_size": 8, "val_every": 1, "checkpoint_every": 2},
              "generator": {"epochs": 3, "batch_size": 8, "val_every": 1, "checkpoint_every": 2}},
    "sample": {"steps": 5},
    "run": {"device": "cpu", "num_threads": 1},
}
DDP = ["--set", "run.devices=2", "--set", "run.strategy=ddp"]
PRODUCTS = ("encoder/weights.safetensors", "generator/weights.safetensors", "latent_stats.json", "conditioner.json")
TIMEOUT_S = 150  # per launch; a launch takes about 10 s on 2 busy cores
#: The test hook's write point of rank 0 that is the encoder's first log line (ldns_framework.rundir):
#: 4 for spec.yaml and environment.json, 1 for the run directory's rename, 2 for data/summary.json.
ENCODER_EPOCH_1_LOG = 8

WORKER = r'''
import hashlib, json, os, sys

RANK = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))
WATCHED = os.environ["DDP_TEST_WATCHED"]
OUT = os.environ["DDP_TEST_OUT"]
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
PATH_EVENTS = {"os.remove", "os.mkdir", "os.rmdir", "os.truncate", "os.chmod", "os.utime", "os.link", "os.symlink",
               "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp", "os.rename"}
writes = []


def watched(path):
    try:
        return isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)).startswith(WATCHED)
    except (TypeError, ValueError):
        return False


def audit(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & WRITE_FLAGS))
        paths = [path] if writing else []
    elif event in PATH_EVENTS:
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    else:
        return
    writes.extend(f"{event} {os.fsdecode(p)}" for p in paths if watched(p))


sys.addaudithook(audit)

import ldns_framework.cli
import ldns_framework.training as training

products = {}
finish = training.Trainer._finish


def recording_finish(self, module, position, best_state, finalize):
    finalized = finish(self, module, position, best_state, finalize)
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    products[self.description] = digest.hexdigest()
    return finalized


training.Trainer._finish = recording_finish
code = ldns_framework.cli.main(sys.argv[1:])
with open(os.path.join(OUT, f"rank{RANK}.json"), "w") as handle:
    json.dump({"writes": writes, "products": products, "code": code}, handle)
sys.exit(code)
'''


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the worker, the spec and ``runs/`` (the only place the workers may write)."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "worker.py").write_text(WORKER)
    (root / "spec.json").write_text(json.dumps(SPEC))
    (root / "runs").mkdir()
    return root


def launch(place: Path, name: str, argv: list[str], *, torchrun: bool = True, env: dict[str, str] | None = None
           ) -> tuple[int, str, dict[int, dict]]:
    """Run the worker (under torchrun with 2 processes, or alone: Fabric then starts the second
    process itself); returns (exit status, output, {rank: what that process recorded})."""
    out = place / "records" / name
    out.mkdir(parents=True)
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                                "NODE_RANK", "GROUP_RANK", "TORCHELASTIC_RUN_ID") and not k.startswith(("LT_", "SLURM_"))}
    environment.update({"OMP_NUM_THREADS": "1", "DDP_TEST_WATCHED": str(place / "runs"), "DDP_TEST_OUT": str(out),
                        **(env or {})})
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "--monitor_interval", "0.2"] if torchrun else [sys.executable]
    process = subprocess.Popen([*launcher, str(place / "worker.py"), *argv], cwd=place, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher and every process it started
        output, _ = process.communicate()
        pytest.fail(f"{name}: no result after {TIMEOUT_S} s:\n{output[-3000:]}")
    records = {int(p.stem[4:]): json.loads(p.read_text()) for p in out.glob("rank*.json")}
    return process.returncode, output, records


def train_argv(place: Path, run: str) -> list[str]:
    return ["train", str(place / "spec.json"), "--out", str(place / "runs" / run), "--no-progress", *DDP]


@pytest.fixture(scope="module")
def single(place: Path) -> Path:
    """The single-process run, in this process."""
    run_dir = place / "single"
    threads = torch.get_num_threads()
    try:
        Pipeline.from_spec(SPEC).fit(run_dir=run_dir, progress=False)
    finally:
        torch.set_num_threads(threads)
    return run_dir


@pytest.fixture(scope="module")
def ddp(place: Path) -> tuple[Path, dict[int, dict]]:
    """The 2-process run under torchrun."""
    code, output, records = launch(place, "ddp", train_argv(place, "ddp"))
    assert code == 0, output[-3000:]
    return place / "runs" / "ddp", records


def log(run_dir: Path, stage: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / stage / "log.jsonl").read_text().splitlines()]


def test_two_processes_train_the_encoder_as_one_does(single: Path, ddp: tuple[Path, dict]) -> None:
    run_dir, _ = ddp
    one, two = (load_file(r / "encoder" / "weights.safetensors") for r in (single, run_dir))
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=f"encoder weights {name} differ")
    calibrated = [json.loads((r / "encoder" / "state.json").read_text())["finalized"] for r in (single, run_dir)]
    assert calibrated[0]["trials"] == calibrated[1]["trials"] > 0  # every process calibrated on all training trials
    assert math.isclose(calibrated[0]["rate_ratio_before"], calibrated[1]["rate_ratio_before"], rel_tol=1e-4)
    for a, b in zip(log(single, "encoder"), log(run_dir, "encoder"), strict=True):
        for key in ("train_loss", "train_recon", "val_loss"):
            assert math.isclose(a[key], b[key], rel_tol=1e-5), (key, a, b)
    stats_one, stats_two = (json.loads((r / "latent_stats.json").read_text()) for r in (single, run_dir))
    for key in stats_one:
        torch.testing.assert_close(torch.tensor(stats_two[key]), torch.tensor(stats_one[key]), rtol=1e-4, atol=1e-5)


def test_the_generator_is_synchronised_across_processes_and_matches_in_distribution(
        single: Path, ddp: tuple[Path, dict]) -> None:
    run_dir, records = ddp
    assert sorted(records) == [0, 1] and all(r["code"] == 0 for r in records.values())
    # both processes end every trained stage holding the same weights (and EMA): gradients were synchronised
    assert records[0]["products"] == records[1]["products"]
    assert set(records[0]["products"]) == {"encoder", "generator"}
    one, two = log(single, "generator")[-1]["val_loss"], log(run_dir, "generator")[-1]["val_loss"]
    assert math.isfinite(two) and abs(math.log(two / one)) < math.log(1.5), (one, two)


def test_only_process_zero_writes_the_run(ddp: tuple[Path, dict]) -> None:
    run_dir, records = ddp
    assert records[1]["writes"] == []
    written = {line.split(" ", 1)[1] for line in records[0]["writes"]}
    assert str(run_dir / "encoder" / "weights.safetensors") in written
    assert str(run_dir / "generator" / "log.jsonl") in written
    assert not list(run_dir.rglob(".*.tmp*")), "a temporary was left behind"


def test_a_stopped_ddp_run_resumes_under_ddp_to_the_same_weights(place: Path, ddp: tuple[Path, dict]) -> None:
    """SIGTERM reaches process 0 alone, at the encoder's first log line: both processes stop after
    that epoch with its checkpoint committed; the run resumes with Fabric launching the second
    process itself and ends bit for bit where the uninterrupted DDP run did."""
    straight, _ = ddp
    code, output, records = launch(place, "stopped", train_argv(place, "stopped"),
                                   env={"LDNS_TEST_KILL_AT_WRITE": f"{ENCODER_EPOCH_1_LOG}:TERM"})
    assert code != 0 and {r["code"] for r in records.values()} == {128 + signal.SIGTERM}, output[-3000:]
    run_dir = place / "runs" / "stopped"
    state = json.loads((run_dir / "encoder" / "state.json").read_text())
    assert (state["epoch"], state["batch"], state["complete"]) == (1, 0, False)
    assert records[1]["writes"] == []

    resume = ["train", "--resume", "--out", str(run_dir), "--no-progress"]
    code, output, records = launch(place, "resumed", resume, torchrun=False)
    assert code == 0, output[-3000:]
    assert sorted(records) == [0, 1] and records[1]["writes"] == []
    for name in PRODUCTS:
        assert (run_dir / name).read_bytes() == (straight / name).read_bytes(), name
    assert [r["epoch"] for r in log(run_dir, "encoder")] == [1, 2, 3]
