# Curso «Datos de calidad y fine-tuning de LLMs» — comandos del proyecto.
#   make course   instala (idempotente) y ejecuta los 5 cuadernos en modo mini → build/
#   make test     instala (idempotente), pasa ruff y ejecuta, a la vez, los cuadernos + el ensayo del perfil full y los tests
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
# Three streams run side by side (issue 13). One stream kept the machine busy only part of the time:
# tests waited on servers, Ray and subprocesses while a core idled. Measured 30-11 with two streams:
# both cores 92-100 % busy for most of the run; clean clone 36 min 9 s -> 25 min 15 s.
#  1. on screen, on the usual service ports: the five mini notebooks under nbval, then
#     tests/good_bad/test_real_pairs_03.py (it scores the adapters notebook 03 just saved when their
#     fingerprint says they are the run it would train), then the rehearsal of the full profile of
#     notebooks 01, 02 and 05;
#  2. into build/test-suite.log, shown whole when it ends: the rest of the tests, on their own
#     services (SUITE_PORTS: other ports and build/suite, so that nothing they start or stop meets
#     stream 1's), then the rehearsal of notebooks 03 and 04 (on those ports; so that the two
#     streams end together: 02 moves between the streams as notebook 04's time changes). torch runs
#     on one thread in the tests, so the notebooks keep the two threads their figures were measured with;
#  3. the Colab check (COLAB_CHECK), which mostly waits on PyPI (pip resolves each install cell);
#     build/test-colab-check.log, shown at the end.
# Any stream failing fails `make test`; the last line says which.
COLAB_CHECK := tests/course_tools/test_colab_env.py
REAL_PAIRS := tests/good_bad/test_real_pairs_03.py
NBVAL_ARGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=900
# OMP_WAIT_POLICY=PASSIVE: with two streams on two cores, OpenMP threads spinning at every barrier
# for a descheduled sibling made notebook 03's training ~4x slower (measured 30-11).
STREAM_ENV := OMP_WAIT_POLICY=PASSIVE
SUITE_PORTS := COURSE_LLM_PORT=18080 COURSE_ARGILLA_PORT=16900 COURSE_ARGILLA_SEARCH_PORT=19200 \
	COURSE_ARGILLA_REDIS_PORT=16379 COURSE_BUILD_DIR=$(CURDIR)/build/suite
SUITE_ENV := $(STREAM_ENV) OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(SUITE_PORTS)
REHEARSE_TEST_ARGS := REHEARSE_ARGS="--pytest-args=--durations=10"
test: setup lint
	@mkdir -p build
	@COURSE_PROFILE=mini COURSE_TEST_TIMES=build/test-times-colab.tsv $(PY) -m pytest $(COLAB_CHECK) \
		-p no:cacheprovider --durations=5 > build/test-colab-check.log 2>&1 & colab=$$!; \
	( COURSE_PROFILE=mini COURSE_TEST_TIMES=build/test-times-suite.tsv $(SUITE_ENV) scripts/with_services \
		$(PY) -m pytest tests --ignore=$(COLAB_CHECK) --ignore=$(REAL_PAIRS) -p no:cacheprovider \
		--durations=30 $(PYTEST_ARGS); tests=$$?; \
	  $(STREAM_ENV) $(SUITE_PORTS) $(MAKE) --no-print-directory rehearse REHEARSE="03 04" $(REHEARSE_TEST_ARGS); \
	  rehearsal=$$?; echo "=== stream 2: tests $$tests, rehearsal 03+04 $$rehearsal (0 = passed)"; \
	  test $$tests -eq 0 && test $$rehearsal -eq 0 ) > build/test-suite.log 2>&1 & suite=$$!; \
	COURSE_PROFILE=mini COURSE_TEST_TIMES=build/test-times.tsv $(STREAM_ENV) scripts/with_services $(PY) -m pytest \
		notebooks $(REAL_PAIRS) $(NBVAL_ARGS) --durations=10 $(PYTEST_ARGS); notebooks=$$?; \
	$(STREAM_ENV) $(MAKE) --no-print-directory rehearse REHEARSE="01 02 05" $(REHEARSE_TEST_ARGS); rehearsal=$$?; \
	wait $$suite; suite=$$?; wait $$colab; colab=$$?; \
	echo "=== stream 2: the tests and the rehearsal of notebooks 03 and 04 (run beside; log: build/test-suite.log)"; \
	cat build/test-suite.log; \
	echo "=== $(COLAB_CHECK) (run beside; log: build/test-colab-check.log)"; \
	tail -n 25 build/test-colab-check.log; \
	echo "=== make test: notebooks $$notebooks, rehearsal 01+02+05 $$rehearsal, stream 2 (tests + rehearsal 03+04) $$suite, Colab check $$colab (0 = passed)"; \
	test $$notebooks -eq 0 && test $$rehearsal -eq 0 && test $$suite -eq 0 && test $$colab -eq 0

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
