"""Property-based fuzz of the ``ldns`` argument handling, of :class:`SpikeData` validation and of the npz loader.

Whatever goes in, what comes out is a result or one of our errors: the CLI exits 0 or 2 (one
``error:`` line), never with a traceback or an internal error; ``SpikeData`` and the ``arrays``
source raise only :class:`DataError`.

``LDNS_FUZZ_EXAMPLES`` sets the number of examples of each test (CI: a modest default;
``make fuzz``: 20000).

The CLI fuzz draws argument lists from a grammar of every command, its options and values
(valid ones, boundaries, huge numbers, garbage text, paths that are directories, files, missing
or under a file). The slow work behind a command that passed its checks is replaced by a stand-in
(training, the conformance kit's checks, the metrics, the report's figures), so that each example
tests the argument handling and the run loading; sampling and encoding run for real on a tiny run,
loaded once.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ldns_framework import DataError, SpikeData
from ldns_framework.cli import main

FUZZ_EXAMPLES = int(os.environ.get("LDNS_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

TINY_SPEC = {
    "seed": 0,
    "data": {"type": "lorenz", "n_trials": 16, "n_neurons": 4, "length": 16},
    "encoder": {"type": "s4-autoencoder", "hidden": 8, "latent_dim": 2, "blocks": 1},
    "generator": {"type": "latent-diffusion", "hidden": 8, "blocks": 1, "train_steps": 20},
    "train": {"encoder": {"epochs": 1, "batch_size": 8}, "generator": {"epochs": 1, "batch_size": 8}},
    "sample": {"steps": 2},
    "run": {"device": "cpu"},
}


# -- the CLI ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A tiny trained run, a spec, data files and odd paths; the slow stages stubbed for the module."""
    from ldns_framework.pipeline import Pipeline
    from ldns_framework.testing.core import CheckResult

    root = tmp_path_factory.mktemp("fuzz")
    spec = root / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY_SPEC))
    run = root / "run"
    assert main(["train", str(spec), "--out", str(run), "--no-progress"]) == 0
    np.savez(root / "data.npz", counts=np.ones((6, 16, 4), int))
    np.savez(root / "bad.npz", counts=np.full((2, 3, 4), 1e300))
    np.save(root / "cond.npy", np.zeros((2, 3)))
    (root / "file.txt").write_text("a user's file")
    (root / "dir").mkdir()
    (root / "dir" / "mine.txt").write_text("a user's file")
    damaged = root / "damaged"
    damaged.mkdir()
    (damaged / "spec.yaml").write_text("seed: [\n")
    paths = {"run": str(run), "spec": str(spec), "data": str(root / "data.npz"), "bad": str(root / "bad.npz"),
             "cond": str(root / "cond.npy"), "file": str(root / "file.txt"), "dir": str(root / "dir"),
             "damaged": str(damaged), "root": str(root)}
    loaded: dict[tuple[str, str | None], Pipeline] = {}
    real_load = Pipeline.load.__func__

    def cached_load(cls: type, run_dir: Any, registry: Any = None, device: str | None = None) -> Pipeline:
        key = (str(Path(run_dir).resolve()), device)
        if key not in loaded:
            loaded[key] = real_load(cls, run_dir, registry, device)
        return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # default output paths (spec-docs' docs/spec-reference.md) land in the scratch directory
        patch.setattr(Pipeline, "load", classmethod(cached_load))
        patch.setattr(Pipeline, "fit", lambda self, *args, **kwargs: self)
        patch.setattr("ldns_framework.testing.command.run_check_list",
                      lambda checks: [CheckResult(check.name, "skipped", "fuzz") for check in checks])
        patch.setattr("ldns_framework.evaluation.evaluate_run", lambda *args, **kwargs: [])
        patch.setattr("ldns_framework.report.report_run", lambda *args, **kwargs: Path(paths["root"]) / "index.html")
        yield paths


