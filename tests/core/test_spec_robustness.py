"""The spec loader and resolution under hostile or careless input (issue 12).

Each finding is a case: alias bombs, deep nesting, duplicate keys, wrong encodings, huge or
non-finite numbers, impossible devices and precisions. A hypothesis fuzz then throws random
bytes, YAML-ish text, nested values and ``--set`` strings at the loader and the resolution:
only :class:`LdnsError` may come out, each line short. ``LDNS_FUZZ_EXAMPLES`` raises the
example count (``make fuzz``); CI runs the default.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldns_framework.errors import MAX_LINE, MAX_LINES, LdnsError, SpecError, shown
from ldns_framework.spec import (MAX_DEPTH, MAX_SPEC_BYTES, MAX_VALUES, RunConfig, apply_overrides, load_spec_file,
                                 parse_override, parse_yaml)
from ldns_registry import Registry

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "specs" / "lorenz-small.yaml"
FUZZ_EXAMPLES = int(os.environ.get("LDNS_FUZZ_EXAMPLES", "200"))


@pytest.fixture(scope="module")
def registry():
    return Registry.discover(strict=False, trace=False)


def billion_laughs(levels: int = 9) -> str:
    """Each level a list of nine aliases of the previous one: 9**levels strings from ~350 bytes."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    previous = "a"
    for name in "bcdefghijk"[: levels - 1]:
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
        previous = name
    return "\n".join(lines + [f"data: *{previous}"]) + "\n"


def resolve_with(registry, *overrides: str):
    return registry.resolve(apply_overrides(load_spec_file(SPEC), list(overrides)))


def error_of(registry, *overrides: str) -> str:
    with pytest.raises(LdnsError) as info:
        resolve_with(registry, *overrides)
    return str(info.value)


def assert_clean(exc: LdnsError) -> None:
    """A user-facing message: bounded lines, each short; a single SpecError on one line."""
    lines = str(exc).splitlines()
    assert 1 <= len(lines) <= MAX_LINES + 1
    assert all(len(line) <= MAX_LINE for line in lines)
    if isinstance(exc, SpecError):
        assert len(lines) == 1


# --- the loader's limits ---------------------------------------------------------------------------

