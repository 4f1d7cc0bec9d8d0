#!/usr/bin/env bash
# Make the benchmark-only virtual environment benchmarks/.venv-bench.
#
# pytesmo (the reference for triple collocation) is a benchmark-only dependency: it is never added
# to the project's venv or pyproject. The science core under test is imported from the work tree.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
venv="$here/.venv-bench"
python="${PYTHON:-python3.11}"
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -c "$repo/constraints.txt" -r "$here/requirements.txt"
"$venv/bin/python" -m pip install --quiet --no-deps "pytesmo==0.18.1"
"$venv/bin/python" - <<'PY'
import pytesmo
from pytesmo.metrics import tcol_metrics, tcol_metrics_with_bootstrapped_ci  # noqa: F401
print(f"benchmarks/.venv-bench ready: pytesmo {pytesmo.__version__}")
PY
