# make test | make demo | make bench: each sets up .venv from nothing if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: test demo bench setup clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned through constraints.txt (pyproject keeps a range) so that pip takes the CPU wheel.
EXAMPLE := docs/examples/ldns-negative-binomial

$(STAMP): $(PY) pyproject.toml constraints.txt tests/plugin_dist/pyproject.toml $(EXAMPLE)/pyproject.toml
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	$(PIP) install --quiet -c constraints.txt ./tests/plugin_dist
	$(PIP) install --quiet -c constraints.txt './$(EXAMPLE)[test]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q
	cd $(EXAMPLE) && ../../../$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/ldns demo --out runs/demo

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
