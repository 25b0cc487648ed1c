"""The demo's server: the ``web/`` folder on 127.0.0.1 with the headers the page needs.

``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp``
make the page cross-origin isolated, which LiteRT.js's threaded WASM build needs
(``SharedArrayBuffer``); ``.wasm`` is served as ``application/wasm`` (streaming compilation), and
``.mjs``/``.js`` as JavaScript. Python's ``http.server`` (one thread per request) is enough for a
demo on one machine; it is not a production server.
"""

from __future__ import annotations

import functools
import http.server
import json
import urllib.parse
from pathlib import Path

HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
TYPES = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".tflite": "application/octet-stream",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the cross-origin isolation headers; no directory listings; quiet logs."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def end_headers(self) -> None:
        for k, v in HEADERS.items():
            self.send_header(k, v)
        if self.path.endswith(".js") or self.path.endswith(".html") or self.path.endswith("/"):
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def do_GET(self) -> None:
        """``/examples/list.json``: the names of the photos served at ``/examples/``."""
        examples = self.server.examples  # type: ignore[attr-defined]
        if examples is not None and self.path.split("?", 1)[0] == "/examples/list.json":
            names = sorted(p.name for p in examples.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
            body = json.dumps(names).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def translate_path(self, path: str) -> str:
        """``/examples/NAME`` is a photo of the examples folder (the page's "try an example" buttons)."""
        examples = self.server.examples  # type: ignore[attr-defined]
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if examples is not None and clean.startswith("/examples/"):
            name = urllib.parse.unquote(clean[len("/examples/") :])
            if name and "/" not in name and not name.startswith("."):
                return str(examples / name)
        return super().translate_path(path)

    def list_directory(self, path):  # noqa: ARG002 - a demo server lists nothing
        self.send_error(404, "No listing")
        return None

    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's name
        if self.server.verbose:  # type: ignore[attr-defined]
            super().log_message(format, *args)


def make_server(
    root: Path, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False, examples: Path | None = None
) -> http.server.ThreadingHTTPServer:
    """A server of ``root`` (the repository's ``web/`` folder), not yet serving.

    Args:
        root: the folder served at ``/`` (``demo/``, ``src/``, ``node_modules/``, ``models/``).
        host: the address to listen on (127.0.0.1: this machine only).
        port: TCP port; 0 picks a free one (``server.server_address[1]`` tells which).
        verbose: log every request on stderr.
        examples: a folder of photos served flat at ``/examples/`` (None: not served).

    Raises:
        OSError: the port is taken or the address cannot be bound.
    """
    handler = functools.partial(Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.verbose = verbose  # type: ignore[attr-defined]
    server.examples = Path(examples) if examples is not None else None  # type: ignore[attr-defined]
    return server
