"""Run the review app: address checks, the start-up token, logs without patient data.

Werkzeug's development server is enough for one or a few reviewers on one machine (the app
is the only writer of the database file while it runs). Its request log line would carry
the URL -- a patient id, perhaps a token -- so it is replaced by one naming only the method,
the kind of page and the status.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app

log = logging.getLogger("bmc.review")
_PATIENT = re.compile(r"^/patient/[^/]+")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redact(path: str) -> str:
    """A request path as logged: no query string, the patient id replaced."""
    return _PATIENT.sub("/patient/<id>", path.split("?", 1)[0])


class QuietHandler(WSGIRequestHandler):
    """Logs ``GET /patient/<id> 200``: never an id, a query string or a form value."""

    def log_request(self, code="-", size="-") -> None:
        log.info("%s %s %s", self.command, redact(self.path or ""), getattr(code, "value", code))

    def log_error(self, format: str, *args) -> None:
        log.warning("request error %s", args[0] if args and isinstance(args[0], int) else "")

    def log_message(self, format: str, *args) -> None:
        pass


@dataclass
class Served:
    """What the CLI prints at start."""

    url: str
    token: str | None


def serve(con: duckdb.DuckDBPyConnection, host: str, port: int,
          announce: Callable[[Served], None]) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM); the caller closes ``con`` afterwards."""
    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    # the app is set once the port is bound (its allowed hosts name the port); nothing is
    # served before serve_forever, so the missing app is never called
    server = make_server(host, port, None,  # type: ignore[arg-type]
                         threaded=True, request_handler=QuietHandler)
    actual = server.server_port
    shown = f"[{host}]" if ":" in host else host
    allowed = {f"{shown}:{actual}".lower(), shown.lower()}
    if is_loopback(host):
        allowed |= {f"{h}:{actual}" for h in ("127.0.0.1", "localhost", "[::1]")}
    server.app = create_app(con, allowed_hosts=allowed, token=token)
    url = f"http://{shown}:{actual}/" + (f"?token={token}" if token else "")
    announce(Served(url, token))

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()


def configure_logging() -> None:
    """Route request lines to stderr, without werkzeug's own (URL-bearing) logger."""
    logging.getLogger("werkzeug").disabled = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("review: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
