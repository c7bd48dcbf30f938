"""Plugin discovery (pluggy + entry points) and building components from spec sections."""

from __future__ import annotations

import os
import sys
import traceback
from importlib import metadata
from typing import Any, Iterable, Mapping

import attrs
import pluggy

from ldns_framework import PLUGIN_API_VERSION, PROJECT_NAME, PluginError, SpecError, hookspecs
from ldns_framework.config import did_you_mean
from ldns_framework.errors import SpecErrors
from ldns_framework.spec import COMPONENT_SECTIONS, SAMPLE_KEYS, ComponentSpec, ResolvedSpec, resolve_spec
from ldns_framework.structure import structure_config

from ldns_registry.catalogue import Catalogue, ComponentEntry, Provider, Registrar, load_component_class

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
        return f"plugin {self.provider.plugin!r} ({self.provider.distribution} {self.provider.version}) failed to load: {self.error}"


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
            try:
                module = entry_point.load()
            except Exception as exc:  # a broken plugin is recorded, not fatal
                self._record_failure(provider, exc)
                continue
            self.register(module, provider)
        self._check_strict()

    def register(self, plugin: Any, provider: Provider | str) -> None:
        """Register a plugin object (module or instance with hookimpls) and collect its components."""
        if isinstance(provider, str):
            provider = Provider(provider)
        if provider.plugin in self.disabled:
            return
        declared = getattr(plugin, "LDNS_PLUGIN_API", PLUGIN_API_VERSION)
        if not isinstance(declared, int) or declared > PLUGIN_API_VERSION:
            self._record_failure(provider, PluginError(
                f"needs plugin API {declared!r}, this ldns-framework provides {PLUGIN_API_VERSION}; upgrade ldns-framework"))
            return
        try:
            self.pm.register(plugin, name=provider.plugin)
        except Exception as exc:  # pluggy validates hook signatures on registration
            self._record_failure(provider, exc)
            return
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        register_components = self.pm.subset_hook_caller("ldns_register_components", remove_plugins=others)
        try:
            register_components(registrar=Registrar(self.catalogue, provider))
        except Exception as exc:  # a plugin whose registration raises is recorded like an import failure
            self.pm.unregister(plugin)
            self._record_failure(provider, exc)
            return
        self.loaded[provider.plugin] = provider
        self._check_strict()

    def _record_failure(self, provider: Provider, exc: BaseException) -> None:
        self.failures[provider.plugin] = PluginFailure(
            provider, f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc)))

    def _check_strict(self) -> None:
        if not self.strict:
            return
        problems = [f.message() for f in self.failures.values()] + [c.message() for c in self.catalogue.conflicts.values()]
        if problems:
            raise PluginError(f"strict plugin mode ({STRICT_ENV}=1): " + "; ".join(problems))

    @property
    def hook(self) -> Any:
        """Hook relay for lifecycle events (``registry.hook.ldns_stage_start(...)``)."""
        return self.pm.hook

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
        cls = self.component_class("generator", generator_type)
        samplers = dict(cls.samplers)
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
            cls = self.component_class(kind, type_name)
        except PluginError as exc:
            raise SpecError(f"{path}.type", str(exc)) from None
        return structure_config(cls.config_class, body, path)

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
            cls, config = self.component_class(kind, section.type), section.config
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
        return cls(config, **context)

    def provenance(self, spec: ResolvedSpec) -> dict[str, dict[str, str]]:
        """Which plugin, distribution and version provide each component of ``spec`` (stored with a run)."""
        out = {}
        for section, component in spec.components.items():
            if component is not None:
                out[section] = self.entry(COMPONENT_SECTIONS[section], component.type).as_dict()
        return out
