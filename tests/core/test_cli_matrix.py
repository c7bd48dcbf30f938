"""Every ``ldns`` command: its success path, and its bad inputs as one-line errors with exit status 2.

One tiny run (Lorenz, hidden 16, one epoch per stage) is trained once for the module and
shared; tests that damage a run work on a copy. A bad input must give exactly one stderr line
``error: <option, file or key>: <what was expected>``: never a traceback, never an internal
error, and nothing written where the output was asked for.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

from ldns_framework.cli import main

TINY_SPEC = {
    "seed": 0,
    "data": {"type": "lorenz", "n_trials": 24, "n_neurons": 6, "length": 32},
    "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 2, "blocks": 1},
    "generator": {"type": "latent-diffusion", "hidden": 16, "blocks": 1},
    "train": {"encoder": {"epochs": 1, "batch_size": 8}, "generator": {"epochs": 1, "batch_size": 8}},
    "sample": {"steps": 2},
    "run": {"device": "cpu"},
}


class Ctx:
    """Paths the cases refer to: the shared run, the tiny spec, and a user's file and directory."""

    def __init__(self, root: Path, run: Path, spec: Path) -> None:
        self.root, self.run, self.spec = root, run, spec
        self.user_file = root / "notes.txt"
        self.user_dir = root / "mine"

    def npz(self, name: str, **arrays: object) -> Path:
        """A data spec reading an .npz file holding ``arrays``."""
        path = self.root / f"{name}.npz"
        np.savez(path, **arrays)
        return self.data_spec(path)

    def data_spec(self, data_path: Path) -> Path:
        spec = self.root / f"{data_path.stem}.yaml"
        spec.write_text(yaml.safe_dump({"data": {"type": "arrays", "path": str(data_path)}, "generator": None}))
        return spec


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Ctx:
    root = tmp_path_factory.mktemp("matrix")
    spec = root / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    run = root / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress"]) == 0
    assert main(["sample", str(run), "--n", "6", "--out", str(run / "samples" / "s.npz"), "--no-progress"]) == 0
    return Ctx(root, run, spec)


@pytest.fixture
def ctx(shared: Ctx, tmp_path: Path) -> Ctx:
    """The shared run and spec, with a fresh scratch directory holding a user's file and directory."""
    here = Ctx(tmp_path, shared.run, shared.spec)
    here.user_file.write_text("the user's own file")
    here.user_dir.mkdir()
    (here.user_dir / "log.jsonl").write_text("the user's log\n")
    return here


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> str:
    """Run ``ldns argv``: exit 2 and exactly one stderr line ``error: ...`` matching ``expected``."""
    code = main(argv)
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in err
    assert re.search(expected, lines[0]), lines[0]
    return lines[0]


