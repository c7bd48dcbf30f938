"""Plugins cannot break the framework: whatever a plugin raises at import, registration, build or in
a lifecycle hook is reported with its name and distribution, and the registry and the other
plugins keep working. A real Ctrl-C still stops the program."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ldns_framework import PluginError, SpecError, hookimpl
from ldns_framework.pipeline import Pipeline
from ldns_registry import Registry
from ldns_registry.guard import describe
from pipeline_toys import PipelineToys, toy_spec

GOOD = '''
from ldns_framework import hookimpl

@hookimpl
def ldns_register_components(registrar):
    registrar.add("observation", "good-poisson", "ldns_plugins.poisson.model:PoissonObservation", summary="alias")
'''
RAISES_AT_IMPORT = {
    "Exception": 'raise RuntimeError("broken on purpose")\n',
    "SystemExit": 'import sys\nsys.exit(3)\n',
    "KeyboardInterrupt": 'raise KeyboardInterrupt\n',
}
HALF_REGISTERED = '''
from ldns_framework import hookimpl

@hookimpl
def ldns_register_components(registrar):
    registrar.add("observation", "half-poisson", "ldns_plugins.poisson.model:PoissonObservation")
    raise ValueError("gave up after the first component")

@hookimpl
def ldns_stage_start(stage):
    raise AssertionError("the hooks of a plugin whose registration failed must not run")
'''
SIGINT_AT_IMPORT = '''
import os, signal, time
os.kill(os.getpid(), signal.SIGINT)
time.sleep(30)
'''
EXPLODING = '''
import sys
from ldns_framework import DataError
from ldns_plugins.poisson.model import PoissonObservation

class Exploding(PoissonObservation):
    def __init__(self, config=None, **context):
        raise RuntimeError("out of cheese\\n" + "x" * 10_000)

class Exiting(PoissonObservation):
    def __init__(self, config=None, **context):
        sys.exit("bye")

class Refusing(PoissonObservation):
    def __init__(self, config=None, **context):
        raise DataError("some.file", "expected something else")
'''
EXIT_AT_IMPORT = 'import sys\nsys.exit(1)\n'


class Components:
    @hookimpl
    def ldns_register_components(self, registrar):
        registrar.add("observation", "exploding", "exploding_mod:Exploding")
        registrar.add("observation", "exiting", "exploding_mod:Exiting")
        registrar.add("observation", "refusing", "exploding_mod:Refusing")
        registrar.add("observation", "exit-at-import", "exit_at_import_mod:Whatever")


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "ldns_framework", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("raised", sorted(RAISES_AT_IMPORT))
def test_a_plugin_raising_anything_at_import_is_recorded(install_distribution, raised):
    module = f"raises_{raised.lower()}"
    install_distribution(f"ldns-{module}", {"aaa-raiser": module}, {module: RAISES_AT_IMPORT[raised]}, version="0.3")
    install_distribution(f"ldns-good-{module}", {"zzz-good": f"good_{module}"}, {f"good_{module}": GOOD})
    registry = Registry.discover(strict=False)
    failure = registry.failures["aaa-raiser"]
    assert (failure.provider.distribution, failure.provider.version) == (f"ldns-{module}", "0.3")
    assert failure.error.startswith(raised if raised != "Exception" else "RuntimeError: broken on purpose")
    assert failure.message().startswith(f"plugin 'aaa-raiser' (ldns-{module} 0.3) failed to load: ")
    assert registry.entry("observation", "good-poisson").provider.plugin == "zzz-good"
    assert type(registry.build("observation", {"type": "poisson"})).__name__ == "PoissonObservation"
    with pytest.raises(PluginError, match="strict plugin mode.*'aaa-raiser'"):
        Registry.discover(strict=True)


@pytest.mark.parametrize("error", [ValueError("gave up"), SystemExit(2), KeyboardInterrupt()], ids=repr)
def test_a_failed_registration_leaves_none_of_its_components(error):
    class HalfRegistered:
        @hookimpl
        def ldns_register_components(self, registrar):
            registrar.add("observation", "half-poisson", "ldns_plugins.poisson.model:PoissonObservation")
            raise error

        @hookimpl
        def ldns_stage_start(self, stage):
            raise AssertionError("the hooks of a plugin whose registration failed must not run")

    registry = Registry()
    registry.register(PipelineToys(), "toys")
    registry.register(HalfRegistered(), "half")
    assert registry.failures["half"].error.startswith(type(error).__name__)
    assert "half-poisson" not in registry.names("observation") and not registry.catalogue.conflicts
    with pytest.raises(PluginError, match=r"unknown observation type 'half-poisson'.*failed to load: half"):
        registry.entry("observation", "half-poisson")
    registry.notify("ldns_stage_start", stage="data", run_dir=None, spec=None)
    assert not registry.hook_failures  # its hook was not called
    assert registry.build("observation", {"type": "gain-poisson"}, n_neurons=3) is not None
    registry.register(HalfRegistered(), "half-again")  # the registry still takes plugins
    assert set(registry.failures) == {"half", "half-again"} and "toys" in registry.loaded


def test_a_component_that_fails_to_build_is_a_one_line_error_naming_its_plugin(install_distribution):
    install_distribution("ldns-exploding", {}, {"exploding_mod": EXPLODING, "exit_at_import_mod": EXIT_AT_IMPORT})
    registry = Registry()
    registry.register(Components(), "components")
    with pytest.raises(PluginError) as info:
        registry.build("observation", {"type": "exploding"})
    message = str(info.value)
    assert message.startswith("observation 'exploding' of plugin 'components' (in-process) failed to build: "
                              "RuntimeError: out of cheese\\nxxx") and "\n" not in message and len(message) < 400
    with pytest.raises(PluginError, match=r"^observation 'exiting' of plugin 'components' \(in-process\) failed to "
                                          r"build: SystemExit: sys.exit\('bye'\) called$"):
        registry.build("observation", {"type": "exiting"})
    with pytest.raises(SpecError, match=r"^observation.type: observation 'exit-at-import' of plugin 'components' "
                                        r"\(in-process\): cannot import exit_at_import_mod:Whatever: SystemExit: "
                                        r"sys.exit\(1\) called$"):
        registry.build("observation", {"type": "exit-at-import"})
    with pytest.raises(Exception, match=r"^some.file: expected something else$"):  # a component's own clear error
        registry.build("observation", {"type": "refusing"})
    registry.register(PipelineToys(), "toys")  # the registry and the other plugins keep working
    assert registry.build("observation", {"type": "gain-poisson"}, n_neurons=3) is not None


class Flaky:
    """Raises in every lifecycle hook; sys.exit in one of them."""

    @hookimpl
    def ldns_stage_start(self, stage, run_dir, spec):
        raise RuntimeError(f"cannot start {stage}")

    @hookimpl
    def ldns_stage_end(self, stage, run_dir, summary):
        raise SystemExit(f"stage {stage} over")

    @hookimpl
    def ldns_epoch_end(self, stage, epoch, record):
        raise ValueError(f"epoch {epoch}")

    @hookimpl
    def ldns_samples_written(self, path, n_trials, sampler):
        raise OSError("tracker unreachable")


class Listener:
    """Records what it is told; registered before and after the flaky plugin."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def ldns_stage_start(self, stage):
        self.calls.append(f"start {stage}")

    @hookimpl
    def ldns_epoch_end(self, stage, epoch):
        self.calls.append(f"epoch {stage} {epoch}")

    @hookimpl
    def ldns_samples_written(self, n_trials):
        self.calls.append(f"samples {n_trials}")