def _numbers() -> st.SearchStrategy[str]:
    """Mostly small valid counts; otherwise a boundary, a huge number or something that is no integer."""
    edge = st.sampled_from(["0", "-1", "-3", "1.5", "1e3", "1e300", "nan", "inf", "0x10", str(10**12), str(2**31),
                            str(2**63), str(2**70), "", " ", "٣", "1_0"])
    return st.one_of(st.sampled_from(["1", "2", "3"]), st.sampled_from(["1", "2"]), edge)


def _often(draw: st.DrawFn, percent: int) -> bool:
    """True in about ``percent`` % of draws (shrinking goes to the common case)."""
    common = percent >= 50
    weight = percent if common else 100 - percent
    return draw(st.sampled_from([common] * weight + [not common] * (100 - weight)))


def _garbage() -> st.SearchStrategy[str]:
    return st.text(max_size=12)


def _paths(world: dict[str, str], suffix: str) -> st.SearchStrategy[str]:
    root = world["root"]
    return st.sampled_from([f"{root}/out{suffix}", f"{root}/new/deeper/out{suffix}", world["dir"], world["file"],
                            f"{world['file']}/under{suffix}", f"{root}/nosuffix", f"{root}/out.bad", root, "-",
                            f"{root}/out{suffix.upper()}", f"{world['run']}/samples/fuzz{suffix}"])


def _value(world: dict[str, str], option: str) -> st.SearchStrategy[str]:
    """Values for an option: the kind it expects, mixed with any other kind and garbage."""
    typed = {
        "--n": _numbers(), "--length": _numbers(), "--steps": _numbers(), "--batch-size": _numbers(),
        "--seed": _numbers(), "--folds": _numbers(), "--workers": _numbers(),
        "--sampler": st.sampled_from(["dpm-solver++", "ddim", "ddpm", "euler", ""]),
        "--observation": st.sampled_from(["poisson", "spike-history", "gauss"]),
        "--split": st.sampled_from(["train", "val", "test", "all", "dev"]),
        "--against": st.sampled_from(["train", "test", "both", "val"]),
        "--protocol": st.sampled_from(["bootstrap", "matched", "full", "jackknife"]),
        "--metric": st.sampled_from(["mean-rate", "isi", "accuracy"]),
        "--until": st.sampled_from(["data", "encoder", "generator", "all"]),
        "--set": st.sampled_from(["seed=1", "seed=-1", "seed=2**70", "encoder.hidden=0", "min_rate=-1", "x",
                                  "generator.train_steps=1000000000000", "data.n_trials=1e300", "=", "a.b.c=[1"]),
        "--condition": st.sampled_from([world["cond"], world["data"], world["spec"], world["dir"], world["root"] + "/x.npy"]),
        "--data": st.sampled_from([world["data"], world["bad"], world["spec"], world["file"], world["root"] + "/x.npz"]),
        "--samples": st.sampled_from([world["data"], world["bad"], world["file"], world["root"] + "/x.npz"]),
        "--metrics": st.sampled_from([world["spec"], world["file"], world["root"] + "/m.json"]),
        "--extra": st.sampled_from([f"x={world['data']}", "x", "=", f"y={world['file']}"]),
        "--spec": st.sampled_from([world["spec"], world["file"], world["root"] + "/no.yaml"]),
        "--disable-plugin": st.sampled_from(["arrays", "lorenz", "nope"]),
    }
    if option == "--out":
        return st.one_of(_paths(world, ".npz"), _paths(world, ".json"), _paths(world, ".md"),
                         st.sampled_from([world["run"], world["root"] + "/fresh", world["dir"]]))
    return st.one_of(typed.get(option, _garbage()), typed.get(option, _garbage()), typed.get(option, _garbage()),
                     _garbage())


COMMANDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    # name: (positionals, options taking a value, flags)
    "plugins": ([], [], ["--json", "--verbose"]),
    "validate": (["spec"], ["--set"], []),
    "data": (["spec"], ["--set"], ["--json"]),
    "train": (["spec"], ["--out", "--until", "--set"], ["--resume", "--no-progress"]),
    "encode": (["run"], ["--split", "--data", "--out"], []),
    "sample": (["run"], ["--n", "--length", "--condition", "--sampler", "--steps", "--seed", "--observation",
                         "--batch-size", "--out"], ["--no-progress"]),
    "evaluate": (["run"], ["--samples", "--against", "--folds", "--protocol", "--metric", "--seed", "--workers",
                           "--out"], ["--no-progress"]),
    "report": (["run"], ["--samples", "--metrics", "--extra", "--split"], []),
    "check": (["kind", "name"], ["--set"], ["--no-progress"]),
    "demo": ([], ["--out", "--spec", "--set"], ["--no-progress"]),
    "spec-docs": ([], ["--out"], ["--all"]),
}


@st.composite
def argv(draw: st.DrawFn, world: dict[str, str]) -> list[str]:
    """Mostly well-formed command lines with odd values; now and then a broken structure."""
    command = draw(st.sampled_from(list(COMMANDS))) if _often(draw, 95) else draw(st.sampled_from(["trian", ""]))
    positionals, options, flags = COMMANDS.get(command, ([], [], []))
    args = [command]
    pools = {"spec": [world["spec"], world["spec"], world["file"], world["dir"], world["root"] + "/no.yaml"],
             "run": [world["run"], world["run"], world["run"], world["damaged"], world["dir"], world["file"]],
             "kind": ["observation", "metric", "conditioner", "observer"],
             "name": ["poisson", "mean-rate", "none", "poison"]}
    for name in positionals:
        if _often(draw, 95):  # now and then a positional is missing or garbage
            args.append(draw(st.sampled_from(pools[name])) if _often(draw, 90) else draw(_garbage()))
    for option in draw(st.lists(st.sampled_from(options), max_size=4)) if options else []:
        args += [option, draw(_value(world, option))] if _often(draw, 97) else [option]
    args += draw(st.lists(st.sampled_from(flags), max_size=2)) if flags else []
    if _often(draw, 5):
        args.append(draw(st.sampled_from(["--bogus", "-x", "extra"])))
    if command == "train" and "--until" not in args:  # a full training run is the matrix's business
        args += ["--until", "data"]
    if command == "sample" and "--n" not in args:
        args += ["--n", draw(_numbers())]
    if command in ("sample", "encode") and "--out" not in args:
        args += ["--out", draw(_paths(world, ".npz"))]
    if _often(draw, 5):
        args.insert(0, draw(st.sampled_from(["--debugging", "--strict-plugins", "--disable-plugin=nope"])))
    return args


@pytest.mark.filterwarnings("ignore")
def test_cli_arguments_end_in_a_result_or_one_error_line(world):
    @FUZZ
    @given(st.data())
    def check(data: st.DataObject) -> None:
        args = data.draw(argv(world))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        text = err.getvalue()
        assert code in (0, 2), (args, code, text)
        assert "Traceback" not in text and "internal error" not in text, (args, text)
        if code == 2:
            errors = [line for line in text.splitlines() if line.startswith("error: ")]
            assert len(errors) >= 1, (args, text)
            assert all(len(line) <= 1000 for line in errors), (args, text)

    check()


# -- SpikeData --------------------------------------------------------------------------------------

DTYPES = ["int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32", "float64", "complex64",
          "bool", "object", "<U3", "S2", "datetime64[s]", ">i4", ">f8"]
SPECIAL = [0, 1, 2, -1, 0.5, 1e300, -1e300, float("nan"), float("inf"), 2**31, 2**40, 2**63 - 1]


@st.composite
def arrays(draw: st.DrawFn, max_dims: int = 4) -> np.ndarray:
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=max_dims)))
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(st.lists(st.sampled_from(SPECIAL), min_size=1, max_size=4))
    flat = [values[i % len(values)] for i in range(int(np.prod(shape)))]
    with np.errstate(all="ignore"):
        try:
            return np.array(flat, dtype=object).astype(dtype).reshape(shape)
        except (ValueError, TypeError, OverflowError):
            return np.zeros(shape, dtype=dtype)


