"""The ``ldns`` command line: the composition root, the one place that wires the registry to the core.

Exit codes: 0 success, 2 bad input (an option, spec, data file, run directory or plugin), 1 an
internal error (a bug: please report it), 128 + the signal number when interrupted (130 for
Ctrl-C; training first commits a checkpoint and says how to resume). Errors are printed on stderr as one
line each (``error: <option, file or key>: <what was expected>``), without a traceback unless
``--debug`` is given.

Every option is checked before any work starts: numbers against their range and, for sizes,
against the memory this machine has (:mod:`ldns_framework.limits`); output paths for their
suffix, for not being a directory and for lying in a writable directory
(:mod:`ldns_framework.io.paths`). A value out of range is refused, never replaced by a default.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ldns_framework import __version__, limits
from ldns_framework.errors import LdnsError, shorten, shown_path
from ldns_framework.io.paths import output_directory, output_file
from ldns_framework.rundir import STAGES
from ldns_framework.spec import apply_overrides, load_spec_file

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Most bootstrap folds ``ldns evaluate`` accepts (each fold recomputes every metric).
MAX_FOLDS = 1000


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors: ``error: --n: expected ...`` and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = re.sub(r"^argument ([^:/ ]+)(?:/\S+)?: ", r"\1: ", message)
        print(f"error: {shorten(message, 300)} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _integer(low: int, high: int, what: str = "an integer") -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]; anything else is refused with the range."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            bounds = f">= {low}" if high >= limits.INT64_MAX else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected {what} {bounds}, got {shorten(text)!r}")
        return value

    return parse


_COUNT = _integer(1, limits.INT64_MAX)
_SEED = _integer(0, limits.SEED_MAX, "a seed")


def _device(text: str) -> str:
    """An argparse type: a device name of the form ``run.device`` takes (whether this machine has it is
    checked when the run is loaded)."""
    if not limits.DEVICE_FORM.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {shorten(text)!r}")
    return text


def _registry(args: argparse.Namespace) -> Any:
    from ldns_registry import Registry

    return Registry.discover(disabled=args.disable_plugin, strict=True if args.strict_plugins else None,
                             trace=True if args.trace_plugins else None)


def _resolved_spec(args: argparse.Namespace, registry: Any) -> Any:
    return registry.resolve(_overridden(args.spec, args.set))


def _overridden(spec_source: Any, overrides: list[str]) -> dict[str, Any]:
    """The spec file with ``--set`` applied; what a type switch dropped is said on stderr."""
    notes: list[str] = []
    raw = apply_overrides(load_spec_file(spec_source), overrides, notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return raw


def cmd_plugins(args: argparse.Namespace) -> int:
    registry = _registry(args)
    components = [entry.as_dict() for entry in registry.catalogue]
    if args.verbose:
        for row in components:
            try:
                cls = registry.component_class(row["kind"], row["name"])
                row["config"] = f"{cls.config_class.__module__}.{cls.config_class.__qualname__}"
            except LdnsError as exc:
                row["error"] = str(exc)
    failures = [{"plugin": f.provider.plugin, "distribution": f.provider.distribution,
                 "version": f.provider.version, "error": f.error} for f in registry.failures.values()]
    conflicts = [c.message() for c in registry.catalogue.conflicts.values()]
    if args.json:
        print(json.dumps({"components": components, "failures": failures, "conflicts": conflicts,
                          "disabled": sorted(registry.disabled)}, indent=2))
        return EXIT_OK
    columns = ("kind", "name", "plugin", "distribution", "version", "summary")
    widths = {c: max([len(c)] + [len(str(r[c])) for r in components]) for c in columns[:-1]}
    print("  ".join(c.upper().ljust(widths.get(c, 0)) for c in columns))
    for row in components:
        print("  ".join(str(row[c]).ljust(widths.get(c, 0)) for c in columns))
        for extra in ("config", "error"):
            if extra in row:
                print(f"    {extra}: {row[extra]}")
    for failure in failures:
        print(f"FAILED plugin {failure['plugin']} ({failure['distribution']} {failure['version']}): {failure['error']}")
    for conflict in conflicts:
        print(f"CONFLICT {conflict}")
    if registry.disabled:
        print(f"disabled: {', '.join(sorted(registry.disabled))}")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    spec = _resolved_spec(args, _registry(args))
    sys.stdout.write(spec.to_yaml())
    print(f"{args.spec}: valid", file=sys.stderr)
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    registry = _registry(args)
    spec = _resolved_spec(args, registry)
    data = registry.build("data", spec.components["data"]).load()
    summary = data.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return EXIT_OK
    print(f"trials       {summary['trials']}  ({', '.join(f'{k} {v}' for k, v in summary['splits'].items())})")
    print(f"neurons      {summary['neurons']}")
    print(f"bins         {summary['bins']} x {summary['bin_width_s'] * 1000:g} ms")
    print(f"lengths      {_lengths_line(data)}")
    print(f"mean rate    {summary['mean_count_per_bin']:.4f} spikes/bin ({summary['mean_rate_hz']:.2f} Hz)")
    for name, shape in summary["covariates"].items():
        print(f"covariate    {name} {tuple(shape)}")
    listing = summary["metadata"].get("listing")
    if isinstance(listing, Mapping):  # what the source selected, in its own words (label -> line)
        for label, line in listing.items():
            print(f"{shorten(str(label), 12):<12} {line}")
    return EXIT_OK


def _lengths_line(data: Any) -> str:
    """Trial lengths in words: one number for fixed-length data, else min, mean and max."""
    lengths = data.lengths
    if not data.n_trials or (lengths == data.n_time).all():
        return f"every trial {data.n_time} bins (fixed length)"
    return f"min {int(lengths.min())}, mean {float(lengths.mean()):.1f}, max {int(lengths.max())}"


def cmd_spec_docs(args: argparse.Namespace) -> int:
    from ldns_framework.specdocs import render

    if args.out != "-":
        output_file(args.out, (".md",))
    registry = _registry(args)
    builtin = [(e.kind, e.name, registry.component_class(e.kind, e.name), e.summary, e.default)
               for e in registry.catalogue if args.all or e.provider.distribution == "ldns-framework"]
    text = render(builtin)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        from ldns_framework.rundir import write_text

        write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from ldns_framework.pipeline import Pipeline

    out = _run_directory(args.out)
    registry = _registry(args)
    if args.spec is None:
        if not args.resume:
            raise LdnsError("train: give a SPEC, or --resume to continue the run in --out")
        if not (out / "spec.yaml").is_file():
            raise LdnsError(f"{out}: not a run directory (no spec.yaml) to resume")
        spec_source: Any = out / "spec.yaml"
    else:
        spec_source = args.spec
    pipeline = Pipeline(registry.resolve(_overridden(spec_source, args.set)), registry)
    pipeline.fit(run_dir=out, until=args.until, resume=args.resume, progress=not args.no_progress)
    if pipeline.fabric.is_global_zero:  # data-parallel: one line for the run, not one per process
        print(f"run directory: {out}")
    return EXIT_OK


def _run_directory(path: str) -> Path:
    """``--out`` of train and demo: a new or empty directory, or a run (which holds spec.yaml).

    Any other non-empty directory is refused: the run's files would land among the user's.
    """
    out = output_directory(path)
    if out.is_dir() and not (out / "spec.yaml").is_file() and any(out.iterdir()):
        raise LdnsError(f"--out: {shown_path(out)} is a non-empty directory that is not a run directory "
                        "(no spec.yaml); choose a new or empty directory")
    return out


def _load_for_inference(args: argparse.Namespace) -> Any:
    """The run of ``args.run`` reopened on ``--device`` (default: its own device when this machine has it)."""
    from ldns_framework.pipeline import Pipeline

    if args.device is not None:
        limits.check_device(args.device, "--device")
    return Pipeline.load(args.run, _registry(args), device=args.device)


def cmd_encode(args: argparse.Namespace) -> int:
    import attrs

    from ldns_framework.io.encodings import SUFFIXES, write_encodings
    from ldns_framework.io.provenance import run_provenance

    output_file(args.out, SUFFIXES)
    pipeline = _load_for_inference(args)
    if args.data is not None:
        encoded = pipeline.encode(_data_from_argument(args.data, pipeline.registry))
    else:
        encoded = pipeline.encode_split(args.split)
    provenance = {k: v for k, v in run_provenance(args.run).items() if k in ("run", "spec", "packages")}
    write_encodings(attrs.evolve(encoded, provenance=provenance), args.out)
    print(f"wrote {args.out}: {encoded.latents.shape[0]} trials, latents {encoded.latents.shape}, rates {encoded.rates.shape}")
    return EXIT_OK


def _sampler_arguments(args: argparse.Namespace, pipeline: Any) -> dict[str, Any]:
    """``--sampler``, ``--steps``, ``--eta``, ``--sde`` and ``--guidance`` as keyword arguments of ``sample``, checked against the
    samplers the run's generator declares (each error names the option)."""
    import attrs

    from ldns_framework.config import did_you_mean

    generator_type = pipeline.spec.components["generator"].type
    samplers = pipeline.registry.component_class("generator", generator_type).samplers
    if args.sampler is not None and args.sampler not in samplers:
        raise LdnsError(f"--sampler: generator {generator_type!r} has no sampler {args.sampler!r}"
                        f"{did_you_mean(args.sampler, list(samplers))}; its samplers: {', '.join(samplers)}")
    chosen = args.sampler or pipeline.spec.sample.sampler
    kwargs: dict[str, Any] = {"sampler": args.sampler}
    fields = [f.name for f in attrs.fields(samplers[chosen])]
    for option in ("steps", "eta", "sde", "guidance"):
        value = getattr(args, option)
        if value is None:
            continue
        if option not in fields:
            listed = f"its options: {', '.join(fields)}" if fields else "it has no options"
            raise LdnsError(f"--{option}: sampler {chosen!r} of generator {generator_type!r} takes no {option} option"
                            f" ({listed})")
        kwargs[option] = value
    return kwargs


