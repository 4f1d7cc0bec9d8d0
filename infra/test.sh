#!/usr/bin/env bash
# The test suite: installs if needed; the fixtures start the real services from infra/stack.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
