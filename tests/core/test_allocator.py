"""ldns_framework.allocator: freed blocks are reused instead of being mapped afresh (glibc only).

Each check runs in a fresh interpreter: the allocator settings are process-wide and one-way.
"""

import json
import os
import subprocess
import sys

import pytest

from ldns_framework.allocator import ENV_VARIABLE, _glibc

pytestmark = pytest.mark.skipif(_glibc() is None, reason="mallopt exists only in glibc")

#: Allocates and frees a 64 MiB tensor (above glibc's largest mmap threshold) 6 times and reports
#: the minor page faults of the last 4 allocations (the first two grow the heap to its working size).
_PROBE = """
import json, resource, torch
from ldns_framework.allocator import keep_freed_memory
kept = keep_freed_memory()
torch.ones(16 * 2**20)
torch.ones(16 * 2**20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    torch.ones(16 * 2**20)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"kept": kept, "faults": faults}))
"""


def _probe(setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != ENV_VARIABLE}
    if setting is not None:
        env[ENV_VARIABLE] = setting
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_freed_large_blocks_are_reused_without_page_faults():
    kept, default = _probe(None), _probe("0")
    assert kept["kept"] is True and default["kept"] is False
    pages = 4 * 64 * 2**20 // 4096  # what mapping the 4 blocks afresh touches
    assert default["faults"] > 0.9 * pages  # glibc maps and unmaps each block: the cost this removes
    # kept: no block mapped afresh, or once at most (another allocation may take the top of the heap)
    assert kept["faults"] < pages // 4 + 1024


#: One epoch of a one-weight regression through the Trainer, then whether the settings are in force.
_TRAIN = """
import sys, torch
import ldns_framework.allocator as allocator
from ldns_framework.spec import TrainConfig
from ldns_framework.training import Trainer
x = torch.randn(8, 1)
loss = lambda model, x: {"loss": (model(x) - 2 * x).square().mean()}
Trainer(TrainConfig(epochs=1, batch_size=4), sys.argv[1], seed=0, progress=False).fit(torch.nn.Linear(1, 1), loss, (x,))
print(allocator._applied)
"""


def test_training_applies_it(tmp_path):
    done = subprocess.run([sys.executable, "-c", _TRAIN, str(tmp_path / "stage")], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "True"
