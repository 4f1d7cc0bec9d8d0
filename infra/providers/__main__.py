"""``python -m infra.providers serve``: the Hawaii stand-in of the provider archives, in the foreground.

Run by ``infra/stack.py`` (service ``providers``)::

    python -m infra.providers serve --port 8765 --cache-dir D --token-file F [--prepare 2018-05-01 2018-07-31]

The token file is JSON ``{"token": ..., "cds_token": ...[, "cds_key": "uid:key"]}``, mode 0600
(:class:`infra.providers.hawaii.Tokens`). SIGTERM or SIGINT stops the server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import date
from pathlib import Path


def serve(args: argparse.Namespace) -> int:
    from infra.providers.hawaii import HawaiiArchive, Tokens

    tokens = Tokens.read(args.token_file)
    archive = HawaiiArchive(token=tokens.token, cds_token=tokens.cds_token, cds_key=tokens.cds_key,
                            cache_dir=Path(args.cache_dir), echo=not args.quiet)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    archive.start(args.port)
    print(f"serving the Hawaii provider archives on {archive.url} "
          f"(CMR {archive.url}/search, CDS {archive.cds_url}); cache {archive.cache_dir}", flush=True)
    if args.prepare:
        start, end = (date.fromisoformat(d) for d in args.prepare)

        def prepare() -> None:  # in the background: the archive answers meanwhile
            archive.prepare(start, end)
            print(f"prepared {start} .. {end}", flush=True)

        threading.Thread(target=prepare, daemon=True, name="prepare").start()
    stopping.wait()
    archive.stop()
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.providers", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("serve", help="serve the Hawaii stand-in archives on 127.0.0.1 until SIGTERM")
    cmd.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    cmd.add_argument("--cache-dir", required=True, help="where cut granules are kept")
    cmd.add_argument("--token-file", required=True, help="JSON token file (mode 0600)")
    cmd.add_argument("--prepare", nargs=2, metavar=("START", "END"),
                     help="cut these days (YYYY-MM-DD, inclusive) in the background after start")
    cmd.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