def test_lifecycle_hooks_that_raise_do_not_abort_training(tmp_path, capsys):
    registry = Registry.discover(strict=False)
    before, after = Listener(), Listener()
    registry.register(PipelineToys(), "toys")
    registry.register(before, "before")
    registry.register(Flaky(), "flaky")
    registry.register(after, "after")
    pipeline = Pipeline.from_spec(toy_spec(), registry=registry).fit(run_dir=tmp_path / "run", progress=False)
    pipeline.write_samples(pipeline.sample(3, progress=False), tmp_path / "s.npz")

    assert (tmp_path / "run" / "generator" / "state.json").is_file() and (tmp_path / "s.npz").is_file()
    assert before.calls == after.calls and "epoch encoder 2" in before.calls and before.calls[-1] == "samples 3"
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert [w.split(" raised ")[0] for w in warnings] == [
        f"warning: plugin 'flaky' (in-process): hook {hook}"
        for hook in ("ldns_stage_start", "ldns_stage_end", "ldns_epoch_end", "ldns_samples_written")]
    assert "raised RuntimeError: cannot start data; carrying on without it" in warnings[0]
    assert "raised SystemExit: sys.exit('stage data over') called" in warnings[1]
    assert set(registry.hook_failures) == {("flaky", h) for h in ("ldns_stage_start", "ldns_stage_end",
                                                                  "ldns_epoch_end", "ldns_samples_written")}


