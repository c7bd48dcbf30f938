"""`make bench`: every benchmark in turn, each printing its own figures (minutes, not CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["encoder_lorenz.py", "generator_lorenz.py", "evaluate_speed.py"]
#: Benchmarks that need a trained run: they get the one the generator benchmark leaves behind.
ARGS = {"sampler_speed.py": ["--run", "runs/bench-generator"]}


def main() -> int:
    extra = sorted(p.name for p in HERE.glob("*.py") if p.name not in ORDER and p.name != Path(__file__).name)
    for name in ORDER + extra:
        print(f"\n=== {name} ===", flush=True)
        code = subprocess.call([sys.executable, str(HERE / name), *ARGS.get(name, [])], cwd=HERE.parent)
        if code:
            print(f"{name} failed with exit code {code}", flush=True)
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
