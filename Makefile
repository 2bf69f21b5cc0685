# Two entry points for a new user (see README):
#   make demo   install into .venv and run the paper's Sec. V sweep into ./paper_sec5.zarr, then summarise it
#   make test   install into .venv (with test extras) and run lint, type checks, the docs build and the whole
#               test suite (which also executes the example notebook)
#   make docs   build the documentation (docs/, Sphinx, warnings are errors) into docs/_build/html
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs browser bench clean

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
	@echo "    (n_coh, n_incoh: the paper's numbers, photons per unit theta^2 at zero angle [1/rad**2];"
	@echo "     photons_coh, photons_incoh: photon counts per bunch, integrated over angle)"
	$(VENV)/bin/cusweep query paper_sec5.zarr "period == 14 um and amplitude == 1.27 angstrom and energy == 13.6 GeV and sigma_z == 9 um and bunching == 1" --vars n_coh,photons_coh,n_incoh,photons_incoh,coherence_gain,energy_fraction,resonance_energy,feasible
	@echo "--- the five feasible designs with the most coherent photons per bunch (b = 1):"
	$(VENV)/bin/cusweep query paper_sec5.zarr "feasible and bunching == 1" --top 5 --by photons_coh
	@echo "--- the best feasible design for LCLS (8.3 keV), on the grid and refined:"
	$(VENV)/bin/cusweep best paper_sec5.zarr --by photons_coh --facility lcls

lint: $(STAMP)
	$(VENV)/bin/ruff check cusweep tests benchmarks
	$(VENV)/bin/mypy

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# the browser tests of `cusweep explore` drive Debian's headless Chromium through its chromedriver
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	    echo "installing Debian's chromium and chromium-driver (for the browser tests)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

test: $(STAMP) browser lint docs
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) *.zarr .pytest_cache .hypothesis docs/_build
