"""A local CATDS on 127.0.0.1: Apache-style directory listings of the real SMOS L3 files.

The tree is ``/{product}/{YYYY}/{DDD}/{file}`` (day of year), every folder answered with a
``mod_autoindex``-like page (``Index of ...``, a table with sort links, "Parent Directory",
name / last modified / rounded size), a folder without its trailing slash is redirected
(``301``) as Apache does, everything is behind HTTP basic auth (``401`` with
``WWW-Authenticate: Basic``). The files are those of ``../shared/data/real/smos_l3_catds``.

``damaged={name: "short"}`` drops the connection halfway through the file (after a full
``Content-Length``); ``"corrupt"`` blanks its first bytes (the netCDF signature).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from infra.providers.local_server import REAL_DATA, BaseHandler, Delivery, LocalHttpServer


def catds_catalog(root: str | Path = REAL_DATA) -> dict[str, Path]:
    """The real SMOS L3 files by their path in the CATDS tree (``MIR_CLF31A/2015/126/<name>``)."""
    files = {}
    for p in sorted((Path(root) / "smos_l3_catds").glob("SM_*_MIR_CLF3*.DBL.nc")):
        product = "MIR_" + p.name.split("_MIR_")[1][:6]
        day = datetime.strptime(p.name.split("_")[4][:8], "%Y%m%d")
        files[f"{product}/{day:%Y}/{day.timetuple().tm_yday:03d}/{p.name}"] = p
    return files


def _human(size: int) -> str:
    return f"{size}" if size < 1024 else f"{size / 1024:.0f}K" if size < 1024**2 else f"{size / 1024**2:.1f}M"


@dataclass
class CatdsServer(LocalHttpServer):
    """The local CATDS tree; a context manager (see the module docstring).

    :param root: the real-data directory.
    :param username, password: the one account.
    :param damaged: file name → ``"short"`` or ``"corrupt"``.
    """

    root: Path = REAL_DATA
    username: str = "catds-user"
    password: str = "catds-password"
    damaged: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.handler = _IndexHandler
        self.files = catds_catalog(self.root)

    def children(self, folder: str) -> dict[str, Path | None]:
        """Entries of ``folder`` ('' is the root): name → file, or ``None`` for a sub-folder."""
        prefix = f"{folder}/" if folder else ""
        entries: dict[str, Path | None] = {}
        for key, path in self.files.items():
            if key.startswith(prefix):
                head, sep, _ = key[len(prefix):].partition("/")
                entries[head + sep] = None if sep else path
        return entries

    def index_page(self, folder: str) -> str:
        title = html.escape(f"Index of /{folder}")
        rows = ['<tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
                '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
                '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>',
                '<tr><th colspan="5"><hr></th></tr>']
        if folder:
            parent = "/" + folder.rsplit("/", 1)[0] + "/" if "/" in folder else "/"
            rows.append(f'<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
                        f'<td><a href="{parent}">Parent Directory</a></td><td>&nbsp;</td>'
                        '<td align="right">  - </td><td>&nbsp;</td></tr>')
        for name, path in sorted(self.children(folder).items()):
            if path is None:
                icon, alt, stamp, size = "folder.gif", "[DIR]", "2015-05-10 03:12", "-"
            else:
                mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
                icon, alt, stamp, size = "unknown.gif", "[   ]", f"{mtime:%Y-%m-%d %H:%M}", _human(path.stat().st_size)
            rows.append(f'<tr><td valign="top"><img src="/icons/{icon}" alt="{alt}"></td>'
                        f'<td><a href="{quote(name)}">{html.escape(name)}</a></td>'
                        f'<td align="right">{stamp}  </td><td align="right">{size}</td><td>&nbsp;</td></tr>')
        rows.append('<tr><th colspan="5"><hr></th></tr>')
        host, port = self._httpd.server_address[:2]
        return ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
                f'  <title>{title}</title>\n </head>\n <body>\n<h1>{title}</h1>\n  <table>\n'
                + "\n".join(rows) + f'\n</table>\n<address>Apache Server at {host} Port {port}</address>\n'
                '</body></html>\n')


class _IndexHandler(BaseHandler):
    archive: CatdsServer

    def do_GET(self) -> None:
        a = self.archive
        a.requests.append(f"{self.command} {self.path}")
        if self._basic() != (a.username, a.password):
            return self._send(401, b"<h1>Unauthorized</h1>", "text/html",
                              {"WWW-Authenticate": 'Basic realm="CATDS"'})
        path = unquote(urlparse(self.path).path).strip("/")
        if path in a.files:
            return self._file(a.files[path])
        if path == "" or a.children(path):
            if not urlparse(self.path).path.endswith("/"):
                return self._send(301, b"", "text/html", {"Location": f"/{path}/"})
            return self._send(200, a.index_page(path).encode(), "text/html;charset=ISO-8859-1")
        self._send(404, b"<h1>Not Found</h1>", "text/html")

    def _file(self, path: Path) -> None:
        body = path.read_bytes()
        how = self.archive.damaged.get(path.name)
        if how == "corrupt":  # here: the netCDF signature blanked
            body = b"\0" * 64 + body[64:]
        short = how == "short"
        self._deliver(Delivery(path.name, body[: len(body) // 2] if short else body, len(body),
                               "application/x-netcdf", cut=short))
