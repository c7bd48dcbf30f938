"""Lazy loading: counts left in their .npz/.npy file, read per batch, equal to the eager path,
with memory bounded by a batch (a child process trains on a file three times its memory cap)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from ldns_plugins.arrays.source import ArraysConfig, ArraysSource

from ldns_framework import DataError
from ldns_framework.cli import main
from ldns_framework.io.lazy import LazyCounts, open_counts
from ldns_framework.pipeline import Pipeline
from ldns_framework.runner import CountRows
from ldns_framework.training import Interrupted


def _counts(shape=(12, 5, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(1.0, shape).astype(np.int32)


def _tiny_spec(path, lazy) -> dict:
    return {"seed": 0, "data": {"type": "arrays", "path": str(path), "lazy": lazy},
            "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1},
            "generator": None, "train": {"encoder": {"epochs": 2, "batch_size": 8}},
            "run": {"device": "cpu", "num_threads": 1}}


@pytest.mark.parametrize("key", [
    3, -1, slice(2, 9, 3), np.array([7, 2, 2, 11]), torch.tensor([5, 0, 9]), (4, slice(1, 3)),
    (np.array([8, 1]), slice(None), 2), np.arange(12) % 3 == 0, np.array([], dtype=np.int64),
    np.arange(60).reshape(12, 5) % 4 == 0,  # a (trials, time) mask: loads every trial, then indexes
])
def test_indexing_reads_what_the_array_holds_in_the_order_asked(tmp_path, key):
    counts = _counts()
    np.save(tmp_path / "c.npy", counts)
    lazy = open_counts(tmp_path / "c.npy")
    index = key.numpy() if isinstance(key, torch.Tensor) else key
    np.testing.assert_array_equal(lazy[key], counts[index])


def test_views_compose_and_reorder_layout_dtype_and_byte_order(tmp_path):
    counts = _counts((10, 4, 6))  # (trials, time, neurons)
    np.savez(tmp_path / "x.npz", counts=counts.transpose(0, 2, 1).astype(">f8"))  # big-endian floats, neurons first
    lazy = open_counts(tmp_path / "x.npz", "counts", layout="trials neurons time").astype(np.int32)
    assert isinstance(lazy, LazyCounts) and lazy.shape == (10, 4, 6) and lazy.dtype == np.int32
    part = lazy.take([9, 3, 5, 0]).take([2, 0])  # trials 5, 9
    np.testing.assert_array_equal(part[:], counts[[5, 9]])
    np.testing.assert_array_equal(np.asarray(part), counts[[5, 9]])


def test_a_lazy_source_validates_in_blocks_and_its_splits_stay_in_the_file(tmp_path, monkeypatch):
    counts = _counts((40, 6, 3))
    np.savez(tmp_path / "x.npz", counts=counts, lengths=np.full(40, 6), bin_width_s=0.01)
    reads = []
    original = LazyCounts._read
    monkeypatch.setattr(LazyCounts, "_read", lambda self, index: reads.append(index.size) or original(self, index))
    monkeypatch.setattr("ldns_framework.data._BLOCK", 5 * 18)  # 5 trials per validation block
    data = ArraysSource(ArraysConfig(path=str(tmp_path / "x.npz"), lazy=True)).load()
    assert data.lazy and data.bin_width_s == 0.01 and reads == [5] * 8  # one pass, in blocks
    eager = ArraysSource(ArraysConfig(path=str(tmp_path / "x.npz"), lazy=False)).load()
    reads.clear()
    train = data.split("train")
    assert train.lazy and reads == []  # a subset of checked counts is an index, not read again
    np.testing.assert_array_equal(train.counts[:], eager.split("train").counts)
    assert data.summary() == eager.summary()
    np.testing.assert_array_equal(data.in_memory().counts, counts)


def test_fractional_counts_are_refused_lazily_too(tmp_path):
    np.save(tmp_path / "c.npy", np.full((3, 4, 2), 0.5))
    with pytest.raises(DataError, match=r"c.npy: counts: expected integer-valued counts, found fractional values$"):
        ArraysSource(ArraysConfig(path=str(tmp_path / "c.npy"), lazy=True)).load()


@pytest.mark.parametrize("limit_mb, lazy", [(1, True), (2, False)])
def test_null_lazy_means_lazy_above_the_memory_limit(tmp_path, limit_mb, lazy):
    np.savez(tmp_path / "x.npz", counts=np.zeros((100, 64, 64), np.int32))  # 1.56 MiB
    data = ArraysSource(ArraysConfig(path=str(tmp_path / "x.npz"), memory_limit_mb=limit_mb)).load()
    assert data.lazy is lazy


def test_eager_loading_above_the_limit_is_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((100, 64, 64), np.int32))
    with pytest.raises(DataError, match=r"c.npy: declares shape \(100, 64, 64\) int32 \(1.6 MiB\), more than the 1.0 MiB"):
        ArraysSource(ArraysConfig(path=str(tmp_path / "c.npy"), lazy=False, memory_limit_mb=1)).load()


@pytest.mark.parametrize("write, layout, expected", [
    (lambda p, c: np.savez_compressed(p, counts=c), "trials time neurons",
     ("counts: is compressed, so it cannot be read in place for lazy loading; re-save the file with np.savez "
      "instead of np.savez_compressed, or set lazy: false")),
    (lambda p, c: np.savez(p, counts=c), "time trials neurons",
     "counts: layout: lazy loading reads trial by trial, so trials must be the first stored axis"),
    (lambda p, c: np.savez(p, counts=np.asfortranarray(c)), "trials time neurons",
     "counts: stored in Fortran order, which cannot be read trial by trial; re-save it with np.ascontiguousarray"),
])
def test_what_cannot_be_read_lazily_is_refused_in_one_line_exit_2(tmp_path, capsys, write, layout, expected):
    path = tmp_path / "x.npz"
    write(path, _counts())
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"data": {"type": "arrays", "path": str(path), "lazy": True, "layout": layout},
                                    "generator": None}))
    assert main(["data", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {expected}") and err.count("\n") == 1


def test_lazy_training_gives_the_eager_weights(tmp_path):
    np.savez(tmp_path / "x.npz", counts=np.random.default_rng(0).poisson(0.3, (40, 32, 8)).astype(np.int32))
    weights = []
    for lazy in (False, True):
        pipeline = Pipeline.from_spec(_tiny_spec(tmp_path / "x.npz", lazy)).fit(run_dir=tmp_path / f"run-{lazy}",
                                                                               progress=False)
        assert pipeline.load_data().lazy is lazy
        weights.append(pipeline.encoder.state_dict())
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_lazy_run_stopped_mid_epoch_resumes_to_the_eager_weights(tmp_path, monkeypatch):
    """SIGINT while a batch is read (epoch 1, batch 3 of 4): the step completes, a checkpoint is
    committed, and the resumed lazy run ends on the weights of an uninterrupted eager run."""
    np.savez(tmp_path / "x.npz", counts=np.random.default_rng(0).poisson(0.3, (40, 32, 8)).astype(np.int32))
    straight = Pipeline.from_spec(_tiny_spec(tmp_path / "x.npz", False)).fit(run_dir=tmp_path / "straight",
                                                                            progress=False).encoder.state_dict()
    reads, read = [], CountRows.__getitem__

    def interrupting(self, index):
        reads.append(len(index))
        if len(reads) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: sets the stop flag
        return read(self, index)

    monkeypatch.setattr(CountRows, "__getitem__", interrupting)
    with pytest.raises(Interrupted):
        Pipeline.from_spec(_tiny_spec(tmp_path / "x.npz", True)).fit(run_dir=tmp_path / "lazy", progress=False)
    state = json.loads((tmp_path / "lazy" / "encoder" / "state.json").read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (0, 3, 3)
    monkeypatch.setattr(CountRows, "__getitem__", read)
    resumed = Pipeline.from_spec(_tiny_spec(tmp_path / "x.npz", True)).fit(run_dir=tmp_path / "lazy", resume=True,
                                                                          progress=False)
    assert all(torch.equal(straight[k], v) for k, v in resumed.encoder.state_dict().items())


#: Child process: a warm-up fit on a small file (libraries, first-step buffers), then a fit on the
#: large one; prints the peak resident memory before and after the second fit.
_BOUNDED = """
import json, resource, sys
from pathlib import Path
from ldns_framework.pipeline import Pipeline
from ldns_framework.runner import CountRows
from ldns_framework.training import Interrupted
base = Path(sys.argv[1])
def spec(name):
    return {"seed": 0, "data": {"type": "arrays", "path": str(base / name)},
            "encoder": {"type": "s4-autoencoder", "hidden": 16, "latent_dim": 4, "blocks": 1},
            "generator": None, "train": {"encoder": {"epochs": 1, "batch_size": 64}},
            "run": {"device": "cpu", "num_threads": 1}}
