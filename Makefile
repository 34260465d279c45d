# Curso «Datos de calidad y fine-tuning de LLMs» — comandos del proyecto.
#   make course   instala (idempotente) y ejecuta los 5 cuadernos en modo mini → build/
#   make test     instala (idempotente), pasa ruff y ejecuta toda la batería de tests y el ensayo del perfil full
#   make rehearse ensaya el perfil full de los 5 cuadernos en CPU, con un Hub local de sustitutos
#   make lab      abre JupyterLab en notebooks/
SHELL := /bin/bash
# Python 3.11, 3.12 or 3.13; empty: scripts/setup picks the first one it finds and says which.
PYTHON ?=
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

.PHONY: help setup course test test-unit lint rehearse lab sync clean

help:
	@sed -n '2,5p' Makefile

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml scripts/setup
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/setup
	@touch $(STAMP)

course: setup
	COURSE_PROFILE=mini scripts/with_services $(PY) scripts/run_course.py

# Where the time went: the 40 slowest tests on screen, and wall + CPU seconds of every test and
# notebook cell in build/test-times*.tsv (CPU does not follow the machine's load; tests/conftest.py).
# The Colab check (COLAB_CHECK) mostly waits on PyPI (pip resolves each install cell: minutes of
# wall time for seconds of CPU), so it runs beside the main suite instead of before it; its
# output is shown at the end and its failure fails `make test`.
# The notebooks run before the tests: tests/good_bad/test_real_pairs_03.py then scores the adapters
# notebook 03 saved in build/ when their fingerprint says they are the run it would train (issue 13).
COLAB_CHECK := tests/course_tools/test_colab_env.py
test: setup lint
	@mkdir -p build
	@COURSE_PROFILE=mini COURSE_TEST_TIMES=build/test-times-colab.tsv $(PY) -m pytest $(COLAB_CHECK) \
		-p no:cacheprovider --durations=5 > build/test-colab-check.log 2>&1 & colab=$$!; \
	COURSE_PROFILE=mini COURSE_TEST_TIMES=build/test-times.tsv scripts/with_services $(PY) -m pytest notebooks tests \
		--ignore=$(COLAB_CHECK) --nbval-lax --nbval-current-env --nbval-cell-timeout=900 --durations=40 $(PYTEST_ARGS); \
	status=$$?; wait $$colab; colab_status=$$?; \
	echo "=== $(COLAB_CHECK) (run beside the suite; log: build/test-colab-check.log)"; \
	tail -n 25 build/test-colab-check.log; \
	test $$status -eq 0 && test $$colab_status -eq 0
	$(MAKE) rehearse REHEARSE_ARGS="--pytest-args=--durations=10"

# Full profile on CPU against stand-ins served by a local Hub (README: «Ensayo del perfil full»).
# REHEARSE=03 runs one notebook; the services use the usual COURSE_*_PORT variables.
REHEARSE ?=
REHEARSE_ARGS ?=
rehearse: setup
	$(PY) -m rehearsal run $(REHEARSE) $(REHEARSE_ARGS)

# ruff's lint and format checks over src, notebooks, tests, scripts and benchmarks (pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-unit: setup
	COURSE_PROFILE=mini $(PY) -m pytest tests $(PYTEST_ARGS)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

sync: setup
	$(PY) scripts/sync_notebooks.py

clean:
	rm -rf build .pytest_cache
