"""A local FTP server on 127.0.0.1 laid out like the H SAF FTP, serving the real H SAF files.

A real FTP server (``pyftpdlib``: ``USER``/``PASS``, ``CWD``, ``MLSD``, ``NLST``, ``SIZE``,
``RETR``, passive data connections), read-only for one user, with one directory per product
(:data:`smflow.archive.hsaf.DIRECTORY_TEMPLATE`) holding the real files of
``../shared/data/real/hsaf_ascat_nrt_bufr`` and ``hsaf_h14_rzsm_grib``. The directory tree is
made of symbolic links in a temporary directory; the real files are never copied or written.

For tests of the client's checks, ``damaged={name: "short"}`` makes ``RETR`` of that file send
only half of it (while ``SIZE`` tells the true size, as after a dropped connection), and
``"corrupt"`` sends the right number of bytes with the format signature destroyed.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from smflow.archive.hsaf import DIRECTORY_TEMPLATE
from infra.providers.local_server import REAL_DATA


def hsaf_catalog(root: str | Path = REAL_DATA) -> dict[str, list[Path]]:
    """The real H SAF files: product (``h101``, ``h14``, ...) → files."""
    root = Path(root)
    files: dict[str, list[Path]] = {}
    for p in sorted((root / "hsaf_ascat_nrt_bufr").glob("h*_*.buf")):
        files.setdefault(p.name.split("_")[0].lower(), []).append(p)
    for p in sorted((root / "hsaf_h14_rzsm_grib").glob("H14_*.grib")):
        files.setdefault("h14", []).append(p)
    return files


def _damage(data: bytes, how: str) -> bytes:
    if how == "short":
        return data[: len(data) // 2]
    if how == "corrupt":
        return b"\0" * min(len(data), 8192) + data[8192:]
    raise ValueError(f"damage must be 'short' or 'corrupt', got {how!r}")


@dataclass
class HsafFtpServer:
    """Threaded FTP server on ``127.0.0.1`` (random port); a context manager.

    :param root: the real-data directory (default ``../shared/data/real``).
    :param username, password: the one account.
    :param damaged: file name → ``"short"`` or ``"corrupt"`` (see the module docstring).
    """

    root: Path = REAL_DATA
    username: str = "hsaf-user"
    password: str = "hsaf-password"
    damaged: dict[str, str] = field(default_factory=dict)
    _server: object = None
    _tree: Path | None = None
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def host(self) -> str:
        host, port = self._server.address[:2]
        return f"{host}:{port}"

    def start(self) -> "HsafFtpServer":
        with warnings.catch_warnings():  # pyftpdlib is built on asyncore/asynchat (deprecated in 3.11)
            warnings.simplefilter("ignore", DeprecationWarning)
            from pyftpdlib.authorizers import DummyAuthorizer
            from pyftpdlib.filesystems import AbstractedFS
            from pyftpdlib.handlers import FTPHandler
            from pyftpdlib.servers import FTPServer

        self._tree = Path(tempfile.mkdtemp(prefix="hsaf-ftp-"))
        for product, paths in hsaf_catalog(self.root).items():
            directory = self._tree / DIRECTORY_TEMPLATE.format(product=product).lstrip("/")
            directory.mkdir(parents=True, exist_ok=True)
            for p in paths:
                (directory / p.name).symlink_to(p)
        damaged = dict(self.damaged)

        class DamagingFS(AbstractedFS):
            def validpath(self, path):  # the tree is symbolic links to the real files: judge the link
                root = os.path.join(os.path.normpath(self.root), "")
                return os.path.join(os.path.normpath(path), "").startswith(root)

            def open(self, filename, mode):
                how = damaged.get(Path(filename).name)
                if how is None:
                    return super().open(filename, mode)
                with open(filename, "rb") as f:
                    buffer = io.BytesIO(_damage(f.read(), how))
                buffer.name = filename
                return buffer

        authorizer = DummyAuthorizer()
        authorizer.add_user(self.username, self.password, str(self._tree), perm="elr")

        class Handler(FTPHandler):
            abstracted_fs = DamagingFS
            use_sendfile = False
            banner = "smflow local H SAF FTP"
            auth_failed_timeout = 0.1  # the real server also answers 530; no need to wait 3 s in tests

        Handler.authorizer = authorizer
        logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
        self._server = FTPServer(("127.0.0.1", 0), Handler)
        self._stopping = threading.Event()

        def serve() -> None:  # the IO loop is not thread-safe: close it from its own thread
            while not self._stopping.is_set():
                self._server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
            self._server.close_all()

        self._thread = threading.Thread(target=serve, daemon=True, name="hsaf-ftp")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._stopping.set()
            self._thread.join(timeout=10)
            self._server = None
        if self._tree is not None:
            shutil.rmtree(self._tree, ignore_errors=True)
            self._tree = None

    def __enter__(self) -> "HsafFtpServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
