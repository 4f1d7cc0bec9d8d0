"""infra/keepalive.py: restarts a daemon that dies of an error, never one that was told to stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

KEEPALIVE = Path(__file__).resolve().parents[2] / "infra" / "keepalive.py"


def _keeper(tmp_path: Path, script: str) -> tuple[subprocess.Popen, Path]:
    runs = tmp_path / "runs.txt"
    code = f"import pathlib, sys, time\np = pathlib.Path({str(runs)!r})\n" + script
    proc = subprocess.Popen([sys.executable, str(KEEPALIVE), "--", sys.executable, "-c", code],
                            stderr=subprocess.PIPE, text=True)
    return proc, runs


def _wait_lines(path: Path, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not reach {n} lines")


def test_a_daemon_that_fails_is_restarted_with_backoff_and_one_that_succeeds_is_not(tmp_path):
    # fails on its first two runs (as a scheduler losing its DB), then exits 0
    proc, runs = _keeper(tmp_path, "n = len(p.read_text().splitlines()) if p.exists() else 0\n"
                                   "p.open('a').write('run\\n')\nsys.exit(1 if n < 2 else 0)\n")
    assert proc.wait(timeout=30) == 0
    assert len(runs.read_text().splitlines()) == 3
    stderr = proc.stderr.read()
    assert stderr.count("exited with status 1") == 2 and "restarting it in 1 s" in stderr and "in 2 s" in stderr


def test_sigterm_is_forwarded_and_the_daemon_not_restarted(tmp_path):
    proc, runs = _keeper(tmp_path, "import signal\n"
                                   "signal.signal(signal.SIGTERM, lambda *a: (p.open('a').write('term\\n'), sys.exit(3)))\n"
                                   "p.open('a').write('run\\n')\ntime.sleep(60)\n")
    _wait_lines(runs, 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 3  # the daemon's own status, after its SIGTERM handler ran
    assert runs.read_text().splitlines() == ["run", "term"]
