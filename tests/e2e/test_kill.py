"""Kill tests: `ldns train` is killed (SIGKILL at random write points and after random delays,
SIGTERM and SIGINT at chosen write points) and resumed until it finishes; the final weights
must equal an uninterrupted run's bit for bit, with no duplicate log line, no temporary left
behind and every file's mode from the umask.

Write points are counted by the test hook of ldns_framework.rundir (``LDNS_TEST_KILL_AT_WRITE``).
Runs are forked from a warm process that has imported the CLI once (a zygote), so a run costs
its training (under a second) rather than the three seconds of importing torch and Lightning;
each fork calls ``ldns_framework.cli.main`` exactly as ``python -m ldns_framework`` does, and
one resume goes through ``python -m ldns_framework`` itself. ``LDNS_KILL_EVERY_WRITE=1`` kills a
fresh run at every write point instead of a sample of them (a minute or two).
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

UMASK = 0o027
SPEC = {
    "seed": 1,
    "data": {"type": "lorenz", "n_trials": 24, "n_neurons": 8, "length": 32, "seed": 3},
    "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1, "state_size": 8,
                "calibrate_rates": True},
    "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1, "state_size": 8, "train_steps": 50},
    "train": {"encoder": {"epochs": 3, "batch_size": 8, "val_every": 1, "checkpoint_every": 2},
              "generator": {"epochs": 3, "batch_size": 8, "val_every": 2, "checkpoint_every": 1}},
    "sample": {"steps": 5},
    "run": {"device": "cpu", "num_threads": 1},
}
#: What must be identical to the uninterrupted run.
PRODUCTS = ("encoder/weights.safetensors", "generator/weights.safetensors", "latent_stats.json", "conditioner.json")

ZYGOTE = """
import json, os, sys
# imported once, before any fork: the CLI, Lightning Fabric and the spec's plugins
import lightning_fabric, ldns_framework.cli, ldns_framework.pipeline, ldns_registry
import ldns_plugins.latent_diffusion.model, ldns_plugins.lorenz.source, ldns_plugins.s4_autoencoder.model
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "start":
        pid = os.fork()
        if pid == 0:
            os.environ.update(request["env"])
            os.umask(request["umask"])
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            code = 1
            try:
                code = ldns_framework.cli.main(request["argv"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
    else:
        _, status = os.waitpid(request["pid"], 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Zygote:
    """Forks ``ldns`` commands from one warm process; ``code`` is the exit status (-9 when killed)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.count = 0
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert json.loads(self.process.stdout.readline()) == {"ready": True}

    def _ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def start(self, *argv: str, env: dict[str, str] | None = None) -> int:
        self.count += 1
        self.last_log = self.logs / f"run-{self.count}.log"
        return self._ask({"op": "start", "argv": list(argv), "env": env or {}, "umask": UMASK,
                          "log": str(self.last_log)})["pid"]

    def wait(self, pid: int) -> int:
        return self._ask({"op": "wait", "pid": pid})["code"]

    def run(self, *argv: str, env: dict[str, str] | None = None) -> int:
        return self.wait(self.start(*argv, env=env))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    warm = Zygote(logs)
    yield warm
    warm.close()


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


@pytest.fixture(scope="module")
def reference(zygote, spec, tmp_path_factory):
    """An uninterrupted run: its products, and how long it took."""
    run = tmp_path_factory.mktemp("reference") / "run"
    started = time.perf_counter()
    assert zygote.run("train", str(spec), "--out", str(run), "--no-progress") == 0, zygote.last_log.read_text()
    return {name: (run / name).read_bytes() for name in PRODUCTS}, time.perf_counter() - started


def train_args(spec: Path, run: Path) -> list[str]:
    """A fresh run, or the resume of one already created."""
    if (run / "spec.yaml").exists():
        return ["train", "--resume", "--out", str(run), "--no-progress"]
    return ["train", str(spec), "--out", str(run), "--no-progress"]


def first_unfinished_stage(run: Path) -> str:
    def complete(stage: str) -> bool:
        state = run / stage / "state.json"
        return state.is_file() and json.loads(state.read_text())["complete"]

    if not (run / "spec.yaml").exists():
        return "creation"
    for stage, done in (("data", (run / "data" / "summary.json").exists()), ("encoder", complete("encoder")),
                        ("observation", complete("observation")), ("latents", (run / "latent_stats.json").exists()),
                        ("generator", complete("generator"))):
        if not done:
            return stage
    return "done"


def assert_same_as_reference(run: Path, reference) -> None:
    products, _ = reference
    for name in PRODUCTS:
        assert (run / name).read_bytes() == products[name], f"{name} differs from the uninterrupted run"
    for stage, epochs in (("encoder", 3), ("generator", 3)):
        logged = [json.loads(line)["epoch"] for line in (run / stage / "log.jsonl").read_text().splitlines()]
        assert logged == list(range(1, epochs + 1)), f"{stage}/log.jsonl: epochs {logged}"
    leftovers = [p.name for p in run.rglob("*") if ".tmp" in p.name or p.name.startswith("checkpoint-")]
    assert not leftovers, f"left behind: {leftovers}"
    assert not list(run.parent.glob(f".{run.name}.*")), "a hidden creation directory was left behind"
    wrong = {str(p.relative_to(run)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [run, *run.rglob("*")]
             if stat.S_IMODE(p.stat().st_mode) != (0o777 if p.is_dir() else 0o666) & ~UMASK}
    assert not wrong, f"modes not from the umask {oct(UMASK)}: {wrong}"


def test_sigkill_at_random_write_points_across_all_stages(zygote, spec, reference, tmp_path):
    run = tmp_path / "run"
    rng = random.Random(12)
    killed_in = []
    for _ in range(60):
        code = zygote.run(*train_args(spec, run), env={"LDNS_TEST_KILL_AT_WRITE": str(rng.randint(1, 12))})
        if code == 0:
            break
        assert code == -signal.SIGKILL, zygote.last_log.read_text()
        killed_in.append(first_unfinished_stage(run))
    else:
        pytest.fail("the run never finished")
    assert len(killed_in) >= 6 and {"encoder", "generator"} <= set(killed_in), killed_in
    assert_same_as_reference(run, reference)


def test_sigkill_after_random_delays(zygote, spec, reference, tmp_path):
    run = tmp_path / "run"
    rng = random.Random(7)
    duration = reference[1]
    kills = 0
    for _ in range(20):
        pid = zygote.start(*train_args(spec, run))
        time.sleep(rng.uniform(0.05, 0.6) * duration)
        os.kill(pid, signal.SIGKILL)  # our own child; a no-op when it already exited
        code = zygote.wait(pid)
        if code == 0:
            break
        assert code == -signal.SIGKILL, zygote.last_log.read_text()
        kills += 1
    else:
        assert zygote.run(*train_args(spec, run)) == 0, zygote.last_log.read_text()
    assert kills >= 3
    assert_same_as_reference(run, reference)


def test_until_latents_then_sigterm_and_sigint_then_resume(zygote, spec, reference, tmp_path):
    """The issue's `--until latents` then `--resume`, stopped mid-generator by SIGTERM (through
    `python -m ldns_framework` itself) and between stages by SIGINT, then resumed to the end."""
    run = tmp_path / "run"
    assert zygote.run("train", str(spec), "--out", str(run), "--until", "latents", "--no-progress") == 0
    assert not (run / "generator").exists()
    # the resume writes data/summary.json (points 1-2), conditioner.json (3-4), the first generator
    # log line (5), then the epoch-1 checkpoint: SIGTERM at its temporary (6) stops the run after
    # the next optimiser step, mid-epoch 2, with the EMA partly updated
    resume = [sys.executable, "-m", "ldns_framework", *train_args(spec, run)]
    done = subprocess.run(resume, capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.umask(UMASK),
                          env={**os.environ, "LDNS_TEST_KILL_AT_WRITE": "6:TERM"})
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert done.stderr.strip().endswith(f"interrupted: resume with ldns train --resume --out {run}"), done.stderr
    state = json.loads((run / "generator" / "state.json").read_text())
    assert (state["complete"], state["epoch"], state["batch"]) == (False, 1, 1)

    assert zygote.run(*train_args(spec, run), env={"LDNS_TEST_KILL_AT_WRITE": "1:INT"}) == 128 + signal.SIGINT
    assert zygote.last_log.read_text().strip().endswith(f"interrupted: resume with ldns train --resume --out {run}")
    assert json.loads((run / "generator" / "state.json").read_text())["batch"] == 1  # stopped before the generator

    assert zygote.run(*train_args(spec, run)) == 0, zygote.last_log.read_text()
    assert_same_as_reference(run, reference)


def test_sigkill_at_every_write_point(zygote, spec, reference, tmp_path):
    """A fresh run killed at write point N, then resumed without interruption; N runs over every
    point with LDNS_KILL_EVERY_WRITE=1, else over every fifth from the third."""
    every = os.environ.get("LDNS_KILL_EVERY_WRITE") == "1"
    stride, point = (1, 1) if every else (5, 3)
    while True:
        run = tmp_path / f"run-{point}"
        code = zygote.run(*train_args(spec, run), env={"LDNS_TEST_KILL_AT_WRITE": str(point)})
        if code == 0:
            break  # past the last write point
        assert code == -signal.SIGKILL, zygote.last_log.read_text()
        assert zygote.run(*train_args(spec, run)) == 0, zygote.last_log.read_text()
        assert_same_as_reference(run, reference)
        point += stride
    assert point > 40  # every stage has write points; a full run has over 40


def test_a_second_resume_of_the_same_run_is_refused_while_the_first_trains(zygote, spec, reference, tmp_path):
    run = tmp_path / "run"
    assert zygote.run("train", str(spec), "--out", str(run), "--until", "data", "--no-progress") == 0
    first = zygote.start(*train_args(spec, run))
    first_log = zygote.last_log
    second = zygote.start(*train_args(spec, run))
    codes = {first_log: zygote.wait(first), zygote.last_log: zygote.wait(second)}
    assert sorted(codes.values()) == [0, 2], codes
    (refused,) = [log for log, code in codes.items() if code == 2]
    assert f"is writing this run (it holds {run}/.lock)" in refused.read_text()
    assert_same_as_reference(run, reference)
