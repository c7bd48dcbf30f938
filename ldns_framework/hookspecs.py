"""Hook specifications: the contract between ldns-framework and its plugins.

A plugin is a module named by an entry point in the ``ldns_framework`` group. It implements
any of these hooks with ``@ldns_framework.hookimpl``. Hook arguments are add-only within a
plugin API version (``ldns_framework.PLUGIN_API_VERSION``); implementations may accept any
subset of the arguments, as pluggy allows.

A plugin cannot break the framework or the other plugins. Whatever it raises at import, in
``ldns_register_components``, when its component's module is imported or its class is built, or in
a lifecycle hook (``SystemExit`` from ``sys.exit`` and a ``KeyboardInterrupt`` it raises itself
included) is reported with the plugin's name and distribution:

- at import or registration, the plugin is recorded as failed and listed by ``ldns plugins``
  (``FAILED plugin NAME (DIST VERSION): ...``); none of its components or hooks are kept, even
  those added before the error. It is fatal only when a spec needs a component it may have
  provided.
- when a component is built, the error is one line naming the component, plugin and distribution.
  Raise ``ldns_framework.SpecError`` or ``DataError`` yourself for a bad option or file: those
  reach the user unchanged.
- in a lifecycle hook, a one-line ``warning:`` on stderr (once per plugin and hook); the other
  plugins' hooks still run and training goes on.

``LDNS_STRICT_PLUGINS=1`` (``--strict-plugins``) makes failures at import, registration and in
hooks fatal. A real Ctrl-C or SIGTERM arriving while plugin code runs is not the plugin's failure:
it stops the program as usual.

Docstrings here are the plugin-author documentation (a test checks every hook has one).
"""

from __future__ import annotations

from typing import Any

from ldns_framework._markers import hookspec


@hookspec
def ldns_register_components(registrar: Any) -> None:
    """Register the components this plugin provides.

    Call ``registrar.add(kind, name, "package.module:ClassName", summary="...")`` once per
    component. ``kind`` is one of ``encoder``, ``observation``, ``generator``, ``conditioner``,
    ``data``, ``metric``; ``name`` is what specs write as ``type:``. Give an import string, not
    the class: discovery must stay fast and must not import torch-heavy modules. The class is
    imported when a spec uses it (or ``ldns plugins --verbose`` lists it) and must define
    ``config_class``, a frozen attrs class of ``ldns_framework.option`` fields (an option
    without a default is required: a spec that leaves it out gets ``section.key: required
    option missing``).

    Optional keywords of ``add``:

    - ``default=True``: this component is the spec's type for its kind when a spec leaves
      ``type`` out. Two installed defaults for one kind are an error naming both plugins,
      raised when a spec needs the default.
    - ``rank=<number>``: ordering hint; listings, and the evaluation's metrics, go by rank and
      then name (unranked components come last).
    - ``file_suffixes=(".npz",)``: for a data source that reads the one file named by its
      ``path`` option, the suffixes it reads, so ``--data FILE`` picks it.

    Registration is all or nothing: if the hook raises, none of the components it added are kept.

    Example::

        @hookimpl
        def ldns_register_components(registrar):
            registrar.add("observation", "negative-binomial",
                          "my_pkg.nb:NegativeBinomial", summary="Gamma-Poisson counts")
    """


@hookspec
def ldns_stage_start(stage: str, run_dir: Any, spec: Any) -> None:
    """Called before a pipeline stage runs (``data``, ``encoder``, ``observation``, ...).

    ``run_dir`` is the run directory (a ``pathlib.Path``) and ``spec`` the resolved spec
    (``ldns_framework.spec.ResolvedSpec``). Use it to start a logger or a timer. Stages that a
    resumed run finds already complete are not started again.
    """


@hookspec
def ldns_stage_end(stage: str, run_dir: Any, summary: dict) -> None:
    """Called after a pipeline stage completed, with a JSON-ready ``summary`` of what it produced
    (for a training stage: epochs run, best epoch, best validation loss)."""


@hookspec
def ldns_epoch_end(stage: str, epoch: int, record: dict) -> None:
    """Called after every training epoch of every stage, with the record written to the stage's
    ``log.jsonl`` (``epoch``, ``step``, ``lr``, ``train_<part>``, ``val_<part>`` when validated,
    ``seconds``). Use it to forward metrics to an experiment tracker. Called on rank zero only."""


@hookspec
def ldns_samples_written(path: Any, n_trials: int, sampler: str) -> None:
    """Called after generated samples were written to ``path`` (a ``pathlib.Path``; ``.npz``
    today), with the number of trials and the name of the sampler used (a key of the run's
    generator's ``samplers``)."""