def cmd_sample(args: argparse.Namespace) -> int:
    from ldns_framework.io.provenance import run_provenance
    from ldns_framework.io.samples import check_output

    check_output(args.out)
    condition = _load_condition(args.condition) if args.condition else None
    if args.angle:
        condition = _repeated("--angle", _angle_rows(args.angle, args.angle_units), args.n)
    lengths = _load_lengths(args.lengths, args) if args.lengths else None
    pipeline = _load_for_inference(args)
    check_output(args.out, run_provenance(args.run))  # e.g. an NWB file needs whole-millisecond bins
    if pipeline.generator is None:
        raise LdnsError(f"{args.run}: the run has no trained generator; train every stage first "
                        f"(`ldns train --resume --out {args.run}`)")
    _check_sample_size(args, pipeline.model, lengths)
    if args.from_split:
        condition = _repeated("--from-split", _split_conditions(pipeline, args.from_split), args.n)
    samples = pipeline.sample(args.n, length=args.length, lengths=lengths, condition=condition, seed=args.seed,
                              observation=args.observation, batch_size=args.batch_size,
                              progress=not args.no_progress, **_sampler_arguments(args, pipeline))
    path = pipeline.write_samples(samples, args.out)  # with the run's provenance
    print(f"wrote {path}: {samples.counts.shape[0]} trials x {samples.counts.shape[1]} bins x {samples.counts.shape[2]} neurons "
          f"({samples.sampler_label}, observation {samples.observation}, seed {samples.seed})")
    return EXIT_OK


