"""A counting HTTP relay in front of the stack's S3 gateway: how many requests a piece of code makes.

Used by ``tests/test_store_chunked.py`` and ``benchmarks/bench_store.py`` to count the S3 requests
of a time-series window read, whatever the client (boto3 for the per-day netCDF store, Icechunk's
Rust client for the chunked store: botocore event hooks would only see the first). Every request
is forwarded unchanged (the ``Host`` header included, so AWS signature V4 still verifies at the
gateway) and tallied by HTTP method.

Example::

    with S3RequestCounter(settings.s3_endpoint_url) as counter:
        store = ChunkedTimeSeriesStore(dataclasses.replace(settings, s3_endpoint_url=counter.url))
        counter.reset()
        store.window("smap", day, 180)
        print(counter.total, counter.by_method)

For tests and benchmarks only: the relay buffers each body in memory. Without a relay,
:func:`server_request_counts` reads the counts the S3 server itself keeps (all clients of the
stack at once).
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: Hop-by-hop headers a relay must not forward (RFC 9110, 7.6.1).
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class S3RequestCounter:
    """Relay ``127.0.0.1:<free port>`` -> ``upstream`` that counts requests by method.

    :param upstream: the S3 endpoint URL (``http://host:port``).
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"S3RequestCounter relays plain http endpoints, got {upstream!r}")
        self._upstream = (parts.hostname, parts.port or 80)
        self._lock = threading.Lock()
        self.by_method: Counter[str] = Counter()
        self.paths: list[tuple[str, str]] = []
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _relay(self) -> None:
                body = self._read_body()
                with counter._lock:
                    counter.by_method[self.command] += 1
                    counter.paths.append((self.command, self.path))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body or "content-length" in {k.lower() for k in headers}:
                    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(*counter._upstream, timeout=120)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for k, v in headers.items():
                        conn.putheader(k, v)
                    conn.endheaders(body or None)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response_only(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    if self.command == "HEAD":
                        length = resp.getheader("Content-Length")
                        if length is not None:
                            self.send_header("Content-Length", length)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Endpoint URL of the relay (give it to the client under test)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def total(self) -> int:
        """Requests relayed since the last :meth:`reset`."""
        with self._lock:
            return sum(self.by_method.values())

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.by_method.clear()
            self.paths.clear()

    def __enter__(self) -> S3RequestCounter:
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-request-counter", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


#: One sample of SeaweedFS's S3 request counter: ``SeaweedFS_s3_request_total{labels} value``.
_SERVER_SAMPLE = re.compile(r"^SeaweedFS_s3_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")


def server_request_counts(metrics_url: str, *, timeout: float = 10.0) -> Counter[str]:
    """The S3 requests the stack's gateway has served, by request type, as the server counts them.

    Reads SeaweedFS's Prometheus endpoint (``SMFLOW_S3_METRICS_URL`` of ``stack.env``; the stack
    starts ``weed`` with ``-metricsPort``) and sums ``SeaweedFS_s3_request_total`` over buckets and
    status codes. Unlike :class:`S3RequestCounter` nothing sits between the clients and the server:
    every process is counted (Airflow tasks, Icechunk's Rust client, MLflow's artifact store), so
    the difference of two readings is what happened in between, on the whole stack.

    :param metrics_url: ``http://host:port/metrics``.
    :param timeout: seconds to wait for the endpoint.
    :returns: request type (``GET``, ``PUT``, ``HEAD``, ``LIST``, ``DELETE``, ...) -> requests since
        the server started (0 for a type not served yet).
    :raises urllib.error.URLError: nothing answers at ``metrics_url`` (an S3 server started before
        the stack had ``SMFLOW_S3_METRICS_PORT``: ``infra/stack.py start`` restarts it).
    """
    with urllib.request.urlopen(metrics_url, timeout=timeout) as response:
        text = response.read().decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        sample = _SERVER_SAMPLE.match(line)
        if sample:
            labels = dict(part.split("=", 1) for part in sample["labels"].split(",") if "=" in part)
            counts[labels.get("type", '"?"').strip('"')] += int(float(sample["value"]))
    return counts
