"""Servers on 127.0.0.1 that a tracking URI may name but that are no healthy MLflow server.

- :func:`silent_port`: accepts every connection and never sends a byte;
- :func:`stalled_api`: answers ``GET /health`` with ``OK`` (as MLflow does) and never answers
  anything else (a server whose database hangs);
- :func:`html_pages`: answers every request with an HTML page and the given status (a proxy's
  login page, a web server on the wrong port).

Each is a context manager yielding the ``http://127.0.0.1:PORT`` URI; leaving it closes every
connection. Shared by ``test_tracking_faults`` and ``test_refresh``; ``tests/`` is not a package:
import it as ``from faulty_servers import ...``.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def silent_port() -> Iterator[str]:
    """A port that completes every TCP connection and then says nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


@contextlib.contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        getattr(handler, "release", threading.Event()).set()
        httpd.shutdown()
        httpd.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def drain(self) -> None:
        """Read the request's body: a reply before it is read can reset the connection."""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def reply(self, status: int, body: bytes, kind: str) -> None:
        self.drain()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def stalled_api() -> Iterator[str]:
    """``/health`` says OK; every other request waits until the server is closed."""
    release = threading.Event()

    class Handler(_Quiet):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            if self.path.rstrip("/") == "/health":
                self.reply(200, b"OK", "text/plain")
                return
            release.wait()

        do_POST = do_GET

    Handler.release = release
    with _serve(Handler) as uri:
        yield uri


@contextlib.contextmanager
def html_pages(status: int = 403) -> Iterator[str]:
    """Every request answered with ``status`` and an HTML page."""

    class Handler(_Quiet):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self.reply(status, b"<html><body><h1>Sign in</h1><p>Corporate proxy</p></body></html>", "text/html")

        do_POST = do_GET

    with _serve(Handler) as uri:
        yield uri
