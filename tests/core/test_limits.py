"""Resource limits: memory and CPUs of this machine, and the up-front checks built on them."""

from __future__ import annotations

import time

import pytest

from ldns_framework import limits
from ldns_framework.errors import SpecError
from ldns_plugins.lorenz.source import LorenzConfig, LorenzSource


@pytest.mark.parametrize("text, expected", [("8G", 8 * 2**30), ("512MiB", 512 * 2**20), ("1.5k", 1536), ("1000", 1000)])
def test_memory_override_reads_sizes_with_suffixes(monkeypatch, text, expected):
    monkeypatch.setenv(limits.MEMORY_ENV, text)
    assert limits.available_memory() == expected
    assert limits.memory_budget() == int(expected * limits.MEMORY_FRACTION)


@pytest.mark.parametrize("text", ["lots", "-1G", "inf", "0"])
def test_a_bad_memory_override_names_the_variable(monkeypatch, text):
    monkeypatch.setenv(limits.MEMORY_ENV, text)
    with pytest.raises(SpecError, match=f"^{limits.MEMORY_ENV}: expected"):
        limits.available_memory()


def test_the_machine_is_read_without_an_override(monkeypatch):
    monkeypatch.delenv(limits.MEMORY_ENV, raising=False)
    assert 0 < limits.available_memory() < 2**60
    assert limits.cpu_count() >= 1


def test_check_array_names_each_factor_and_states_the_limit(monkeypatch):
    monkeypatch.setenv(limits.MEMORY_ENV, "1G")
    limits.check_array("--n", {"--n": 1000, "--length": 100, "neurons": 100}, 16)  # 160 MB < 512 MiB
    with pytest.raises(SpecError) as info:
        limits.check_array("--n", {"--n": 10**12, "--length": 100, "neurons": 100}, 16)
    message = str(info.value)
    assert message.startswith("--n: --n 1000000000000 x --length 100 x neurons 100 = 1e+16 values would need about")
    assert "more than the limit of 512.0 MiB (50% of the 1.0 GiB available; LDNS_MEMORY_LIMIT overrides it)" in message


def test_threads_are_bounded_by_this_machines_cpus(monkeypatch):
    monkeypatch.setattr(limits, "cpu_count", lambda: 2)
    limits.check_threads(8)
    with pytest.raises(SpecError, match=r"run.num_threads: expected at most 8 threads \(4 x the 2 CPUs"):
        limits.check_threads(9)


def test_generated_data_too_large_for_memory_fails_before_allocating(monkeypatch):
    monkeypatch.setenv(limits.MEMORY_ENV, "64M")
    start = time.perf_counter()
    with pytest.raises(SpecError, match=r"^data: n_trials 100000 x length 256 x n_neurons 128 = .* reduce n_trials, "
                                        r"length, n_neurons$"):
        LorenzSource(LorenzConfig(n_trials=100_000)).load()
    with pytest.raises(SpecError, match=r"^data: n_trials 10 x burn_in \+ length 100256 = "):
        LorenzSource(LorenzConfig(n_trials=10, n_neurons=1, length=256, burn_in=100_000)).load()
    assert time.perf_counter() - start < 1.0
    assert LorenzSource(LorenzConfig(n_trials=8, n_neurons=4, length=16)).load().counts.shape == (8, 16, 4)