def test_strict_mode_makes_a_failing_hook_fatal():
    registry = Registry(strict=True)
    registry.register(Flaky(), "flaky")
    with pytest.raises(PluginError, match=r"^plugin 'flaky' \(in-process\): hook ldns_epoch_end raised ValueError: "
                                          r"epoch 3 \(strict plugin mode, LDNS_STRICT_PLUGINS=1\)$"):
        registry.hook.ldns_epoch_end(stage="encoder", epoch=3, record={})


def test_a_real_interrupt_during_a_hook_is_not_taken_for_the_plugins_failure():
    class Interrupted:
        @hookimpl
        def ldns_epoch_end(self, epoch):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)

    registry = Registry()
    registry.register(Interrupted(), "interrupted")
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        registry.notify("ldns_epoch_end", stage="encoder", epoch=1, record={})
    assert time.monotonic() - started < 10 and not registry.hook_failures
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the relay is gone


def test_ldns_plugins_lists_the_failures_and_the_working_plugins(install_distribution):
    site = install_distribution("ldns-exiter", {"exiter": "exiter_mod"}, {"exiter_mod": RAISES_AT_IMPORT["SystemExit"]},
                                version="2.1")
    install_distribution("ldns-ctrl-c", {"ctrl-c": "ctrl_c_mod"}, {"ctrl_c_mod": RAISES_AT_IMPORT["KeyboardInterrupt"]})
    install_distribution("ldns-half", {"half": "half_mod"}, {"half_mod": HALF_REGISTERED})
    install_distribution("ldns-good", {"good": "good_mod"}, {"good_mod": GOOD})
    out = _cli(site, "plugins")
    assert out.returncode == 0, out.stderr
    assert "FAILED plugin exiter (ldns-exiter 2.1): SystemExit: sys.exit(3) called" in out.stdout
    assert "FAILED plugin ctrl-c (ldns-ctrl-c 1.0): KeyboardInterrupt" in out.stdout
    assert "FAILED plugin half (ldns-half 1.0): ValueError: gave up after the first component" in out.stdout
    listing = json.loads(_cli(site, "plugins", "--json").stdout)
    names = {row["name"]: row["distribution"] for row in listing["components"]}
    assert names["good-poisson"] == "ldns-good" and names["poisson"] == "ldns-framework" and "half-poisson" not in names
    assert {f["plugin"]: f["distribution"] for f in listing["failures"]} == {
        "exiter": "ldns-exiter", "ctrl-c": "ldns-ctrl-c", "half": "ldns-half"}


def test_ctrl_c_while_a_plugin_imports_still_stops_the_command(install_distribution):
    site = install_distribution("ldns-slow", {"slow": "slow_mod"}, {"slow_mod": SIGINT_AT_IMPORT})
    out = _cli(site, "plugins")
    assert (out.returncode, out.stderr.strip(), out.stdout) == (130, "interrupted", "")


def test_describe_gives_one_short_line_whatever_was_raised():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert describe(Unprintable()) == "Unprintable: <unprintable message>"
    assert describe(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert describe(SystemExit()) == "SystemExit: sys.exit(None) called"
    long = describe(ValueError("v" * 10_000))
    assert long.endswith("... (10012 chars)") and len(long) < 350
