# make test | make demo | make bench | make fuzz: each sets up .venv from nothing if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: test demo bench fuzz setup clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned through constraints.txt (pyproject keeps a range) so that pip takes the CPU wheel.
# The test plugin and the examples are installed editable, so their code is never a stale copy.
# One installable example plugin per component kind (docs/writing-plugins.md), each with its own tests.
EXAMPLES := docs/examples/ldns-negative-binomial docs/examples/ldns-gru-encoder \
            docs/examples/ldns-ar1-generator docs/examples/ldns-csv-spikes

$(STAMP): $(PY) pyproject.toml constraints.txt tests/plugin_dist/pyproject.toml $(addsuffix /pyproject.toml,$(EXAMPLES))
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	$(PIP) install --quiet -c constraints.txt -e ./tests/plugin_dist
	for example in $(EXAMPLES); do $(PIP) install --quiet -c constraints.txt -e "./$$example[test]" || exit 1; done
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q
	for example in $(EXAMPLES); do (cd $$example && ../../../$(PY) -m pytest -q -p no:cacheprovider) || exit 1; done

demo: $(STAMP)
	$(VENV)/bin/ldns demo --out runs/demo

bench: $(STAMP)
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# The property-based fuzz of the CLI arguments, data validation, npz loader and spec loader at
# 20000 examples per test (CI runs the same tests at a modest count).
FUZZ_EXAMPLES ?= 20000
fuzz: $(STAMP)
	LDNS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/core/test_fuzz_cli.py tests/core/test_spec_robustness.py

clean:
	rm -rf $(VENV) runs .pytest_cache