def _angle_rows(angles: Sequence[float], units: str) -> Any:
    """``--angle``: directions as (k, 2) [cos, sin] rows, the form angle conditioners validate."""
    import numpy as np

    theta = np.asarray(angles, dtype=np.float64)
    if not np.isfinite(theta).all():
        raise LdnsError(f"--angle: expected finite angles in {units}, got {shorten(list(angles))}")
    theta = np.radians(theta) if units == "degrees" else theta
    return np.stack([np.cos(theta), np.sin(theta)], axis=1)


def _split_conditions(pipeline: Any, split: str) -> Any:
    """``--from-split``: the conditions of the split's real trials (e.g. unseen test trajectories), in
    the units the run's conditioner validates."""
    conditioner = pipeline.model.conditioner
    if conditioner is None or conditioner.kind is None:
        raise LdnsError("--from-split: the run's model is unconditional; drop --from-split")
    data = pipeline.load_data()
    if split not in data.splits:
        raise LdnsError(f"--from-split: the run's data have no split {shorten(split)!r}; splits: "
                        f"{', '.join(data.splits)}")
    if not len(data.splits[split]):
        raise LdnsError(f"--from-split: the split {shorten(split)!r} of the run's data is empty")
    return conditioner.user_conditions(data, data.splits[split])