def test_billion_laughs_fails_fast_with_bounded_memory(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 700
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(SpecError, match="too large: more than 10000 values") as info:
        load_spec_file(path)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0  # about 5 ms alone; generous for a loaded CI machine
    assert peak < 20 * 2**20
    assert str(info.value).startswith(str(path))
    assert_clean(info.value)


def test_alias_bombs_in_set_values_and_shared_values_count_each_time():
    flow = "{" + ", ".join(billion_laughs(6).splitlines()[:-1]) + "}"  # the levels as one flow mapping
    with pytest.raises(SpecError, match="--set data: too large"):
        parse_override("data=" + flow)
    shared = ["x"] * 200
    with pytest.raises(SpecError, match="too large"):
        apply_overrides({"data": [shared] * (MAX_VALUES // 100)}, [])
    assert parse_yaml("a: &a [1, 2]\nb: *a\n") == {"a": [1, 2], "b": [1, 2]}  # small aliases still work


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000, "a:\n" + "".join(f"{' ' * i}- \n" for i in range(200))])
def test_deep_nesting_is_refused_with_its_line(tmp_path, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=f"line 1, column [0-9]+: nested deeper than {MAX_DEPTH} levels|nested deeper"):
        load_spec_file(path)


def test_recursive_aliases_and_deep_python_specs_are_refused(registry):
    with pytest.raises(SpecError, match="nested deeper"):
        parse_yaml("a: &a [*a]\n")
    deep: dict = {}
    node = deep
    for _ in range(10_000):  # deeper than Python's recursion limit
        node["x"] = {}
        node = node["x"]
    with pytest.raises(SpecError, match="spec: nested deeper"):
        registry.resolve({"data": deep})
    with pytest.raises(SpecError, match="nested deeper"):
        apply_overrides({"data": deep}, [])


def test_duplicate_keys_name_the_key_and_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  encoder:\n    lr: 0.1\n    epochs: 2\n    lr: 0.2\n")
    with pytest.raises(SpecError, match=r"line 5, column 5: duplicate key 'lr' \(first given on line 3\)"):
        load_spec_file(path)
    with pytest.raises(SpecError, match="--set train.encoder: .*duplicate key 'lr'"):
        parse_override("train.encoder={lr: 1, lr: 2}")


def test_merge_keys_are_refused_and_dates_stay_text():
    with pytest.raises(yaml.YAMLError, match="merge keys"):
        parse_yaml("a: &a {x: 1}\nb: {<<: *a}\n")
    assert parse_yaml("path: 2024-01-01\nv: =\n") == {"path": "2024-01-01", "v": "="}


@pytest.mark.parametrize("encoding, found", [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_utf16_and_utf32_files_name_the_encoding(tmp_path, encoding, found):
    path = tmp_path / "wide.yaml"
    path.write_bytes("seed: 1\n".encode(encoding))
    with pytest.raises(SpecError, match=f"wide.yaml: expected UTF-8 text, found {found}"):
        load_spec_file(path)


def test_non_utf8_bytes_name_the_byte_and_line_and_a_utf8_bom_is_fine(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"seed: 1\nrun: {device: caf\xe9}\n")
    with pytest.raises(SpecError, match=r"latin.yaml: expected UTF-8 text; byte 25 \(line 2\) is not UTF-8"):
        load_spec_file(latin)
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfseed: 1\n")
    assert load_spec_file(bom) == {"seed": 1}


def test_file_size_cap_directories_and_integer_literals(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_SPEC_BYTES + "\n")
    with pytest.raises(SpecError, match="at most 1024 KiB"):
        load_spec_file(big)
    with pytest.raises(SpecError, match="expected a spec file, found a directory"):
        load_spec_file(tmp_path)
    huge = tmp_path / "int.yaml"
    huge.write_text("seed: " + "9" * 5000 + "\n")
    with pytest.raises(SpecError, match="line 1, column 7: an integer of 5000 digits is out of range"):
        load_spec_file(huge)


def test_control_characters_explicit_tags_and_non_yaml_set_values(tmp_path):
    path = tmp_path / "ctl.yaml"
    path.write_bytes(b"seed: 1\x01\n")
    with pytest.raises(SpecError, match=r"ctl.yaml: not valid YAML: character 8: special characters are not "
                                        r"allowed \(#x0001\)"):
        load_spec_file(path)
    with pytest.raises(SpecError, match=r"^--set seed: line 1, column 1: cannot read '' as tag:yaml.org,2002:int$"):
        parse_override("seed=!!int ''")
    assert parse_override("data.path=[1,") == (["data", "path"], "[1,")  # not YAML: the text as typed


# --- option values -----------------------------------------------------------------------------------

@pytest.mark.parametrize("override, expected", [
    ("train.encoder.lr=.inf", "train.encoder.lr: expected float > 0 and <= 1, got inf (a finite number is needed)"),
    ("train.encoder.lr=.nan", "train.encoder.lr: expected float > 0 and <= 1, got nan (a finite number is needed)"),
    ("train.encoder.lr=1e300", "train.encoder.lr: expected float > 0 and <= 1, got 1e+300"),
    ("train.encoder.weight_decay=5000", "train.encoder: weight_decay: expected lr x weight_decay < 1"),
    ("data.split=[.inf, 0, 0]", "data.split: expected tuple[float, float, float] >= 0 and <= 1, got [inf, 0, 0] "
                                "(at [0]: a finite number is needed)"),
    (f"seed={2**70}", f"seed: expected int >= 0 and <= 4294967295 (2**32 - 1), got {2**70}"),
    (f"seed={2**32}", "seed: expected int >= 0 and <= 4294967295"),
    (f"encoder.hidden={10**25}", f"encoder.hidden: expected int >= 1 and <= 8192, got {10**25} (beyond the 64-bit"),
    ("run.precision=64-true", "run.precision: expected one of '32-true', '32', 'bf16-mixed', '16-mixed', got '64-true'"),
    ("run.device=cuda:x", "run: device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'cuda:x'"),
    ("run.num_threads=1000000000", "run.num_threads: expected int >= 0 and <= 1024, got 1000000000"),
    ("data.bin_width_s=[0.01]", "data.bin_width_s: expected float > 0, got [0.01]"),
    ("data.n_trials=1000000000000", "data.n_trials: expected int >= 1 and <= 10000000, got 1000000000000"),
    ("generator.train_steps=1000000000000", "generator.train_steps: expected int >= 2 and <= 100000"),
    ("data.mean_rate=1e300", "data.mean_rate: expected float > 0 and <= 1000, got 1e+300"),
])
def test_each_bad_value_is_one_line_naming_its_key(registry, override, expected):
    message = error_of(registry, override)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_valid_edges_still_resolve(registry):
    spec = resolve_with(registry, f"seed={2**32 - 1}", "run.precision=32", "train.encoder.lr=1")
    assert spec.seed == 2**32 - 1 and spec.run.precision == "32"


def test_echoed_values_are_truncated(registry):
    message = error_of(registry, "run.device=" + "x" * 100_000)
    assert len(message) < 300 and "xxx...xxx" in message
    message = error_of(registry, "train=[" + ", ".join(["[1, 2, 3]"] * 1000) + "]")
    assert len(message) < 300
    assert shown(10**5000) == "<int of 16610 bits>"


def test_too_many_errors_are_cut_to_a_bounded_message(registry):
    raw = {f"unknown{i}": 1 for i in range(500)}
    with pytest.raises(LdnsError) as info:
        registry.resolve(raw)
    lines = str(info.value).splitlines()
    assert len(lines) == MAX_LINES + 1 and lines[-1].startswith("... and ")


def test_device_is_checked_against_the_machine_when_the_run_executes(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    RunConfig(device="cpu").check_machine()
    with pytest.raises(SpecError, match=r"run.device: 'cuda:1' asked for, but this machine has no CUDA device"):
        RunConfig(device="cuda:1").check_machine()
    with pytest.raises(SpecError, match=r"run.device: 'mps' asked for, but this machine has no Apple GPU"):
        RunConfig(device="mps").check_machine()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SpecError, match="has 1 CUDA device"):
        RunConfig(device="cuda:1").check_machine()


# --- fuzz ----------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
YAML_BITS = st.sampled_from(["&a ", "*a", "[", "]", "{", "}", ": ", ", ", "- ", "\n", "  ", "!!int ", "!!binary ", "? ",
                             "<<: ", "'", '"', "|\n ", "#", "seed", "data", "type", "lorenz", "1e999", ".nan",
                             "9" * 60, "0x1F", "-1", "null", "~", "true", "\t", "\x00", "\udcff", "é", "%YAML 1.1\n",
                             "---\n", "...\n", "!!python/object:os.system ", "2024-01-01", "="])
YAML_TEXT = st.lists(YAML_BITS, max_size=40).map("".join) | st.text(max_size=200)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**60), st.floats(),
                    st.text(max_size=20), st.text(min_size=1000, max_size=2000), st.binary(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                               max_size=4), max_leaves=12)
KEYS = st.sampled_from(["seed", "data", "data.n_trials", "data.split", "data.type", "encoder", "encoder.hidden",
                        "generator", "generator.type", "train", "train.encoder", "train.encoder.lr", "sample",
                        "sample.sampler", "sample.steps", "run", "run.device", "run.precision", "latents.clamp",
                        "observation.type", "conditioner"]) | st.text(max_size=12)


def _load_or_refuse(action):
    try:
        action()
    except LdnsError as exc:
        assert_clean(exc)


@FUZZ
@given(data=st.binary(max_size=300) | YAML_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_fuzz_spec_files(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "spec.yaml"
    path.write_bytes(data)
    _load_or_refuse(lambda: load_spec_file(path))


@FUZZ
@given(key=KEYS, value=YAML_TEXT)
def test_fuzz_set_strings(registry, key, value):
    _load_or_refuse(lambda: resolve_with(registry, f"{key}={value}"))


@FUZZ
@given(path=KEYS, value=VALUES)
def test_fuzz_resolution_of_random_values(registry, path, value):
    raw = load_spec_file(SPEC)
    parts = path.split(".")

    def put() -> None:
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node[parts[-1]] = value
        registry.resolve(raw)

    _load_or_refuse(put)
