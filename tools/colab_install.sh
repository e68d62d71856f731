#!/usr/bin/env bash
# Colab set-up, run by each notebook's first cell. Installs only what Colab lacks
# (requirements-colab.txt, --no-deps: Colab's kernel stack, torch and numpy are never touched),
# then converts the embedded model once. Idempotent across runtime restarts: a marker next to
# the installed packages records what was installed, so a restarted runtime (whose packages
# survive) skips straight to the check; a new runtime (packages gone) installs again.
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
marker="$site/glassbox-colab.installed"
want=$(sha256sum requirements-colab.txt | cut -d' ' -f1)
if [ "$(cat "$marker" 2>/dev/null)" != "$want" ]; then
  python -m pip install --no-deps --disable-pip-version-check -r requirements-colab.txt
  echo "$want" > "$marker"
fi
python -m utils.models
