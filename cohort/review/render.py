"""One Jinja2 environment for the server and the static export, autoescaping every value.

Links differ between the two (server routes vs. relative file names), so each page gets a
``links`` object; the templates never build a URL from data themselves.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .store import VERDICTS

HERE = Path(__file__).resolve().parent
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _show(value) -> str:
    """A cell as text: '' for missing, dates as ISO days, floats without noise."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ", timespec="minutes") if value.tzinfo else \
            value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_env.filters["show"] = _show
_env.globals["VERDICTS"] = VERDICTS


def render(template: str, **context) -> str:
    """The page ``template`` with ``context`` (every value autoescaped)."""
    return _env.get_template(template).render(**context)


def file_stem(patient_id: str) -> str:
    """A safe file name for a patient's static page: the id when it is a valid FHIR id,
    else a hash of it (ids from the data never become paths as they are)."""
    if _FHIR_ID.match(patient_id) and patient_id not in (".", ".."):
        return patient_id
    return "p-" + hashlib.sha256(patient_id.encode()).hexdigest()[:16]


class ServerLinks:
    """URLs of the running server."""

    static = False

    def index(self, **args) -> str:
        args = {k: v for k, v in args.items() if v not in (None, "", False)}
        return "/" + (f"?{urlencode(args)}" if args else "")

    def patient(self, pid: str) -> str:
        return f"/patient/{quote(pid, safe='')}"

    def plot(self, pid: str) -> str:
        return f"/patient/{quote(pid, safe='')}/timeline.svg"

    def review(self, pid: str) -> str:
        return f"/patient/{quote(pid, safe='')}/review"

    def css(self) -> str:
        return "/static/style.css"


class StaticLinks:
    """Relative file names of the static export (``root`` is '' or '../')."""

    static = True

    def __init__(self, root: str = ""):
        self.root = root

    def index(self, **args) -> str:
        return f"{self.root}index.html"

    def patient(self, pid: str) -> str:
        return f"{self.root}patients/{quote(file_stem(pid))}.html"

    def plot(self, pid: str) -> str:
        return f"{self.root}patients/{quote(file_stem(pid))}.svg"

    def review(self, pid: str) -> str:
        raise AssertionError("static pages have no form")

    def css(self) -> str:
        return f"{self.root}style.css"
