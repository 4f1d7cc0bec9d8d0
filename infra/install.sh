#!/usr/bin/env bash
# Create .venv and install the project with its pinned constraints (skipped when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"' 
stamp=.venv/.smflow-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=25" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
echo "installing smflow and its pinned dependencies into .venv (a few minutes on a fresh machine)..."
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import smflow.quality, airflow, mlflow, great_expectations, xarray, pyresample, pystac, smflow"
echo "$want" > "$stamp"