def succeeds(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "error" not in err
    return out


# -- success paths ------------------------------------------------------------------------------

def test_plugins_and_validate_and_data_succeed(capsys, ctx):
    assert "poisson" in succeeds(capsys, ["plugins"])
    assert json.loads(succeeds(capsys, ["plugins", "--json"]))["components"]
    assert yaml.safe_load(succeeds(capsys, ["validate", str(ctx.spec), "--set", "seed=3"]))["seed"] == 3
    assert json.loads(succeeds(capsys, ["data", str(ctx.spec), "--json"]))["neurons"] == 6


def test_train_resume_and_until(capsys, ctx):
    run = ctx.root / "fresh"
    assert "run directory" in succeeds(capsys, ["train", str(ctx.spec), "--out", str(run), "--until", "data",
                                                "--no-progress"])
    assert (run / "data" / "summary.json").is_file() and not (run / "encoder").exists()
    empty = ctx.root / "empty"
    empty.mkdir()
    succeeds(capsys, ["train", str(ctx.spec), "--out", str(empty), "--until", "data", "--no-progress"])
    succeeds(capsys, ["train", "--resume", "--out", str(run), "--until", "data", "--no-progress"])


def test_encode_sample_evaluate(capsys, ctx):
    """(report and demo succeed in test_cli.py, on toy components: their figures are the slow part)"""
    out = succeeds(capsys, ["encode", str(ctx.run), "--split", "all", "--out", str(ctx.root / "e.npz")])
    assert "24 trials" in out and (ctx.root / "e.npz").is_file()
    samples = ctx.root / "deep" / "s.npz"  # missing directories are created
    out = succeeds(capsys, ["sample", str(ctx.run), "--n", "3", "--length", "20", "--batch-size", "2", "--steps", "2",
                            "--seed", "5", "--out", str(samples), "--no-progress"])
    assert "3 trials x 20 bins x 6 neurons" in out
    out = succeeds(capsys, ["sample", str(ctx.run), "--n", "2", "--sampler", "ddim", "--steps", "2", "--eta", "1",
                            "--out", str(ctx.root / "ddim.npz"), "--no-progress"])
    assert "2 trials" in out and "eta=1.0" in out
    out = succeeds(capsys, ["sample", str(ctx.run), "--n", "2", "--sampler", "dpm-solver++", "--steps", "3", "--sde",
                            "--out", str(ctx.root / "sde.npz"), "--no-progress"])
    assert "2 trials" in out and "sde=True" in out
    metrics = ctx.root / "m.json"
    out = succeeds(capsys, ["evaluate", str(ctx.run), "--samples", str(samples), "--metric", "mean-rate",
                            "--folds", "2", "--workers", "1", "--out", str(metrics), "--no-progress"])
    assert "mean_rate" in out and json.loads(metrics.read_text())["records"]


def test_sample_of_length_one(capsys, ctx):
    """The shortest trial there is: one bin (the generator normalises over time)."""
    out = succeeds(capsys, ["sample", str(ctx.run), "--n", "2", "--length", "1", "--out", str(ctx.root / "one.npz"),
                            "--no-progress"])
    assert "2 trials x 1 bins" in out


def test_check_runs_the_kit(capsys):
    out = succeeds(capsys, ["check", "metric", "mean-rate", "--no-progress"])
    assert "0 failed" in out


def test_spec_docs_to_stdout_and_to_a_file(capsys, ctx):
    assert "# " in succeeds(capsys, ["spec-docs", "--out", "-"])
    succeeds(capsys, ["spec-docs", "--out", str(ctx.root / "ref.md")])
    assert (ctx.root / "ref.md").read_text().startswith("#")


# -- bad inputs: exit 2, one line ------------------------------------------------------------------

Case = Callable[[Ctx], list[str]]
R = "{run}"

CASES: dict[str, tuple[Case, str]] = {
    # parsing
    "no command": (lambda c: [], "COMMAND"),
    "unknown command": (lambda c: ["trian"], "COMMAND: invalid choice: 'trian'"),
    "unknown option": (lambda c: ["plugins", "--colour"], "unrecognized arguments: --colour"),
    "option without value": (lambda c: ["--disable-plugin"], "--disable-plugin: expected one argument"),
    # validate
    "spec missing": (lambda c: ["validate", str(c.root / "no.yaml")], "no.yaml: spec file not found"),
    "spec is a directory": (lambda c: ["validate", str(c.root)], "expected a spec file, found a directory"),
    "spec not UTF-8": (lambda c: ["validate", str(_write(c.root / "s.yaml", b"seed: \xff\n"))], "s.yaml: .*UTF-8"),
    "spec bad YAML": (lambda c: ["validate", str(_write(c.root / "s.yaml", b"seed: [1,\n"))], "s.yaml"),
    "spec unknown key": (lambda c: ["validate", str(c.spec), "--set", "encoder.hiden=3"], "encoder.hiden: unknown key"),
    "override without =": (lambda c: ["validate", str(c.spec), "--set", "seed"], "seed"),
    # data files
    "npz missing": (lambda c: ["data", str(c.data_spec(c.root / "gone.npz"))], "gone.npz: file not found"),
    "npz empty archive": (lambda c: ["data", str(c.npz("none"))], "none.npz: missing array 'counts'; found: nothing"),
    "npz zero bytes": (lambda c: ["data", str(c.data_spec(_write(c.root / "z.npz", b"")))],
                       "z.npz: expected a NumPy .npz archive"),
    "npz is text": (lambda c: ["data", str(c.data_spec(_write(c.root / "t.npz", b"hello")))],
                    "t.npz: expected a NumPy .npz archive"),
    "counts 1e300": (lambda c: ["data", str(c.npz("big", counts=np.full((2, 3, 4), 1e300)))],
                     r"big.npz: counts: expected counts of at most 2147483647 .* found 1e\+300"),
    "counts complex": (lambda c: ["data", str(c.npz("cx", counts=np.ones((2, 3, 4), complex)))],
                       "cx.npz: counts: expected integer spike counts .* complex128"),
    "counts bool": (lambda c: ["data", str(c.npz("b", counts=np.ones((2, 3, 4), bool)))], "b.npz: counts: .* bool"),
    "counts object": (lambda c: ["data", str(c.npz("o", counts=np.array([None, 1], dtype=object)))],
                      "o.npz: counts: expected a plain numeric or text array, got dtype object"),
    "counts strings": (lambda c: ["data", str(c.npz("s", counts=np.full((2, 3, 4), "x")))], "s.npz: counts: .*<U1"),
    "bin width array": (lambda c: ["data", str(c.npz("w", counts=np.ones((2, 3, 4), int), bin_width_s=np.ones(2)))],
                        "w.npz: bin_width_s: expected a single number"),
    "lengths text": (lambda c: ["data", str(c.npz("l", counts=np.ones((2, 3, 4), int), lengths=np.array(["a", "b"])))],
                     "l.npz: lengths: expected integer lengths"),
    # train
    "train no spec": (lambda c: ["train", "--out", str(c.root / "r")], "give a SPEC, or --resume"),
    "train resume non-run": (lambda c: ["train", "--resume", "--out", str(c.root / "r")], "not a run directory"),
    "train out is a file": (lambda c: ["train", str(c.spec), "--out", str(c.user_file)], "--out: .*notes.txt is a file"),
    "train out under a file": (lambda c: ["train", str(c.spec), "--out", str(c.user_file / "r")],
                               "--out: .*notes.txt is a file, not a directory"),
    "train out a user's directory": (lambda c: ["train", str(c.spec), "--out", str(c.user_dir)],
                                     "--out: .*mine is a non-empty directory that is not a run directory"),
    "train until unknown": (lambda c: ["train", str(c.spec), "--out", str(c.root / "r"), "--until", "all"],
                            "--until: invalid choice: 'all'"),
    "train over a run": (lambda c: ["train", str(c.spec), "--out", str(c.run), "--no-progress"], "--resume"),
    "train bad override": (lambda c: ["train", str(c.spec), "--out", str(c.root / "r"), "--set",
                                      "train.encoder.batch_size=-1"], "train.encoder.batch_size"),
    # encode
    "encode out without suffix": (lambda c: ["encode", R, "--out", str(c.root / "o" / "e10")],
                                  "--out: expected a file name ending in .npz or .nwb, got 'e10'"),
    "encode out a directory": (lambda c: ["encode", R, "--out", str(c.root)], "--out: .* is a directory"),
    "encode out under a file": (lambda c: ["encode", R, "--out", str(c.user_file / "e.npz")], "is a file, not a directory"),
    "encode unknown split": (lambda c: ["encode", R, "--split", "dev", "--out", str(c.root / "e.npz")],
                             "--split: invalid choice: 'dev'"),
    "encode not a run": (lambda c: ["encode", str(c.root), "--out", str(c.root / "e.npz")], "not a run directory"),
    "encode data missing": (lambda c: ["encode", R, "--data", str(c.root / "x.npz"), "--out", str(c.root / "e.npz")],
                            "x.npz: file not found"),
    "encode data spec without data": (lambda c: ["encode", R, "--data", str(_write(c.root / "d.yaml", b"seed: 1\n")),
                                                 "--out", str(c.root / "e.npz")], "expected a spec with a data section"),
    # sample
    "n zero": (lambda c: ["sample", R, "--n", "0", "--out", str(c.root / "s.npz")], "--n: expected an integer >= 1, got '0'"),
    "n negative": (lambda c: ["sample", R, "--n", "-5", "--out", str(c.root / "s.npz")], "--n: expected an integer >= 1"),
    "n not a number": (lambda c: ["sample", R, "--n", "ten", "--out", str(c.root / "s.npz")], "--n: .* got 'ten'"),
    "n float": (lambda c: ["sample", R, "--n", "1e3", "--out", str(c.root / "s.npz")], "--n: .* got '1e3'"),
    "n 10**12": (lambda c: ["sample", R, "--n", str(10**12), "--out", str(c.root / "s.npz"), "--no-progress"],
                 "--n: --n 1000000000000 x --length 32 .* more than the limit of"),
    "length zero": (lambda c: ["sample", R, "--n", "2", "--length", "0", "--out", str(c.root / "s.npz")],
                    "--length: expected an integer >= 1, got '0'"),
    "length 10**12": (lambda c: ["sample", R, "--n", "2", "--length", str(10**12), "--out", str(c.root / "s.npz"),
                                 "--no-progress"], "--length: .* more than the limit of"),
    "steps zero": (lambda c: ["sample", R, "--n", "2", "--steps", "0", "--out", str(c.root / "s.npz")],
                   "--steps: expected an integer >= 1, got '0'"),
    "steps negative": (lambda c: ["sample", R, "--n", "2", "--steps", "-1", "--out", str(c.root / "s.npz")], "--steps"),
    "batch size zero": (lambda c: ["sample", R, "--n", "2", "--batch-size", "0", "--out", str(c.root / "s.npz")],
                        "--batch-size: expected an integer >= 1, got '0'"),
    "batch size negative": (lambda c: ["sample", R, "--n", "2", "--batch-size", "-3", "--out", str(c.root / "s.npz")],
                            "--batch-size: expected an integer >= 1, got '-3'"),
    "seed negative": (lambda c: ["sample", R, "--n", "2", "--seed", "-1", "--out", str(c.root / "s.npz")],
                      r"--seed: expected a seed in \[0, 4294967295\]"),
    "seed 2**70": (lambda c: ["sample", R, "--n", "2", "--seed", str(2**70), "--out", str(c.root / "s.npz")], "--seed"),
    "sampler unknown": (lambda c: ["sample", R, "--n", "2", "--sampler", "euler", "--out", str(c.root / "s.npz"),
                                   "--no-progress"], "--sampler: generator 'latent-diffusion' has no sampler 'euler'"),
    "steps for a sampler without": (lambda c: ["sample", R, "--n", "2", "--sampler", "ddpm", "--steps", "3",
                                               "--out", str(c.root / "s.npz"), "--no-progress"],
                                    "--steps: sampler 'ddpm' .* takes no steps option"),
    "eta for a sampler without": (lambda c: ["sample", R, "--n", "2", "--sampler", "dpm-solver++", "--eta", "1",
                                             "--out", str(c.root / "s.npz"), "--no-progress"],
                                  r"--eta: sampler 'dpm-solver\+\+' .* takes no eta option"),
    "sde for a sampler without": (lambda c: ["sample", R, "--n", "2", "--sampler", "ddim", "--sde",
                                             "--out", str(c.root / "s.npz"), "--no-progress"],
                                  "--sde: sampler 'ddim' .* takes no sde option"),
    "eta above one": (lambda c: ["sample", R, "--n", "2", "--sampler", "ddim", "--eta", "1.5",
                                 "--out", str(c.root / "s.npz"), "--no-progress"], "eta: expected .*<= 1"),
    "eta nan": (lambda c: ["sample", R, "--n", "2", "--sampler", "ddim", "--eta", "nan",
                           "--out", str(c.root / "s.npz"), "--no-progress"], "eta"),
    "observation unknown": (lambda c: ["sample", R, "--n", "2", "--observation", "gauss", "--out", str(c.root / "s.npz"),
                                       "--no-progress"], "--observation"),
    "sample out a directory": (lambda c: ["sample", R, "--n", "2", "--out", str(c.root)], "--out: .* is a directory"),
    "sample out without suffix": (lambda c: ["sample", R, "--n", "2", "--out", str(c.root / "e10")],
                                  "--out: expected a file name ending in .npz"),
    "sample out under a file": (lambda c: ["sample", R, "--n", "2", "--out", str(c.user_file / "s.npz")],
                                "is a file, not a directory"),
    "condition missing": (lambda c: ["sample", R, "--n", "2", "--condition", str(c.root / "c.npy"),
                                     "--out", str(c.root / "s.npz")], "c.npy: file not found"),
    "condition wrong suffix": (lambda c: ["sample", R, "--n", "2", "--condition", str(c.spec),
                                          "--out", str(c.root / "s.npz")], "--condition: expected a .npy or .npz file"),
    "condition key missing": (lambda c: ["sample", R, "--n", "2", "--condition", str(_npz(c.root / "c.npz", x=np.ones(2))),
                                         "--out", str(c.root / "s.npz")], "c.npz: missing array 'condition'; found: x"),
    "condition text": (lambda c: ["sample", R, "--n", "2", "--condition", str(_npy(c.root / "c.npy", np.array(["a"]))),
                                  "--out", str(c.root / "s.npz")], "--condition: .* expected a real numeric array"),
    "run not a run": (lambda c: ["sample", str(c.root), "--n", "2", "--out", str(c.root / "s.npz")], "not a run directory"),
    # evaluate
    "folds zero": (lambda c: ["evaluate", R, "--folds", "0"], r"--folds: expected an integer in \[1, 1000\]"),
    "folds huge": (lambda c: ["evaluate", R, "--folds", str(10**9)], "--folds"),
    "workers zero": (lambda c: ["evaluate", R, "--workers", "0"], "--workers: expected an integer in"),
    "evaluate seed negative": (lambda c: ["evaluate", R, "--seed", "-2"], "--seed"),
    "evaluate out .txt": (lambda c: ["evaluate", R, "--out", str(c.root / "m.txt")], "--out: expected a file name ending in .json"),
    "evaluate samples missing": (lambda c: ["evaluate", R, "--samples", str(c.root / "x.npz"), "--no-progress",
                                            "--out", str(c.root / "m.json")], "x.npz: file not found"),
    "evaluate samples not npz": (lambda c: ["evaluate", R, "--samples", str(c.user_file), "--no-progress",
                                            "--out", str(c.root / "m.json")], "notes.txt: expected a NumPy .npz archive"),
    "metric unknown": (lambda c: ["evaluate", R, "--metric", "accuracy", "--no-progress",
                                  "--out", str(c.root / "m.json")], "accuracy"),
    "against unknown": (lambda c: ["evaluate", R, "--against", "val"], "--against: invalid choice: 'val'"),
    "protocol unknown": (lambda c: ["evaluate", R, "--protocol", "jackknife"], "--protocol: invalid choice"),
    # report
    "report split unknown": (lambda c: ["report", R, "--split", "dev"], "--split: expected a split of the run's data"),
    "report extra without =": (lambda c: ["report", R, "--extra", "more"], "--extra: expected NAME=FILE, got 'more'"),
    "report extra missing": (lambda c: ["report", R, "--extra", f"more={c.root / 'x.npz'}"], "x.npz: file not found"),
    "report samples missing": (lambda c: ["report", R, "--samples", str(c.root / "x.npz")], "x.npz: file not found"),
    "report metrics missing": (lambda c: ["report", R, "--metrics", str(c.root / "m.json")], "m.json: no such metrics file"),
    # check
    "check kind unknown": (lambda c: ["check", "observer", "poisson"], "kind: invalid choice: 'observer'"),
    "check name unknown": (lambda c: ["check", "observation", "poison"], "did you mean 'poisson'"),
    "check option out of range": (lambda c: ["check", "observation", "poisson", "--set", "min_rate=-1"],
                                  "observation.min_rate: expected float > 0, got -1.0"),
    "check option unknown": (lambda c: ["check", "observation", "poisson", "--set", "min_rat=1"], "observation.min_rat"),
    "check type set": (lambda c: ["check", "observation", "poisson", "--set", "type=x"], "--set type"),
    # demo
    "demo out a file": (lambda c: ["demo", "--out", str(c.user_file)], "--out: .*notes.txt is a file"),
    "demo out a user's directory": (lambda c: ["demo", "--out", str(c.user_dir)], "is a non-empty directory"),
    "demo spec missing": (lambda c: ["demo", "--out", str(c.root / "d"), "--spec", str(c.root / "no.yaml")],
                          "no.yaml: demo spec not found"),
    # spec-docs
    "spec-docs out a directory": (lambda c: ["spec-docs", "--out", str(c.root)], "--out: .* is a directory"),
    "spec-docs out .txt": (lambda c: ["spec-docs", "--out", str(c.root / "ref.txt")], "ending in .md"),
    "spec-docs out under a file": (lambda c: ["spec-docs", "--out", str(c.user_file / "r.md")], "is a file"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(capsys, ctx, case):
    build, expected = CASES[case]
    argv = [str(ctx.run) if a == R else a for a in build(ctx)]
    before = snapshot(ctx.root), snapshot(ctx.run)
    capsys.readouterr()
    fails(capsys, argv, expected)
    after_root = snapshot(ctx.root)
    assert {k: v for k, v in after_root.items() if k in before[0]} == before[0]  # no user file touched
    assert not set(after_root) - set(before[0]), "an output was written"
    assert snapshot(ctx.run) == before[1]


RUN_FILES = ["spec.yaml", "environment.json", "data/summary.json", "encoder/state.json", "observation/state.json",
             "generator/state.json", "latent_stats.json", "conditioner.json"]


@pytest.mark.parametrize("name", RUN_FILES)
@pytest.mark.parametrize("content", [b"{garbage\xff", b"[1, 2]"], ids=["garbage", "wrong type"])
def test_a_damaged_run_file_is_named(capsys, ctx, name, content):
    run = ctx.root / "damaged"
    shutil.copytree(ctx.run, run)
    (run / name).write_bytes(content)
    for argv in (["sample", str(run), "--n", "2", "--out", str(ctx.root / "s.npz"), "--no-progress"],
                 ["encode", str(run), "--out", str(ctx.root / "e.npz")]):
        fails(capsys, argv, re.escape(str(run / name)))
    assert not (ctx.root / "s.npz").exists() and not (ctx.root / "e.npz").exists()


def test_a_user_directory_is_left_untouched(capsys, ctx):
    before = snapshot(ctx.user_dir)
    for argv in (["train", str(ctx.spec), "--out", str(ctx.user_dir)], ["demo", "--out", str(ctx.user_dir)]):
        fails(capsys, argv, "not a run directory")
    assert snapshot(ctx.user_dir) == before
