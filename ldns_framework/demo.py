"""``ldns demo``: train, sample and compare on the built-in Lorenz data, end to end.

One pipeline does everything, so the data are loaded once and the trained model is handed to
the evaluation and the report (nothing is rebuilt from the run directory).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from ldns_framework.errors import LdnsError
from ldns_framework.evaluation import format_table
from ldns_framework.pipeline import Pipeline
from ldns_framework.report import report_run
from ldns_framework.spec import apply_overrides, load_spec_file

DEMO_SPEC = Path(__file__).resolve().parents[1] / "docs" / "specs" / "lorenz-small.yaml"


def run_demo(out: Path, spec_path: str | None, overrides: Sequence[str], registry: Any,
             progress: bool = True) -> Path | None:
    """Fit (or resume) the demo run, draw as many samples as there are test trials, evaluate and
    report them; returns the report page (None when the spec has no generator).

    An existing run in ``out`` is resumed with its own spec; a ``spec_path`` or ``overrides``
    given with it must agree with that spec (the runner says where they differ), never ignored.
    """
    started = time.perf_counter()
    resume = (out / "spec.yaml").is_file()
    path = Path(spec_path) if spec_path else out / "spec.yaml" if resume else DEMO_SPEC
    if not path.is_file():
        raise LdnsError(f"{path}: demo spec not found; pass --spec (the default lives in docs/specs of a source checkout)")
    if resume:
        print(f"resuming the demo run in {out}")
    raw = apply_overrides(load_spec_file(path), list(overrides))
    pipeline = Pipeline(registry.resolve(raw), registry).fit(run_dir=out, resume=resume, progress=progress)
    if pipeline.generator is None:
        print(f"the spec has no generator; trained run in {out}")
        return None
    data = pipeline.load_data()
    samples = pipeline.sample(data.split("test").n_trials, seed=pipeline.spec.seed, progress=progress)
    sample_path = pipeline.write_samples(samples, out / "samples" / "demo.npz")
    print(f"samples: {sample_path}")
    records = pipeline.evaluate(sample_path, against="both", folds=5, progress=progress)
    print(format_table(records))
    page = report_run(out, data, pipeline.model, samples_path=sample_path)
    print(f"metrics: {out / 'metrics.json'}")
    print(f"report: {page}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s; run directory: {out}")
    return page
