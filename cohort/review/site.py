"""``bmc review --static DIR``: the worklist and every patient page as static HTML (no form),
for someone who cannot run the tool. Same templates, same escaping, the plot as an SVG file
beside each page."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from . import pages, store
from .app import WORKLIST_COLUMNS, ledger_rows
from .plot import timeline_svg
from .render import StaticLinks, file_stem, render

HERE = Path(__file__).resolve().parent


def write_static(con: duckdb.DuckDBPyConnection, out_dir: Path, *,
                 include_cohort: bool = False) -> list[Path]:
    """Write ``index.html``, ``style.css`` and ``patients/<id>.html|.svg``; returns the pages."""
    out_dir = Path(out_dir)
    (out_dir / "patients").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "static" / "style.css", out_dir / "style.css")
    build, _ = store.current_build(con)
    rows = pages.worklist(con, include_cohort=include_cohort)
    index = out_dir / "index.html"
    index.write_text(render("worklist.html", links=StaticLinks(""), build=build,
                            rows=list(rows.itertuples(index=False)), columns=WORKLIST_COLUMNS,
                            statuses=pages.STATUSES, status="all", sort="rank", desc=False,
                            include_cohort=include_cohort), encoding="utf-8")
    written = [index]
    links = StaticLinks("../")
    for pid in rows.patient_id:
        page = pages.patient_page(con, pid)
        folder, stem = out_dir / "patients", file_stem(pid)
        (folder / f"{stem}.svg").write_text(
            timeline_svg(page.labs, page.bands, page.events, page.index_date,
                         page.finding_date), encoding="utf-8")
        html = folder / f"{stem}.html"
        html.write_text(render("patient.html", links=links, build=build, p=page,
                               ledger=ledger_rows(page),
                               diagnoses=list(page.diagnoses.itertuples()),
                               reviews=list(page.reviews.itertuples()), csrf_token="",
                               reviewer="", saved=False, error=None), encoding="utf-8")
        written.append(html)
    return written
