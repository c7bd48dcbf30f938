"""Exact, atomic resume in-process: every random stream restored, a stop mid-epoch, a crash at
every write point of a stage, checksums, the run lock, all-or-nothing run creation, file modes.

The same properties with real SIGKILLs of the CLI are in tests/e2e/test_kill.py.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import stat

import numpy as np
import pytest
import torch
from pipeline_toys import toy_registry, toy_spec

import ldns_framework.rundir as rundir
from ldns_framework import LdnsError
from ldns_framework.pipeline import Pipeline
from ldns_framework.rundir import RunLock
from ldns_framework.spec import TrainConfig
from ldns_framework.training import Interrupted, Trainer

CONFIG = TrainConfig(epochs=4, batch_size=4, lr=0.05, warmup_fraction=0.1, val_every=2, checkpoint_every=2,
                     grad_clip=1.0)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is faster than two, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Noisy(torch.nn.Module):
    """Draws from every global stream (torch dropout, numpy, Python random) and keeps an EMA
    with an update counter in buffers, as the diffusion generator does."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        self.register_buffer("ema", torch.zeros(1, 3))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.dropout(x, p=0.2, training=self.training)
        jitter = float(np.random.normal()) * 0.01 + random.random() * 0.01
        return self.linear(x) + jitter

    @torch.no_grad()
    def after_step(self) -> None:
        self.updates += 1
        self.ema.lerp_(self.linear.weight, 1.0 / float(self.updates))