def _repeated(option: str, conditions: Any, n: int) -> Any:
    """Each of the k conditions for n / k consecutive trials (n a multiple of k)."""
    import numpy as np

    k = len(conditions)
    if n % k:
        raise LdnsError(f"--n: expected a multiple of the {k} conditions {option} gives (each gets --n / {k} "
                        f"trials), got {n}")
    return np.repeat(np.asarray(conditions), n // k, axis=0)


def _check_sample_size(args: argparse.Namespace, model: Any, lengths: Any = None) -> None:
    """Refuse ``--n`` x ``--length`` when the samples (counts, rates and latents, 4 bytes each)
    would not fit in memory, before anything is drawn."""
    length = int(lengths.max()) if lengths is not None else args.length or model.n_time
    channels = 2 * model.n_neurons + int(model.latent_stats.mean.shape[0])
    option = "--length" if args.length and args.length > model.n_time else "--n"
    limits.check_array(option, {"--n": args.n, "--length": length}, 4 * channels)


def _load_lengths(path: str, args: argparse.Namespace) -> Any:
    """``--lengths``: an .npy array, or an .npz holding a 'lengths' array, of --n whole numbers >= 1."""
    if args.length:
        raise LdnsError("--lengths: give --length (every trial) or --lengths (one per trial), not both")
    lengths = _load_option_array("--lengths", path, "lengths")
    if lengths.shape != (args.n,) or lengths.dtype.kind not in "iu" or (lengths.size and lengths.min() < 1):
        raise LdnsError(f"--lengths: {shorten(path)}: expected {args.n} whole numbers >= 1 (one per trial, --n), "
                        f"got an array of shape {lengths.shape} and dtype {lengths.dtype}")
    return lengths


def _load_option_array(option: str, path: str, key: str) -> Any:
    """The array an option names: an .npy file, or the ``key`` array of an .npz file."""
    from ldns_framework.io.npz import NpzFile, read_npy

    if path.endswith(".npz"):
        with NpzFile(path) as archive:
            if key not in archive:
                raise archive.missing(key)
            return archive.read(key)
    if path.endswith(".npy"):
        return read_npy(path)
    raise LdnsError(f"{option}: expected a .npy or .npz file, got {shorten(path)!r}")


def _load_condition(path: str) -> Any:
    """``--condition``: an .npy array, or an .npz holding a 'condition' array; real numbers only."""
    condition = _load_option_array("--condition", path, "condition")
    if condition.dtype.kind not in "iuf":
        raise LdnsError(f"--condition: {shorten(path)}: expected a real numeric array, got dtype {condition.dtype}")
    return condition


def _data_from_argument(source: str, registry: Any) -> Any:
    """``--data``: a spec (.yaml/.yml) whose data section is used, or a data file read by the data
    source registered for its suffix."""
    if not source.endswith((".yaml", ".yml")):
        return registry.build("data", {"type": registry.data_type_for_file(source), "path": source},
                              path="--data").load()
    section = load_spec_file(source).get("data")
    if not isinstance(section, Mapping):
        raise LdnsError(f"{source}: expected a spec with a data section (a mapping with a type), or a data file")
    return registry.build("data", section, path="data").load()


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ldns_framework.evaluation import format_table
    from ldns_framework.pipeline import Pipeline
    from ldns_framework.rundir import read_json

    out = output_file(args.out, (".json",)) if args.out else Path(args.run) / "metrics.json"
    pipeline = Pipeline.load(args.run, _registry(args))
    records = pipeline.evaluate(args.samples, metrics=args.metric or None, against=args.against, folds=args.folds,
                                seed=args.seed, protocol=args.protocol, out=out, progress=not args.no_progress,
                                workers=args.workers)
    print(format_table(records, read_json(out, dict).get("meta", {}).get("not_applicable", ())))
    print(f"wrote {out}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from ldns_framework.pipeline import Pipeline
    from ldns_framework.report import report_run

    extra = {}
    for item in args.extra:
        name, _, path = item.partition("=")
        if not name or not path:
            raise LdnsError(f"--extra: expected NAME=FILE, got {shorten(item)!r}")
        extra[name] = path
    pipeline = Pipeline.load(args.run, _registry(args))
    data = pipeline.load_data()
    if args.split is not None and not len(data.splits.get(args.split, ())):
        raise LdnsError(f"--split: expected a split of the run's data with trials "
                        f"({', '.join(k for k, v in data.splits.items() if len(v))}), got {shorten(args.split)!r}")
    page = report_run(args.run, data, pipeline.model, samples_path=args.samples, metrics_path=args.metrics,
                      extra_samples=extra, split=args.split)
    print(f"report: {page}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from ldns_framework.testing.command import run_check_command

    registry = _registry(args)
    data = _data_from_argument(args.data, registry) if args.data else None
    return run_check_command(args.kind, args.name, args.set, registry, progress=not args.no_progress,
                             data=None if data is None else (lambda: data))


def cmd_demo(args: argparse.Namespace) -> int:
    from ldns_framework.demo import run_demo

    run_demo(_run_directory(args.out), args.spec, args.set, _registry(args), progress=not args.no_progress)
    return EXIT_OK


def cmd_make_synthetic_nwb(args: argparse.Namespace) -> int:
    from ldns_framework.nwb.synthetic import write_synthetic_mc_maze

    for path in write_synthetic_mc_maze(args.directory, args.preset, args.seed, full_grid=args.full_grid):
        print(path)
    return EXIT_OK


def _add_spec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="path of a YAML spec")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec key, e.g. --set encoder.latent_dim=16 (repeatable)")


def _add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=_device, help="where to run: auto, cpu, cuda, cuda:N or mps (default: the "
                                                      "run's run.device when this machine has it, else auto)")


def build_parser() -> argparse.ArgumentParser:
    from ldns_registry.catalogue import KINDS

    parser = _Parser(prog="ldns", description="Latent diffusion models of neural spiking data.")
    parser.add_argument("--version", action="version", version=f"ldns-framework {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="do not load the plugin NAME (repeatable; also LDNS_DISABLE_PLUGINS=a,b)")
    parser.add_argument("--strict-plugins", action="store_true",
                        help="fail if any plugin fails to load or conflicts (also LDNS_STRICT_PLUGINS=1)")
    parser.add_argument("--trace-plugins", action="store_true", help="trace hook calls on stderr (also LDNS_TRACE_PLUGINS=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plugins = commands.add_parser("plugins", help="list registered components and broken plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("--verbose", action="store_true", help="also import each component and show its config class")
    plugins.set_defaults(func=cmd_plugins)

    validate = commands.add_parser("validate", help="validate a spec and print it with every default filled in")
    _add_spec_args(validate)
    validate.set_defaults(func=cmd_validate)

    data = commands.add_parser("data", help="load the spec's data source and summarise it")
    _add_spec_args(data)
    data.add_argument("--json", action="store_true", help="machine-readable output")
    data.set_defaults(func=cmd_data)

    train = commands.add_parser("train", help="train every stage of a spec into a run directory")
    train.add_argument("spec", nargs="?", help="path of a YAML spec (omit with --resume to use the run's own)")
    train.add_argument("--out", required=True, help="run directory: new or empty, or a run to --resume")
    train.add_argument("--until", choices=STAGES, metavar="STAGE",
                       help=f"stop after this stage ({', '.join(STAGES)})")
    train.add_argument("--resume", action="store_true", help="continue a stopped run from its checkpoints")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    train.add_argument("--no-progress", action="store_true", help="no progress bars (one summary line per stage)")
    train.set_defaults(func=cmd_train)

    encode = commands.add_parser("encode", help="infer latents and rates of real trials")
    encode.add_argument("run", help="run directory")
    group = encode.add_mutually_exclusive_group()
    group.add_argument("--split", default="test", choices=("train", "val", "test", "all"), help="split of the run's data")
    group.add_argument("--data", help="other data: an .npz file or a spec with a data section")
    encode.add_argument("--out", required=True, help="output .npz, or .nwb (an NWB file; never replaces one)")
    _add_device_arg(encode)
    encode.set_defaults(func=cmd_encode)

    sample = commands.add_parser("sample", help="generate spikes from a trained run")
    sample.add_argument("run", help="run directory")
    sample.add_argument("--n", type=_COUNT, required=True, help="number of trials (checked against the memory available)")
    sample.add_argument("--length", type=_COUNT, help="bins per trial (default: the training length)")
    sample.add_argument("--lengths", help="per-trial lengths (.npy, or .npz with 'lengths'): --n whole numbers "
                                          ">= 1; the samples are trimmed to them (variable-length data)")
    sample.add_argument("--guidance", type=float, help="classifier-free guidance scale of the sampler, for "
                                                       "generators that have one (1 = plain conditional)")
    given = sample.add_mutually_exclusive_group()
    given.add_argument("--condition", help="condition array (.npy, or .npz with 'condition') for conditional models")
    given.add_argument("--angle", type=float, action="append", metavar="DEG",
                       help="a reach direction for angle-conditioned models; repeat for several (each gets --n / k "
                            "consecutive trials); without a condition such models draw directions uniformly")
    given.add_argument("--from-split", metavar="SPLIT",
                       help="condition on the real trials of this split of the run's data (e.g. test: unseen "
                            "trajectories); each gets --n / (trials in the split) consecutive trials")
    sample.add_argument("--angle-units", choices=("degrees", "radians"), default="degrees", help="units of --angle")
    sample.add_argument("--sampler", help="a sampler the run's generator declares (default: the spec's sample.sampler)")
    sample.add_argument("--steps", type=_COUNT, help="the sampler's steps option, for samplers that have one "
                                                  "(default: the spec's)")
    sample.add_argument("--eta", type=float, help="the sampler's eta option (noise per step: 0 deterministic, 1 ancestral), "
                                                 "for samplers that have one (default: the spec's)")
    sample.add_argument("--sde", action="store_const", const=True,
                        help="set the sampler's sde option (solve the SDE, not the ODE), for samplers that have one")
    sample.add_argument("--seed", type=_SEED, default=0, help="seed of the latents (the spikes use seed + 1)")
    sample.add_argument("--observation", help="observation model to draw spikes with (default: the run's)")
    sample.add_argument("--batch-size", type=_COUNT, help="trials per batch (default: the spec's sample.batch_size)")
    sample.add_argument("--out", required=True, help="output .npz, or .nwb (an NWB file with spike times, trials "
                                                     "and the exact counts; never replaces one)")
    sample.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_device_arg(sample)
    sample.set_defaults(func=cmd_sample)

    evaluate = commands.add_parser("evaluate", help="compare generated samples with real trials (metrics.json)")
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--samples", help="samples .npz or .nwb (default: the newest RUN/samples/*.npz or *.nwb)")
    evaluate.add_argument("--against", choices=("train", "test", "both"), default="both", help="real split(s) to compare with")
    evaluate.add_argument("--folds", type=_integer(1, MAX_FOLDS), default=5,
                          help="bootstrap folds (mean and spread are reported)")
    evaluate.add_argument("--protocol", choices=("bootstrap", "matched", "full"), default="bootstrap",
                          help="how folds are drawn (bootstrap: as the paper; matched: all at half size; full: no resampling)")
    evaluate.add_argument("--metric", action="append", default=[], metavar="NAME", help="only these metrics (repeatable)")
    evaluate.add_argument("--seed", type=_SEED, default=0, help="seed of the folds and the Poisson baseline")
    max_workers = limits.THREADS_PER_CPU * limits.cpu_count()
    evaluate.add_argument("--workers", type=_integer(1, max_workers), default=min(2, limits.cpu_count()),
                          help=f"threads for the folds (at most {max_workers}: {limits.THREADS_PER_CPU} per CPU)")
    evaluate.add_argument("--out", help="output .json file (default: RUN/metrics.json)")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.set_defaults(func=cmd_evaluate)

    report = commands.add_parser("report", help="write RUN/report/index.html with figures")
    report.add_argument("run", help="run directory")
    report.add_argument("--samples", help="samples .npz or .nwb (default: the newest RUN/samples/*.npz or *.nwb)")
    report.add_argument("--metrics", help="metrics.json (default: RUN/metrics.json when present)")
    report.add_argument("--extra", action="append", default=[], metavar="NAME=FILE",
                        help="another sample set to show beside the model's (repeatable)")
    report.add_argument("--split", help="real split shown against the samples (default: test, else train)")
    report.set_defaults(func=cmd_report)

    check = commands.add_parser("check", help="run the conformance kit on an installed component")
    check.add_argument("kind", choices=KINDS, help="component kind")
    check.add_argument("name", help="registered name, e.g. poisson")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config option of the component")
    check.add_argument("--data", help="data the checks use (conditioners, metrics): a spec with a data section, or a "
                                      "data file (default: the kit's synthetic data)")
    check.add_argument("--no-progress", action="store_true", help="no progress bars")
    check.set_defaults(func=cmd_check)

    demo = commands.add_parser("demo", help="the whole pipeline on built-in Lorenz data (a few minutes on a CPU)")
    demo.add_argument("--out", default="runs/demo", help="run directory, new or empty (an existing run is resumed)")
    demo.add_argument("--spec", help="spec to run (default: docs/specs/lorenz-small.yaml of this checkout)")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars (one summary line per stage)")
    demo.set_defaults(func=cmd_demo)

    synthetic = commands.add_parser("make-synthetic-nwb", help="write SYNTHETIC NWB files laid out as the "
                                    "MC_Maze recording (DANDI 000128) in DIR/000128/sub-Jenkins/")
    synthetic.add_argument("directory", metavar="DIR", help="directory to write in (created if missing)")
    synthetic.add_argument("--preset", required=True, choices=("mc_maze-mini", "mc_maze"),
                           help="mc_maze-mini: 20 units, 40 + 10 trials; mc_maze: the real sizes, 182 units, "
                                "2295 + 574 trials")
    synthetic.add_argument("--seed", type=_SEED, default=0, help="seed of everything drawn (default 0)")
    synthetic.add_argument("--full-grid", action="store_true",
                           help="behaviour on every ms of the recording, NaN between trials (default: inside "
                                "trials only, as the real file)")
    synthetic.set_defaults(func=cmd_make_synthetic_nwb)

    spec_docs = commands.add_parser("spec-docs", help="write the spec reference generated from the config classes")
    spec_docs.add_argument("--out", default="docs/spec-reference.md", help="output .md file, or - for stdout")
    spec_docs.add_argument("--all", action="store_true", help="include third-party plugins")
    spec_docs.set_defaults(func=cmd_spec_docs)
    return parser


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command, turning errors into one-line messages and exit codes.

    :class:`LdnsError` is bad input (exit 2). An ``OSError`` from the system (permission denied,
    disk full) is the environment's, not a bug: also exit 2, naming the file when it has one.
    Anything else is an internal error (exit 1), reported on one line with a pointer to ``--debug``.
    """
    try:
        return func(args)
    except LdnsError as exc:
        if args.debug:
            traceback.print_exc()
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:  # Ctrl-C; or training's Interrupted: checkpoint committed, says how to resume
        print(str(exc) or "interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_INTERRUPTED)
    except OSError as exc:
        if args.debug:
            traceback.print_exc()
        if exc.errno is None:
            return _internal_error(exc)
        where = shown_path(exc.filename) if exc.filename is not None else "system"
        print(f"error: {where}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    detail = shorten(" ".join(str(exc).split()), 300)
    print(f"error: internal error: {type(exc).__name__}: {detail} (a bug: rerun with --debug for a traceback "
          "and report it)", file=sys.stderr)
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ldns`` entry point; returns the exit status (argparse's exits included)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a refused option (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    return run_command(args.func, args)


if __name__ == "__main__":
    raise SystemExit(main())
