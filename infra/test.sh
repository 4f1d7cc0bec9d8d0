#!/usr/bin/env bash
# The test suite: installs if needed; the fixtures start the real services from infra/stack.py.
# `infra/test.sh --faults [pytest args]` runs the fault-injection suite only (tests/faults, marker
# `faults`); any other arguments go to pytest unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
export PATH="$PWD/.venv/bin:$PATH"
args=()
for arg in "$@"; do
  if [[ "$arg" == "--faults" ]]; then
    args+=(-m faults tests/faults)
  else
    args+=("$arg")
  fi
done
exec .venv/bin/python -m pytest "${args[@]}"
