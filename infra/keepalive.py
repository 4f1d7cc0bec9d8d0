#!/usr/bin/env python3
"""Keep one daemon running: restart it, with backoff, whenever it dies of an error.

Airflow's scheduler, triggerer and dag-processor exit when their metadata-DB connection is lost
(by design: Airflow expects a process supervisor to restart them, apache/airflow#1297). The
local stack has no systemd or Kubernetes, so ``infra/stack.py`` starts each Airflow component as::

    python infra/keepalive.py -- airflow scheduler --skip-serve-logs

SIGTERM / SIGINT are forwarded to the daemon, which is then not restarted: the keeper exits with
the daemon's status once it has stopped (so a graceful stop stays graceful). A daemon that exits
with status 0 is not restarted either. Restarts wait 1, 2, 4 ... 30 s; the wait starts again from
1 s after a run longer than a minute. Standard library only.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: keepalive.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    stopping = False
    child: subprocess.Popen | None = None

    def forward(signum, frame):  # noqa: ARG001 - signal handler signature
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    backoff = 1.0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)  # same session and process group as the keeper
        status = child.wait()
        if stopping or status == 0:
            return status
        ran = time.monotonic() - started
        backoff = 1.0 if ran > STABLE_AFTER else backoff
        print(f"keepalive: {' '.join(command[:2])} exited with status {status} after {ran:.0f} s; "
              f"restarting it in {backoff:.0f} s", file=sys.stderr, flush=True)
        deadline = time.monotonic() + backoff
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
        if stopping:
            return status
        backoff = min(2 * backoff, MAX_BACKOFF)


if __name__ == "__main__":
    sys.exit(main())
