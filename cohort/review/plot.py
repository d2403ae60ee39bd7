"""The lab timeline of one patient as SVG: one panel per blood count, CTCAE bands shaded.

Each cytopenia panel shades the grade bands the cohort grades with (grade 1 from the LLN
down to the grade 2 limit, ...), draws the LLN the results carried (a step line: it can
change between laboratories) and the values. Chemotherapy administrations and marrow
reports/conditions are marked on every panel, the index date is a line. Only numbers,
dates and fixed labels are drawn -- no text from the data -- so the SVG carries no patient
text and nothing a browser could run. Uses matplotlib's object API (no pyplot state), so
pages can be drawn from several server threads.
"""
from __future__ import annotations

import io

import pandas as pd
from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

TITLES = {"hgb": "Haemoglobin", "plt": "Platelets", "wbc": "Leukocytes",
          "anc": "Neutrophils (abs.)", "nrbc_ratio": "nRBC", "nrbc_abs": "nRBC (abs.)"}
GRADE_COLOURS = {1: "#fff3b0", 2: "#ffd08a", 3: "#ff9f80", 4: "#e5646a"}
CHEMO, MARROW, INDEX, FINDING = "#6a3d9a", "#8c510a", "#000000", "#1f78b4"


def _bands_for(bands: pd.DataFrame, analyte: str, lln: float | None) -> list[tuple[int, float, float]]:
    """(grade, bottom, top) of each band of ``analyte``; grade 1's top is the LLN."""
    out = []
    rows = bands[bands.analyte == analyte].sort_values("grade")
    for r in rows.itertuples():
        top = lln if r.high_is_lln else r.high
        bottom = 0.0 if pd.isna(r.low) else r.low
        if top is None or pd.isna(top) or top <= bottom:
            continue
        out.append((int(r.grade), float(bottom), float(top)))
    return out


def timeline_svg(labs: pd.DataFrame, bands: pd.DataFrame, events: pd.DataFrame,
                 index_date=None, finding_date=None) -> str:
    """The timeline as an SVG document (text kept as text, so a browser can read labels)."""
    analytes = [a for a in TITLES if a in set(labs.analyte)]
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "bmc-review",
                     "font.size": 9}):
        if not analytes:
            fig = Figure(figsize=(9, 1.2))
            fig.text(0.5, 0.5, "no blood counts on file", ha="center", va="center")
            return _svg(fig)
        height = 1.6 * len(analytes) + 0.9
        fig = Figure(figsize=(11, height))
        # fixed margins (a constrained layout costs seconds per page on a busy machine)
        fig.subplots_adjust(left=0.08, right=0.99, bottom=0.45 / height,
                            top=1 - 0.75 / height, hspace=0.12)
        axes = fig.subplots(len(analytes), 1, sharex=True, squeeze=False)[:, 0]
        dates_all = pd.to_datetime(labs.date)
        for ax, analyte in zip(axes, analytes, strict=True):
            rows = labs[labs.analyte == analyte].sort_values("date")
            x = pd.to_datetime(rows.date)
            lln = rows.lln.dropna()
            lln_ref = float(lln.median()) if len(lln) else None
            top = max(float(rows.value.max()), lln_ref or 0.0) * 1.12 or 1.0
            for grade, bottom, band_top in _bands_for(bands, analyte, lln_ref):
                ax.axhspan(bottom, min(band_top, top), color=GRADE_COLOURS.get(grade, "#ddd"),
                           alpha=0.8, lw=0, zorder=0)
            if len(lln):
                ax.step(x, rows.lln, where="post", color="#555", lw=1, ls="--", zorder=2)
            ax.plot(x, rows.value, marker="o", ms=3.5, lw=1.2, color="#08306b", zorder=3)
            unit = rows.unit.iloc[0] if len(rows) else ""
            ax.set_ylabel(f"{TITLES[analyte]}\n{unit}", fontsize=8)
            ax.set_ylim(0, top)
            ax.margins(x=0.02)
            _mark_events(ax, events, index_date, finding_date)
        locator = AutoDateLocator()
        axes[-1].xaxis.set_major_locator(locator)
        axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
        axes[0].set_xlim(*_xlim(dates_all, events, index_date))
        fig.legend(handles=_legend(bands), loc="upper center", ncols=5, fontsize=7,
                   frameon=False)
        return _svg(fig)


def _mark_events(ax, events: pd.DataFrame, index_date, finding_date) -> None:
    for r in events.itertuples():
        if pd.isna(r.date):
            continue
        when = pd.Timestamp(r.date)
        if r.kind == "chemotherapy":
            ax.axvline(when, color=CHEMO, lw=0.8, alpha=0.55, zorder=1)
        else:
            ax.axvline(when, color=MARROW, lw=1.6, ls="-." if not r.proves else "-", zorder=4)
    if finding_date is not None and not pd.isna(finding_date):
        ax.axvline(pd.Timestamp(finding_date), color=FINDING, lw=1.4, ls=":", zorder=4)
    if index_date is not None and not pd.isna(index_date):
        ax.axvline(pd.Timestamp(index_date), color=INDEX, lw=1.8, zorder=5)


def _xlim(dates: pd.Series, events: pd.DataFrame, index_date) -> tuple:
    """From a little before the first count to a little after the last count or event."""
    points = list(dates.dropna())
    points += [pd.Timestamp(d) for d in events.date.dropna()] if len(events) else []
    if index_date is not None and not pd.isna(index_date):
        points.append(pd.Timestamp(index_date))
    lo, hi = min(points), max(points)
    pad = max((hi - lo) * 0.03, pd.Timedelta(days=7))
    return lo - pad, hi + pad


def _legend(bands: pd.DataFrame) -> list:
    grades = sorted(set(int(g) for g in bands.grade))
    return ([Line2D([], [], color="#08306b", marker="o", ms=3.5, label="value"),
             Line2D([], [], color="#555", ls="--", label="LLN")]
            + [Patch(color=GRADE_COLOURS.get(g, "#ddd"), label=f"CTCAE grade {g}")
               for g in grades]
            + [Line2D([], [], color=CHEMO, label="chemotherapy"),
               Line2D([], [], color=MARROW, label="marrow report/condition (dash-dot: not proving)"),
               Line2D([], [], color=FINDING, ls=":", label="screen finding"),
               Line2D([], [], color=INDEX, lw=1.8, label="index date")])


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()
