# Two entry points for a new user (see README):
#   make demo   install into .venv and run the paper's Sec. V sweep into ./paper_sec5.zarr, then summarise it
#   make test   install into .venv (with test extras) and run lint, type checks, the docs build and the whole
#               test suite (which also executes the example notebook)
#   make docs   build the documentation (docs/, Sphinx, warnings are errors) into docs/_build/html
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cusweep paper
	$(VENV)/bin/cusweep run sweeps/paper_sec5.toml --store paper_sec5.zarr
	$(VENV)/bin/cusweep status paper_sec5.zarr
	@echo "--- the paper's design point, read back from the store:"
	$(VENV)/bin/cusweep query paper_sec5.zarr "period == 14 um and amplitude == 1.27 angstrom and energy == 13.6 GeV and sigma_z == 9 um and bunching == 1" --vars n_coh,n_incoh,coherence_gain,photon_energy_minus,feasible
	@echo "--- the five feasible designs with the largest coherent yield (b = 1):"
	$(VENV)/bin/cusweep query paper_sec5.zarr "feasible and bunching == 1" --top 5 --by n_coh

lint: $(STAMP)
	$(VENV)/bin/ruff check cusweep tests benchmarks
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

test: $(STAMP) lint docs
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) *.zarr .pytest_cache .hypothesis docs/_build