def junk() -> st.SearchStrategy[Any]:
    return st.one_of(arrays(2), st.none(), st.integers(), st.floats(), st.text(max_size=5),
                     st.lists(st.integers(-2, 5), max_size=5), st.dictionaries(st.text(max_size=3), arrays(3), max_size=2))


@FUZZ
@given(counts=st.one_of(arrays(), junk()), kwargs=st.dictionaries(
    st.sampled_from(["lengths", "covariates", "bin_width_s", "neuron_ids", "splits", "metadata"]), junk(), max_size=3))
def test_spike_data_accepts_or_raises_data_error(counts, kwargs):
    try:
        data = SpikeData(counts, **kwargs)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert data.counts.ndim == 3 and data.counts.dtype in (np.int32, np.int64)


# -- the npz loader ---------------------------------------------------------------------------------

KEYS = ["counts", "lengths", "bin_width_s", "covariate/x", "split/train", "split/test", "other"]


def _load(path: Path, layout: str = "trials time neurons") -> None:
    """The arrays source and the samples reader take the file, or raise one line naming it."""
    from ldns_framework.io.samples import read_samples
    from ldns_plugins.arrays.source import ArraysConfig, ArraysSource

    for read in (lambda: ArraysSource(ArraysConfig(path=str(path), layout=layout)).load(), lambda: read_samples(path)):
        try:
            result = read()
        except DataError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        else:
            assert result.counts.ndim == 3


@FUZZ
@given(contents=st.dictionaries(st.sampled_from(KEYS), arrays(), max_size=5), compressed=st.booleans(),
       layout=st.sampled_from(["trials time neurons", "neurons trials time"]))
def test_npz_files_of_any_arrays_load_or_raise_data_error(tmp_path_factory, contents, compressed, layout):
    path = tmp_path_factory.mktemp("npz") / "x.npz"
    save = np.savez_compressed if compressed else np.savez
    with open(path, "wb") as handle:
        save(handle, allow_pickle=True, **contents)
    _load(path, layout)


def _valid_npz(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buffer, counts=np.ones((4, 5, 3), np.int64), lengths=np.array([5, 4, 3, 2]), bin_width_s=np.array(0.01),
         **{"covariate/x": np.zeros((4, 2)), "split/train": np.array([0, 1, 2])})
    return buffer.getvalue()


@FUZZ
@given(compressed=st.booleans(), edits=st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert"]),
                                                          st.floats(0, 1), st.binary(min_size=1, max_size=8)),
                                                min_size=1, max_size=3))
@example(compressed=True, edits=[("flip", 0.0625, b"\x00")])  # corrupt deflate data in the counts' header
def test_damaged_npz_bytes_load_or_raise_data_error(tmp_path_factory, compressed, edits):
    raw = bytearray(_valid_npz(compressed))
    for kind, where, data in edits:
        at = int(where * (len(raw) - 1))
        if kind == "flip":
            raw[at:at + len(data)] = data
        elif kind == "cut":
            del raw[at:]
        else:
            raw[at:at] = data
    path = tmp_path_factory.mktemp("npz") / "x.npz"
    path.write_bytes(bytes(raw))
    _load(path)


def test_a_zip_member_declaring_more_than_it_holds_is_refused(tmp_path):
    """A member whose .npy header declares a larger array than its bytes: refused as truncated, unread."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**30,)})
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("counts.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(DataError, match=r"counts: declares shape \(1073741824,\) float64 \(8.0 GiB\) but holds only"):
        _load_strict(path)


def _load_strict(path: Path) -> None:
    from ldns_plugins.arrays.source import ArraysConfig, ArraysSource

    ArraysSource(ArraysConfig(path=str(path))).load()
