#!/usr/bin/env bash
# The main job: install, start the stack, train on 2017, run June 2018 through Airflow, print the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
.venv/bin/python infra/stack.py start
set -a; . "${SMFLOW_HOME:-$PWD/.smflow}/stack.env"; set +a
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python infra/main.py "$@"
