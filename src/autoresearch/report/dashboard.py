"""``autoresearch dashboard``: the report, live, on a local web server.

Read-only: every request reads the ledger (SQLite in WAL mode: readers never block the
running campaign), so there is no coupling with ``run``. Routes: ``/`` the page (it
refreshes its content every ``refresh_ms``), ``/fragment`` the content alone,
``/api/status`` the report's data as JSON. Binds to 127.0.0.1; any other address needs
``allow_remote`` (there is no authentication).
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import threading
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .data import report_data
from .html import content_html, report_html


def check_host(host: str, allow_remote: bool) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise UsageError(f"refusing to serve on {host}: the dashboard has no authentication. Use 127.0.0.1 "
                         "(and an SSH tunnel), or pass --allow-remote if you really mean it")


def host_allowed(header: str, port: int) -> bool:
    """Whether a request's Host header names this machine's loopback (with our port or none).
    Pure. Guards against DNS rebinding: a browser tab on evil.example whose name now points at
    127.0.0.1 still sends ``Host: evil.example``."""
    host = header.strip().lower()
    if host.startswith("["):  # [::1]:8765
        name, _, rest = host[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        name, _, port_text = host.partition(":")
    if port_text and port_text != str(port):
        return False
    return name in ("localhost", "127.0.0.1", "::1")


class Dashboard:
    def __init__(self, arena: Path, tag: str | None, *, host: str = "127.0.0.1", port: int = 8765,
                 refresh_ms: int = 2000, allow_remote: bool = False):
        check_host(host, allow_remote)
        self.arena, self.tag, self.refresh_ms, self.allow_remote = arena, tag, refresh_ms, allow_remote
        dash = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if not dash.allow_remote and not host_allowed(self.headers.get("Host", ""), dash.server.server_address[1]):
                    # a page on another site that rebinds its name to 127.0.0.1 sends its own name
                    self.send_error(421, "this dashboard answers only to localhost / 127.0.0.1 / [::1]")
                    return
                try:
                    if path == "/":
                        body, kind = report_html(dash.data(), live_ms=dash.refresh_ms).encode(), "text/html; charset=utf-8"
                    elif path == "/fragment":
                        body, kind = content_html(dash.data()).encode(), "text/html; charset=utf-8"
                    elif path == "/api/status":
                        body, kind = json.dumps(dash.data(), default=str).encode(), "application/json"
                    else:
                        self.send_error(404, "not found")
                        return
                except Exception as e:  # a ledger being created, a campaign not started yet
                    body, kind = f"not available yet: {e}".encode(), "text/plain; charset=utf-8"
                    self.send_response(503)
                else:
                    self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def data(self) -> dict[str, Any]:
        from ..status import open_ledger_readonly

        ledger, campaign = open_ledger_readonly(self.arena, self.tag)
        try:
            return report_data(ledger, campaign, self.arena)
        finally:
            ledger.close()

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def start(self) -> "Dashboard":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
