#!/usr/bin/env bash
# The test suite: installs if needed; the fixtures start the real services from infra/stack.py.
# `infra/test.sh --faults [pytest args]` runs the fault-injection suite only (tests/faults, marker
# `faults`); `infra/test.sh --celery` the CeleryExecutor stack's end-to-end run only (marker
# `celery`, also part of the default run); any other arguments go to pytest unchanged.
# Opt-outs of the default run: SMFLOW_SKIP_CELERY_E2E=1 (the CeleryExecutor e2e) and
# SMFLOW_SKIP_GLOBAL_E2E=1 (the global 0.25 deg e2e, tests/e2e/test_global_dag.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/install.sh
# The catalogue page's browser test (tests/publish/test_catalogue_page.py) drives Debian's chromium
# through playwright (never `playwright install`: it downloads a browser build). Installed here when
# missing (~15 s); without apt-get as root the test skips, except on CI (CI=true), where it fails.
if ! [ -x "${SMFLOW_CHROMIUM:-/usr/bin/chromium}" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing chromium with apt-get (the catalogue page's browser test)..."
    apt_log=$(mktemp)
    started=$SECONDS
    if { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >"$apt_log" 2>&1; then
      echo "chromium installed in $((SECONDS - started)) s"
    else
      echo "apt-get could not install chromium (the browser test will skip, or fail on CI):"; tail -5 "$apt_log"
    fi
    rm -f "$apt_log"
  else
    echo "no chromium, and no apt-get as root to install it: the catalogue page's browser test will skip"
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
args=()
for arg in "$@"; do
  if [[ "$arg" == "--faults" ]]; then
    args+=(-m faults tests/faults)
  elif [[ "$arg" == "--celery" ]]; then
    args+=(-m celery tests/e2e/test_daily_dag_celery.py)
  else
    args+=("$arg")
  fi
done
exec .venv/bin/python -m pytest "${args[@]}"