Pipeline.from_spec(spec("small.npz")).fit(run_dir=base / "warm", progress=False)
pipeline = Pipeline.from_spec(spec("big.npz"))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pipeline.fit(run_dir=base / "big", progress=False)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"lazy": pipeline.load_data().lazy, "growth_kib": after - before}))
"""


@pytest.mark.slow
def test_training_on_a_file_three_times_the_cap_keeps_memory_bounded(tmp_path):
    """60 MiB of counts under a 20 MiB cap (LDNS_MEMORY_LIMIT 40M: half of it for data): the
    source reads them lazily and the peak resident memory of the whole fit grows by less than a
    third of the file (measured about 10 MiB; eager reading grows it by about 125 MiB)."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", counts=(rng.random((1920, 128, 64), dtype=np.float32) < 0.05).astype(np.int32))
    np.savez(tmp_path / "small.npz", counts=(rng.random((256, 128, 64), dtype=np.float32) < 0.05).astype(np.int32))
    size_kib = (tmp_path / "big.npz").stat().st_size / 1024
    env = {**__import__("os").environ, "LDNS_MEMORY_LIMIT": "40M"}
    done = subprocess.run([sys.executable, "-c", _BOUNDED, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["lazy"] is True
    assert result["growth_kib"] < size_kib / 3, (result, size_kib)


def test_loading_every_trial_is_refused_above_the_memory_limit(tmp_path, monkeypatch):
    np.save(tmp_path / "c.npy", np.zeros((100, 64, 64), np.int32))  # 1.6 MiB
    lazy = open_counts(tmp_path / "c.npy")
    monkeypatch.setenv("LDNS_MEMORY_LIMIT", "2M")  # 1 MiB for one array set
    assert lazy[np.arange(10)].shape == (10, 64, 64)  # a batch is fine
    with pytest.raises(DataError, match=r"c.npy: loading all 100 trials \(1.6 MiB\) into memory would exceed the "
                                        r"limit of 1.0 MiB \(LDNS_MEMORY_LIMIT sets it\)"):
        np.asarray(lazy)
