"""The review web app (Flask): worklist, patient pages, the adjudication form.

Security, for an app that shows patient data:

* it listens on loopback unless told otherwise; requests whose ``Host`` is not the address it
  serves are refused (a web page cannot reach it by DNS rebinding);
* with a non-loopback host every request needs the token printed at start (once given as
  ``?token=``, a session cookie carries it and the URL drops it);
* every POST carries a CSRF token bound to the session (SameSite=Strict, HttpOnly cookie,
  signed with a key made fresh for each run);
* every text from the data is autoescaped by the templates, the plot is an ``<img>`` (a
  script in an SVG image never runs), and a Content-Security-Policy forbids scripts anyway;
* request logs name the route, never a patient id or a token (:mod:`.serve`).

The server holds the only read-write connection to the DuckDB file while it runs (DuckDB
locks the file), so it is the only writer; requests share it under a lock.
"""
from __future__ import annotations

import datetime as dt
import hmac
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
from flask import Flask, Response, abort, redirect, request, session

from ..errors import UsageError
from ..evidence import UnknownPatient
from . import pages, store
from .plot import timeline_svg
from .render import ServerLinks, render

HERE = Path(__file__).resolve().parent
WORKLIST_COLUMNS = (("rank", "rank"), ("patient_id", "patient"), ("tier", "tier"),
                    ("worst_grade", "worst grade"), ("finding_date", "finding"),
                    ("index_date", "index date"), ("status", "status"),
                    ("reviewer", "reviewer"), ("reasons", "reasons"))
CSP = ("default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def ledger_rows(page: pages.PatientPage) -> list[dict]:
    """Ledger rows for the template, each with its ``file:line``."""
    return [{**row._asdict(), "source": pages.source_of(row)}
            for row in page.ledger.itertuples(index=False)]


def create_app(con: duckdb.DuckDBPyConnection, *, allowed_hosts: set[str],
               token: str | None = None,
               clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> Flask:
    """The app over an open connection whose ``bmc_*`` and screen tables are built.

    ``allowed_hosts`` are the ``Host`` header values accepted (host and host:port);
    ``token`` (non-loopback serving) is required once per browser session.
    """
    app = Flask(__name__, static_folder=str(HERE / "static"), static_url_path="/static")
    app.config.update(SECRET_KEY=secrets.token_bytes(32), SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", MAX_CONTENT_LENGTH=64 * 1024)
    lock = threading.Lock()
    links = ServerLinks()
    store.ensure_table(con)
    build, _ = store.current_build(con)

    def db():
        """A cursor on the one connection (callers hold ``lock``)."""
        return con.cursor()

    @app.before_request
    def guard():
        if request.host.lower() not in allowed_hosts:
            abort(421)
        if token is not None and not session.get("authorised"):
            given = request.args.get("token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return Response("a token is required: use the URL `bmc review` printed\n",
                                403, mimetype="text/plain")
            session["authorised"] = True
            args = {k: v for k, v in request.args.items() if k != "token"}
            return redirect(links.index(**args) if request.path == "/" else request.path, 303)
        session.setdefault("csrf", secrets.token_urlsafe(32))
        return None

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/")
    def worklist():
        status = request.args.get("status", "all")
        sort = request.args.get("sort", "rank")
        desc = request.args.get("desc") == "1"
        include_cohort = request.args.get("cohort") == "1"
        with lock:
            rows = pages.worklist(db(), include_cohort=include_cohort, status=status,
                                  sort=sort, descending=desc)
        return render("worklist.html", links=links, build=build,
                      rows=list(rows.itertuples(index=False)), columns=WORKLIST_COLUMNS,
                      statuses=pages.STATUSES, status=status, sort=sort, desc=desc,
                      include_cohort=include_cohort)

    def _page(pid: str):
        try:
            with lock:
                return pages.patient_page(db(), pid)
        except UnknownPatient:
            abort(404)

    def _render_patient(page: pages.PatientPage, *, saved=False, error=None, status=200):
        body = render("patient.html", links=links, build=build, p=page,
                      ledger=ledger_rows(page), diagnoses=list(page.diagnoses.itertuples()),
                      reviews=list(page.reviews.itertuples()), csrf_token=session["csrf"],
                      reviewer=session.get("reviewer", ""), saved=saved, error=error)
        return Response(body, status, mimetype="text/html")

    @app.get("/patient/<pid>/timeline.svg")
    def timeline(pid: str):
        page = _page(pid)
        svg = timeline_svg(page.labs, page.bands, page.events, page.index_date,
                           page.finding_date)
        return Response(svg, mimetype="image/svg+xml")

    @app.get("/patient/<pid>")
    def patient(pid: str):
        return _render_patient(_page(pid), saved=request.args.get("saved") == "1")

    @app.post("/patient/<pid>/review")
    def review(pid: str):
        sent = request.form.get("csrf_token", "")
        if not hmac.compare_digest(sent.encode(), session["csrf"].encode()):
            return Response("missing or wrong CSRF token; reload the page and try again\n",
                            400, mimetype="text/plain")
        page = _page(pid)
        reviewer = request.form.get("reviewer", "")
        try:
            with lock:
                store.add_review(db(), page.patient_id, request.form.get("verdict", ""),
                                 request.form.get("note", ""), reviewer, clock())
        except UsageError as e:
            return _render_patient(page, error=str(e), status=400)
        session["reviewer"] = reviewer.strip()
        return redirect(links.patient(page.patient_id) + "?saved=1", 303)

    return app
