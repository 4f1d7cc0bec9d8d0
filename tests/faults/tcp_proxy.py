"""A TCP proxy that a fault test can cut and restore (asyncio, in a thread of the test process).

Between a client (e.g. the Airflow daemons' metadata DB connections) and a real server (the
machine's PostgreSQL on 127.0.0.1:5432): ``cut()`` closes every open connection and refuses new
ones (the port stops listening), ``restore()`` listens again on the same port. The server itself
is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``upstream``; cut and restore on demand.

    :param upstream: (host, port) of the real server.
    :param port: local port to listen on (a free one when None).
    """

    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self.connections = 0  # accepted since start
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def __exit__(self, *exc) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def restore(self) -> None:
        """Listen (again) and forward new connections."""
        self._call(self._listen())

    def cut(self) -> int:
        """Close every forwarded connection and stop listening; the number of connections closed."""
        return self._call(self._cut())

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> int:
        if self._server is not None:
            self._server.close()
            self._server = None
        closed = len(self._writers)
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()  # RST: the client sees the connection drop, as in an outage
        self._writers.clear()
        return closed

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.transport.abort() if dst not in self._writers else dst.close()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