def data(n: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([[1.0], [-1.0], [0.5]])


def loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    value = (model(x) - y).pow(2).mean()
    return {"loss": value, "mse": value.detach()}


def fit(directory, model: Noisy, *, resume: bool = False, loss_fn=loss, config: TrainConfig = CONFIG):
    return Trainer(config, directory, seed=5, progress=False, description="toy").fit(
        model, loss_fn, data(), data(8, 1), resume=resume, after_step=model.after_step)


def weights(model: torch.nn.Module) -> dict[str, bytes]:
    return {k: v.numpy().tobytes() for k, v in model.state_dict().items()}


def fresh(seed: int) -> Noisy:
    torch.manual_seed(seed)
    return Noisy()


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run: its final weights and log."""
    directory = tmp_path_factory.mktemp("straight")
    model = fresh(0)
    fit(directory, model)
    return weights(model), (directory / "log.jsonl").read_text()


def epochs_logged(directory) -> list[int]:
    return [json.loads(line)["epoch"] for line in (directory / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("signum", "at_call"), [(signal.SIGINT, 2), (signal.SIGTERM, 7), (signal.SIGINT, 5)])
def test_a_signal_stops_after_the_current_step_and_the_resumed_run_is_bit_identical(tmp_path, straight, signum,
                                                                                    at_call):
    """5 batches per epoch: call 2 stops mid-epoch 1, call 7 mid-epoch 2, call 5 at the end of epoch 1
    (not a checkpoint epoch: the stop commits one)."""
    calls = 0

    def signalling_loss(model, x, y):
        nonlocal calls
        calls += 1
        if calls == at_call:
            os.kill(os.getpid(), signum)  # handled between two bytecodes: the step still completes
        return loss(model, x, y)

    with pytest.raises(Interrupted) as raised:
        fit(tmp_path, fresh(0), loss_fn=signalling_loss)
    assert raised.value.exit_code == 128 + signum
    state = json.loads((tmp_path / "state.json").read_text())
    assert (state["epoch"], state["batch"], state["step"]) == divmod(at_call, 5) + (at_call,)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored

    resumed = fresh(99)  # a different init: everything must come from the checkpoint
    result = fit(tmp_path, resumed, resume=True)
    assert result.resumed_from == at_call // 5
    assert weights(resumed) == straight[0]
    assert epochs_logged(tmp_path) == [1, 2, 3, 4]


class Crash(BaseException):
    """Stands for a kill at a write point (a BaseException: nothing catches it on the way out)."""


def crash_at_write(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    """From now on, raise :class:`Crash` at the ``at``-th write point."""
    count = 0

    def write_point() -> None:
        nonlocal count
        count += 1
        if count == at:
            raise Crash

    monkeypatch.setattr(rundir, "write_point", write_point)


def test_a_crash_at_every_write_point_of_a_stage_resumes_to_the_same_weights(tmp_path, straight, monkeypatch):
    """Among them: the new checkpoint file written, the manifest not yet (the issue's epoch-9
    weights with the epoch-6 counter); the manifest written, the old checkpoint not yet deleted."""
    crash_at = survived = 0
    while True:
        crash_at += 1
        directory = tmp_path / str(crash_at)
        crash_at_write(monkeypatch, crash_at)
        try:
            fit(directory, fresh(0))
        except Crash:
            survived += 1
        else:
            break  # no write point left to crash at
        monkeypatch.undo()  # the resumed run is not crashed
        committed = (directory / "state.json").exists()
        resumed = fresh(crash_at if committed else 0)  # from a checkpoint, the init must not matter
        fit(directory, resumed, resume=True)
        assert weights(resumed) == straight[0], f"crash at write point {crash_at}"
        assert epochs_logged(directory) == [1, 2, 3, 4], f"crash at write point {crash_at}"
        assert sorted(p.name for p in directory.iterdir()) == ["log.jsonl", "state.json", "weights.safetensors"]
    # 4 log lines; the epoch-2 checkpoint and its manifest (2 points each: written, renamed); the
    # weights and the final manifest (2 each); the checkpoint removed
    assert survived == 13


def test_a_damaged_checkpoint_or_weights_file_is_named(tmp_path):
    def stop_after_epoch_3(record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(CONFIG, tmp_path, seed=5, progress=False, on_epoch_end=stop_after_epoch_3).fit(
            fresh(0), loss, data(), data(8, 1))
    (checkpoint,) = tmp_path.glob("checkpoint-*.safetensors")  # of epoch 2
    flip_last_byte(checkpoint)  # inside the last tensor's data
    with pytest.raises(LdnsError, match=rf"^{checkpoint}: checksum mismatch .*damaged or changed"):
        fit(tmp_path, fresh(0), resume=True)
    flip_last_byte(checkpoint)
    fit(tmp_path, fresh(0), resume=True)
    flip_last_byte(tmp_path / "weights.safetensors")
    with pytest.raises(LdnsError, match=r"weights\.safetensors: checksum mismatch"):
        fit(tmp_path, fresh(0), resume=True)


def flip_last_byte(path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))


# -- the stage runner -------------------------------------------------------------------------------
SPEC = toy_spec(observation={"type": "poisson"}, encoder={"type": "counting-encoder", "latent_dim": 2},
                generator={"type": "latent-diffusion", "hidden": 8, "blocks": 1, "state_size": 4, "train_steps": 10},
                train={"encoder": {"epochs": 2, "batch_size": 4, "val_every": 1},
                       "generator": {"epochs": 3, "batch_size": 4, "checkpoint_every": 2}})


def stage_weights(run) -> dict[str, bytes]:
    return {stage: (run / stage / "weights.safetensors").read_bytes() for stage in ("encoder", "generator")}


def test_stages_seed_themselves_so_until_then_resume_matches_a_straight_run(tmp_path):
    """The issue's finding: the resumed process built the generator from another global RNG state."""
    registry = toy_registry()
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=tmp_path / "a", progress=False)
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=tmp_path / "b", until="latents", progress=False)
    torch.manual_seed(1234)  # whatever ran before in this process must not matter
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=tmp_path / "b", resume=True, progress=False)
    assert stage_weights(tmp_path / "a") == stage_weights(tmp_path / "b")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Pipeline.from_spec(SPEC, registry=toy_registry()).fit(run_dir=run, progress=False)
    finally:
        torch.set_num_threads(threads)
    return run


def test_a_bit_flip_in_a_runs_weights_is_named_when_the_run_is_loaded(tmp_path, finished_run):
    registry = toy_registry()
    run = shutil.copytree(finished_run, tmp_path / "run")
    Pipeline.load(run, registry)
    flip_last_byte(run / "generator" / "weights.safetensors")
    with pytest.raises(LdnsError, match=rf"^{re.escape(str(run))}/generator/weights\.safetensors: checksum mismatch"):
        Pipeline.load(run, registry)


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    registry = toy_registry()
    run = tmp_path / "run"
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=run, until="data", progress=False)
    with RunLock.acquire(run):  # another descriptor: flock conflicts even within one process
        with pytest.raises(LdnsError, match=rf"process {os.getpid()} is writing this run \(it holds {run}/\.lock\)"):
            Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=run, resume=True, progress=False)
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=run, resume=True, until="encoder", progress=False)


