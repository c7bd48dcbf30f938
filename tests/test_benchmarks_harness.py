"""The `make bench` harness (benchmarks/run_all.py) on tiny sizes: it runs, prints one table with
its columns and writes the history JSON. No timing is asserted (CI never runs the benchmarks)."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def run_all(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """benchmarks/run_all.py with one tiny case per timed section; start-up figures come from a stand-in
    (benchmarks/startup.py measures CLI processes and has its own tests)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setitem(sys.modules, "startup", types.SimpleNamespace(run=lambda quick: {"import_s": 0.5, "note": "x"}))
    for name in ("run_all", "cases", "baseline_s4d", "machine", "evaluate_speed", "spike_history_speed"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module("run_all")
    monkeypatch.setattr(module, "TRAIN", [("lorenz-denoiser", 4)])
    monkeypatch.setattr(module, "SAMPLERS", [("dpm-solver++", 2)])
    return module


def test_quick_bench_prints_one_table_and_writes_the_history(run_all: types.ModuleType, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = run_all.main(["--quick", "--no-memory", "--sections", "conv,train,profile,sample,startup", "--out-dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("section"))
    assert [cell.strip() for cell in header.split("|")] == list(run_all.COLUMNS)
    written = list(tmp_path.glob("*.json"))
    assert len(written) == 1 and written[0].name.startswith(run_all.datetime.date.today().isoformat())
    record = json.loads(written[0].read_text())
    rows = {row["section"]: row for row in record["rows"]}
    assert set(rows) == {"machine", "conv", "train", "profile", "sample", "startup"}
    train = rows["train"]
    assert train["baseline"] > 0 and train["current"] > 0 and train["speed-up"] > 0 and train["GFLOP/sample"] > 0
    assert rows["startup"]["case"] == "import_s"  # numeric start-up figures only
    assert record["settings"]["quick"] is True and "load_average_after" in record


def test_a_failing_section_is_a_row_and_exit_code_not_lost_figures(run_all: types.ModuleType, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(quick: bool) -> dict[str, float]:
        raise RuntimeError("the CLI exited with 2")

    monkeypatch.setattr(run_all.startup, "run", broken)
    assert run_all.main(["--quick", "--no-memory", "--sections", "conv,startup", "--out-dir", str(tmp_path)]) == 1
    rows = json.loads(next(tmp_path.glob("*.json")).read_text())["rows"]
    assert {row["section"] for row in rows} == {"machine", "conv", "startup"}
    assert [row["case"] for row in rows if row.get("failed")] == ["failed: RuntimeError: the CLI exited with 2"]


def test_second_run_on_the_same_day_keeps_the_first(run_all: types.ModuleType, tmp_path: Path) -> None:
    first = run_all.write_results([], tmp_path, {})
    second = run_all.write_results([], tmp_path, {})
    assert first != second and first.exists() and second.name.endswith("-2.json")


def test_unknown_section_is_a_usage_error(run_all: types.ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--sections", "train,warp"])
    assert exit_info.value.code == 2 and "--sections" in capsys.readouterr().err


def test_gpu_sections_need_a_gpu_and_time_only_the_model(run_all: types.ModuleType, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_all.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--device", "cuda"])
    assert exit_info.value.code == 2 and "--device: 'cuda' asked for, but torch finds no CUDA device" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--device", "cuda", "--sections", "train,allocator"])
    assert exit_info.value.code == 2
    assert "--sections: expected names from conv, train, encode, sample (with --device cuda), got allocator" in capsys.readouterr().err


def test_bf16_variant_runs_the_step_under_autocast_beside_fp32(run_all: types.ModuleType) -> None:
    cases = run_all.cases
    model, _, _ = cases.make_case({"kind": "train", "model": "lorenz-denoiser", "batch": 2}, quick=True)
    with cases.variant(model, "bf16"):
        assert run_all.torch.is_autocast_enabled("cpu") and run_all.torch.get_autocast_dtype("cpu") == run_all.torch.bfloat16
    assert not run_all.torch.is_autocast_enabled("cpu")
    [row] = run_all.speed_rows("train", {"kind": "train", "model": "lorenz-denoiser", "batch": 2}, "denoiser", True,
                               matmul=1.0, memory=False, variants=cases.ALL_VARIANTS)
    assert row["bf16"] > 0 and row["current"] > 0 and row["bf16_speed_up"] == pytest.approx(
        row["current_s_per_call"] / row["bf16_s_per_call"], rel=1e-2)


def test_peak_memory_of_a_case_is_measured(run_all: types.ModuleType) -> None:
    case = {"kind": "encode", "model": "lorenz-autoencoder", "batch": 2}
    assert run_all.cases.peak_memory_mib(case, "current", quick=True) >= 0.0


def test_baseline_layers_are_swapped_in_and_restored(run_all: types.ModuleType) -> None:
    from torch import nn

    from ldns_framework.nn import S4D, PointwiseConv1d

    cases = run_all.cases
    model, _, _ = cases.make_case({"kind": "encode", "model": "lorenz-autoencoder", "batch": 2}, quick=True)
    layer = next(m for m in model.modules() if isinstance(m, S4D))
    pointwise = next(m for m in model.modules() if isinstance(m, PointwiseConv1d))
    with cases.variant(model, "baseline"):
        assert layer.forward.__func__.__name__ == "baseline_forward"
        assert pointwise.forward.__func__ is nn.Conv1d.forward
    assert "forward" not in vars(layer) and "forward" not in vars(pointwise)


def test_peak_memory_of_a_case_is_measured_in_a_child_of_a_larger_process(run_all: types.ModuleType) -> None:
    """The case's own growth, even when the bench process peaked higher first (a child inherits the
    parent's ru_maxrss across exec, which read 0 for every case)."""
    ballast = bytearray(200 * 2**20)  # this process peaks well above what the case needs
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched, so resident
    peak = run_all.peak_mib({"kind": "train", "model": "lorenz-denoiser", "batch": 4}, "current", True)
    del ballast
    assert peak is not None and 1.0 < peak < 200.0
