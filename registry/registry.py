"""Plugin discovery (pluggy + entry points), building components from spec sections, and calling
lifecycle hooks so that no plugin can break the framework.

Every call into plugin code goes through :class:`~ldns_registry.guard.PluginCall`: what a plugin
raises at import or registration (``SystemExit`` and ``KeyboardInterrupt`` included) is recorded in
``Registry.failures`` and shown by ``ldns plugins``; a failed registration leaves none of its
components behind; a component whose class cannot be built gives a one-line :class:`PluginError`
naming the component, plugin and distribution; a lifecycle hook that raises is reported once on
stderr and the others run on. A real Ctrl-C (or SIGTERM) is never taken for a plugin's failure.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from importlib import metadata
from typing import Any, Iterable, Mapping

import attrs
import pluggy

from ldns_framework import PLUGIN_API_VERSION, PROJECT_NAME, PluginError, SpecError, hookspecs
from ldns_framework.config import did_you_mean
from ldns_framework.errors import LdnsError, SpecErrors
from ldns_framework.spec import COMPONENT_SECTIONS, SAMPLE_KEYS, ComponentSpec, ResolvedSpec, resolve_spec
from ldns_framework.structure import structure_config

from ldns_registry.catalogue import (Catalogue, ComponentEntry, Provider, Registrar, load_component_class,
                                     load_config_class, load_samplers)
from ldns_registry.guard import PluginCall, describe

ENTRY_POINT_GROUP = "ldns_framework"
DISABLE_ENV = "LDNS_DISABLE_PLUGINS"
STRICT_ENV = "LDNS_STRICT_PLUGINS"
TRACE_ENV = "LDNS_TRACE_PLUGINS"


@attrs.frozen
class PluginFailure:
    """A plugin that could not be loaded or registered, kept for reporting."""

    provider: Provider
    error: str
    traceback: str

    def message(self) -> str:
        return f"{self.provider.label()} failed to load: {self.error}"


def _check_api(plugin: Any) -> None:
    """Refuse a plugin written for a newer plugin API than this ldns-framework provides."""
    declared = getattr(plugin, "LDNS_PLUGIN_API", PLUGIN_API_VERSION)
    if not isinstance(declared, int) or declared > PLUGIN_API_VERSION:
        raise PluginError(f"needs plugin API {declared!r}, this ldns-framework provides {PLUGIN_API_VERSION}; "
                          f"upgrade ldns-framework")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_list(name: str) -> set[str]:
    return {p.strip() for p in os.environ.get(name, "").split(",") if p.strip()}


class Registry:
    """The plugin manager, the component catalogue and the plugins that failed to load."""

    def __init__(self, *, disabled: Iterable[str] = (), strict: bool = False, trace: bool = False) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.catalogue = Catalogue()
        self.failures: dict[str, PluginFailure] = {}
        self.loaded: dict[str, Provider] = {}
        #: (plugin, hook) -> the error of a lifecycle hook that raised (each reported once).
        self.hook_failures: dict[tuple[str, str], str] = {}
        self.disabled = set(disabled)
        self.strict = strict
        if trace:
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()

    @classmethod
    def discover(cls, *, disabled: Iterable[str] = (), strict: bool | None = None,
                 trace: bool | None = None) -> "Registry":
        """Registry of every installed plugin; environment variables add to the arguments."""
        registry = cls(disabled=set(disabled) | _env_list(DISABLE_ENV),
                       strict=_env_flag(STRICT_ENV) if strict is None else strict,
                       trace=_env_flag(TRACE_ENV) if trace is None else trace)
        registry.load_entry_points()
        return registry

    # -- discovery ---------------------------------------------------------------------------
    def load_entry_points(self) -> None:
        """Load each entry point of the group inside its own try: one broken plugin spoils nothing else."""
        for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if entry_point.name in self.disabled or entry_point.name in self.loaded:
                continue
            dist = entry_point.dist
            provider = Provider(entry_point.name, dist.name if dist else "(unknown)", dist.version if dist else "")
            with PluginCall() as call:  # whatever the module raises, sys.exit included, is recorded
                module = entry_point.load()
            if call.error is not None:
                self._record_failure(provider, call.error)
                continue
            self._register(module, provider)
        self._check_strict()

    def register(self, plugin: Any, provider: Provider | str) -> None:
        """Register a plugin object (module or instance with hookimpls) and collect its components.

        A plugin that fails is recorded in ``failures`` (fatal in strict mode), with nothing of it kept.
        """
        self._register(plugin, Provider(provider) if isinstance(provider, str) else provider)
        self._check_strict()

    def _register(self, plugin: Any, provider: Provider) -> None:
        if provider.plugin in self.disabled:
            return
        registrar = Registrar(provider)
        with PluginCall() as call:  # a registration that raises is recorded like an import failure
            _check_api(plugin)
            self.pm.register(plugin, name=provider.plugin)  # pluggy validates the hook signatures
            self._only(plugin, "ldns_register_components")(registrar=registrar)
        if call.error is not None:
            if self.pm.get_plugin(provider.plugin) is plugin:  # its lifecycle hooks go too
                self.pm.unregister(plugin)
            self._record_failure(provider, call.error)
            return
        for entry in registrar.entries:  # committed only now: a failed registration leaves nothing behind
            self.catalogue.add(entry)
        self.loaded[provider.plugin] = provider

    def _only(self, plugin: Any, hook_name: str) -> Any:
        """A caller of ``hook_name`` that runs ``plugin``'s implementations only."""
        return self.pm.subset_hook_caller(hook_name, remove_plugins=[p for p in self.pm.get_plugins() if p is not plugin])

    def _record_failure(self, provider: Provider, exc: BaseException) -> None:
        self.failures[provider.plugin] = PluginFailure(provider, describe(exc), "".join(traceback.format_exception(exc)))

    def _check_strict(self) -> None:
        if not self.strict:
            return
        problems = [f.message() for f in self.failures.values()] + [c.message() for c in self.catalogue.conflicts.values()]
        if problems:
            raise PluginError(f"strict plugin mode ({STRICT_ENV}=1): " + "; ".join(problems))

    # -- lifecycle hooks -----------------------------------------------------------------------
    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call every plugin's implementation of the lifecycle hook ``hook_name``, each on its own.

        A plugin whose implementation raises (anything but a real interruption) is reported once
        per plugin and hook as a one-line ``warning:`` on stderr naming it and its distribution,
        and the other plugins still run: a logger's bug must not abort a two-day training. In
        strict mode (``LDNS_STRICT_PLUGINS=1``) it raises :class:`PluginError` instead.
        """
        caller = getattr(self.pm.hook, hook_name)
        # pluggy calls the last registered first; one call per plugin keeps its own wrappers and tracing
        plugins = {impl.plugin: impl.plugin_name for impl in reversed(caller.get_hookimpls())}
        for plugin, name in plugins.items():
            with PluginCall() as call:
                self._only(plugin, hook_name)(**kwargs)
            if call.error is not None:
                self._hook_failed(name, hook_name, call.error)

    def _hook_failed(self, name: str, hook_name: str, exc: BaseException) -> None:
        provider = self.loaded.get(name, Provider(name))
        message = f"{provider.label()}: hook {hook_name} raised {describe(exc)}"
        if self.strict:
            raise PluginError(f"{message} (strict plugin mode, {STRICT_ENV}=1)") from exc
        if (name, hook_name) not in self.hook_failures:
            self.hook_failures[(name, hook_name)] = describe(exc)
            print(f"warning: {message}; carrying on without it (reported once; {STRICT_ENV}=1 makes it fatal)",
                  file=sys.stderr, flush=True)

    @property
    def hook(self) -> Any:
        """``registry.hook.ldns_stage_start(stage=...)``: the same as :meth:`notify`, spelled like pluggy's relay."""
        return _HookRelay(self)

    # -- lookup --------------------------------------------------------------------------------
    def entry(self, kind: str, name: str) -> ComponentEntry:
        entry = self.catalogue.get(kind, name)
        if entry is None:
            message = self.catalogue.unknown_message(kind, name)
            if self.failures:
                message += "; plugins that failed to load: " + ", ".join(
                    f"{f.provider.plugin} ({f.error})" for f in self.failures.values())
            raise PluginError(message)
        return entry

    def component_class(self, kind: str, name: str) -> type:
        return load_component_class(self.entry(kind, name))

    def names(self, kind: str) -> list[str]:
        """Registered names of ``kind``, ordered by rank, then name (unranked ones last)."""
        return self.catalogue.names(kind)

    def default_type(self, kind: str) -> str | None:
        """The type registered with ``default=True`` for ``kind``, or None; two defaults raise
        :class:`PluginError` naming both providers."""
        return self.catalogue.default_type(kind)

    def data_type_for_file(self, path: str | os.PathLike) -> str:
        """The data source declaring ``path``'s suffix (``file_suffixes``); it reads the file
        given as its ``path`` option. A one-line DataError names the suffix and the known ones."""
        return self.catalogue.data_type_for_file(os.fspath(path))

    def sampler_options(self, generator_type: str, sampler: str | None, values: Mapping[str, Any],
                        path: str) -> tuple[str, Any]:
        """(sampler name, options object) for one of a generator's declared samplers.

        ``sampler`` None means the generator's first (its default); ``values`` are structured into
        that sampler's options class (absent keys take their defaults). Errors name
        ``path.sampler`` or ``path.<key>`` and list what the generator or the sampler accepts.
        """
        samplers = load_samplers(self.entry("generator", generator_type))
        if not samplers:
            raise PluginError(f"generator {generator_type!r} declares no samplers")
        name = next(iter(samplers)) if sampler is None else sampler
        if name not in samplers:
            raise SpecError(f"{path}.sampler", f"unknown sampler {name!r} of generator {generator_type!r}"
                                               f"{did_you_mean(name, samplers)}; its samplers: {', '.join(samplers)}")
        options_class = samplers[name]
        if not attrs.has(options_class):
            raise PluginError(f"generator {generator_type!r}: the options of sampler {name!r} must be an attrs class, "
                              f"got {options_class!r}")
        fields = [f.name for f in attrs.fields(options_class)]
        clash = sorted(set(fields) & set(SAMPLE_KEYS))
        if clash:
            raise PluginError(f"generator {generator_type!r}: options of sampler {name!r} may not be named "
                              f"{', '.join(clash)} (the sample section's own keys)")
        unknown = [str(key) for key in values if key not in fields]
        if unknown:
            known = (f"the options of sampler {name!r} of {generator_type!r} are: {', '.join(fields)}" if fields
                     else f"sampler {name!r} of {generator_type!r} takes no options")
            raise SpecErrors([SpecError(f"{path}.{key}", f"unknown option{did_you_mean(key, fields)}; {known}")
                              for key in unknown])
        return name, structure_config(options_class, values, path)

    # -- specs ---------------------------------------------------------------------------------
    def structure_component(self, kind: str, body: Mapping[str, Any], type_name: str, path: str) -> Any:
        """Config object for one component section (the callback :func:`resolve_spec` needs)."""
        try:
            config_class = load_config_class(self.entry(kind, type_name))
        except PluginError as exc:
            raise SpecError(f"{path}.type", str(exc)) from None
        return structure_config(config_class, body, path)

    def resolve(self, raw: Mapping[str, Any]) -> ResolvedSpec:
        """Validate a raw spec against the registered components; defaults come from registrations."""
        return resolve_spec(raw, self)

    def build(self, kind: str, section: Mapping[str, Any] | ComponentSpec, path: str | None = None, **context: Any) -> Any:
        """Instantiate a component from a spec section (``{"type": ..., options}``; no type: the
        kind's registered default) or a resolved one.

        ``context`` carries what the pipeline knows and the spec does not (``n_neurons``,
        ``latent_dim``); it is passed to the component's constructor as keyword arguments.
        """
        if isinstance(section, ComponentSpec):
            type_name, config = section.type, section.config
            cls = self.component_class(kind, type_name)
        else:
            body = dict(section)
            path = path or kind
            type_name = body.pop("type", None)
            if type_name is None:
                type_name = self.default_type(kind)
            if not isinstance(type_name, str):
                raise SpecError(f"{path}.type", f"expected the name of a registered {kind}, got {type_name!r}")
            config = self.structure_component(kind, body, type_name, path)
            cls = self.component_class(kind, type_name)
        with PluginCall() as call:
            component = cls(config, **context)
        if isinstance(call.error, LdnsError):  # the component's own clear error (a bad file, a bad option)
            raise call.error
        if call.error is not None:
            raise PluginError(f"{kind} {type_name!r} of {self.entry(kind, type_name).where()} failed to build: "
                              f"{describe(call.error)}") from call.error
        return component

    def provenance(self, spec: ResolvedSpec) -> dict[str, dict[str, str]]:
        """Which plugin, distribution and version provide each component of ``spec`` (stored with a run)."""
        out = {}
        for section, component in spec.components.items():
            if component is not None:
                out[section] = self.entry(COMPONENT_SECTIONS[section], component.type).as_dict()
        return out


class _HookRelay:
    """``relay.<hook name>(**kwargs)`` calls :meth:`Registry.notify`."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def __getattr__(self, hook_name: str) -> Any:
        if not hook_name.startswith("ldns_"):
            raise AttributeError(hook_name)
        getattr(self._registry.pm.hook, hook_name)  # an unknown hook fails here, not when called
        return functools.partial(self._registry.notify, hook_name)