@pytest.mark.parametrize("crash_at", [2, 3, 5])  # spec.yaml in place; environment.json written; before the rename
def test_a_run_directory_is_created_whole_or_not_at_all(tmp_path, monkeypatch, crash_at):
    registry = toy_registry()
    run = tmp_path / "run"
    crash_at_write(monkeypatch, crash_at)
    with pytest.raises(Crash):
        Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=run, until="data", progress=False)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_what_a_killed_creation_left_is_removed_unless_its_creator_lives(tmp_path):
    registry = toy_registry()
    abandoned, alive = tmp_path / ".run.abcd1234.new", tmp_path / ".run.live0000.new"
    for directory in (abandoned, alive):
        directory.mkdir()
        (directory / "spec.yaml").write_text("seed: 0\n")
    with RunLock.acquire(alive):
        Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=tmp_path / "run", until="data", progress=False)
        assert not abandoned.exists() and alive.exists()
    assert (tmp_path / "run" / "environment.json").is_file()


def test_out_on_a_directory_that_is_not_a_run_is_refused_and_left_alone(tmp_path):
    registry = toy_registry()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(LdnsError, match="exists and is a directory that is not a run directory"):
        Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=mine, until="data", progress=False)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=empty, until="data", progress=False)
    assert (empty / "spec.yaml").is_file()


def test_what_no_manifest_accounts_for_is_removed_on_resume_and_nothing_else(tmp_path):
    """Temporaries of killed writes; a checkpoint the finished stage's manifest no longer names
    (killed before deleting it: the stage is not retrained, yet it goes); a log line past the
    recorded length."""
    registry = toy_registry()
    run = tmp_path / "run"
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=run, until="encoder", progress=False)
    log = (run / "encoder" / "log.jsonl").read_text()
    (run / "encoder" / "log.jsonl").write_text(log + '{"epoch": 2}\n')
    stale = [run / ".spec.yaml.abcd1234.tmp.yaml", run / "encoder" / ".weights.safetensors.x_y0z9ab.tmp.safetensors",
             run / "encoder" / "checkpoint-000000002-000000.safetensors"]
    kept = [run / ".notes.tmp", run / "encoder" / ".weights.safetensors.short.tmp.safetensors",
            run / "encoder" / "checkpoint-notes.txt"]
    for path in stale + kept:
        path.write_bytes(b"partial")
    Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=run, resume=True, until="observation", progress=False)
    assert [p.exists() for p in stale + kept] == [False] * 3 + [True] * 3
    assert (run / "encoder" / "log.jsonl").read_text() == log


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_every_file_and_directory_follows_the_umask(tmp_path, umask):
    registry = toy_registry()
    previous = os.umask(umask)
    try:
        Pipeline.from_spec(SPEC, registry=registry).fit(run_dir=tmp_path / "run", progress=False)
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*")}
    assert {"run/.lock", "run/encoder/log.jsonl", "run/generator/weights.safetensors"} <= set(modes)
    wrong = {path: oct(mode) for path, mode in modes.items()
             if mode != (0o777 if (tmp_path / path).is_dir() else 0o666) & ~umask}
    assert not wrong


@pytest.mark.parametrize(("name", "content"), [
    ("encoder/state.json", "{not json"), ("encoder/state.json", "[]"), ("encoder/state.json", '{"complete": true}'),
    ("latent_stats.json", '{"mean": [0.0, 1.0], "std": [1.0]}'), ("environment.json", b"\xff\xfe"),
    ("data/summary.json", '{"neurons": "many"}'), ("conditioner.json", "3"),
])
def test_a_damaged_run_file_is_an_error_naming_it(tmp_path, finished_run, name, content):
    registry = toy_registry()
    run = shutil.copytree(finished_run, tmp_path / "run")
    path = run / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(LdnsError, match=rf"^{re.escape(str(path))}: ") as raised:
        Pipeline.load(run, registry)
    assert "\n" not in str(raised.value)
