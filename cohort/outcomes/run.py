"""Build the outcomes report from a database: the found cohort and a given list of patients,
side by side, every analysis, and the published-vs-reproduced table.

:func:`build_report` reads the database (through :mod:`.records`) and returns the document and
the results; :func:`write_report` writes it. Progress is reported through a callback, so the
CLI decides where it goes (stderr).
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from ..engine import DuckDBEngine, Engine
from ..errors import DatabaseError, UsageError
from . import plots
from .analysis import GroupResult, analyse_group
from .incidence import Incidence, incidence
from .records import (
    as_id,
    as_key,
    breast_cancer_patients,
    data_overview,
    missing_cohort_tables,
    outside_scope,
    prepare,
    read_found_cohort,
    read_records,
    regimen_table,
)
from .report import Document, write_document
from .sections import SYNTHETIC, build_document
from .verdicts import Verdict, tally, verdicts

FOUND, LISTED = "found cohort", "paper's 22 as published"


@dataclass(frozen=True)
class IdList:
    """Patients given by id; ``paper_patient`` maps id -> the paper's patient number."""

    ids: tuple[str, ...]
    paper_patient: dict[str, int]
    source: str


@dataclass(frozen=True)
class ReportResult:
    document: Document
    groups: dict[str, GroupResult]
    verdicts: dict[str, list[Verdict]]
    incidence: list[Incidence]
    cutoff: date | None
    synthetic: bool = False


def read_id_list(path: Path) -> IdList:
    """Patient ids from a file: a CSV with ``patient_id`` (and optionally ``paper_patient``: then
    only rows with a paper number are taken, e.g. ``sample_bundles/roles.csv``), or one id per
    line."""
    if not path.is_file():
        raise UsageError(f"--ids {path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    first = text.splitlines()[0] if text.strip() else ""
    if "patient_id" in first.split(","):
        rows = list(csv.DictReader(text.splitlines()))
        if "paper_patient" in rows[0] if rows else False:
            rows = [r for r in rows if (r.get("paper_patient") or "").strip()]
            numbers = {as_id(r["patient_id"]): int(float(r["paper_patient"])) for r in rows}
        else:
            numbers = {}
        ids = tuple(as_id(r["patient_id"].strip()) for r in rows if r["patient_id"].strip())
    else:
        ids = tuple(as_id(x.strip()) for x in text.splitlines() if x.strip() and
                    not x.startswith("#"))
        numbers = {}
    if not ids:
        raise UsageError(f"--ids {path}: no patient ids found")
    return IdList(ids, numbers, str(path))


def _listed_group(ids: IdList, rec) -> pd.DataFrame:
    """Index date of a listed patient from the record: the earliest positive marrow report or
    marrow-metastasis Condition (the BMC diagnosis as documented)."""
    dates = pd.concat([
        rec.marrow_reports[["patient_key", "day"]],
        rec.metastases.loc[rec.metastases["site"] == "marrow", ["patient_key", "onset_date"]]
        .rename(columns={"onset_date": "day"}),
    ]).dropna().groupby("patient_key")["day"].min()
    g = pd.DataFrame({"patient_key": [as_key(i) for i in ids.ids]})
    g["index_date"] = g["patient_key"].map(dates)
    g["paper_patient"] = [ids.paper_patient.get(i) for i in ids.ids]
    g["route"] = None
    return g[g["index_date"].notna()].reset_index(drop=True)


def build_report(engine: Engine, *, ids: IdList | None = None,
                 cutoff: date | None = None, found: pd.DataFrame | None = None,
                 progress: Callable[[str], None] = lambda _: None,
                 truth: Mapping[str, bool] | None = None,
                 sensitivity: bool = False) -> ReportResult:
    """Analyse the found cohort (table ``bmc_cohort`` unless ``found`` is given) and, with
    ``ids``, the listed patients; return the report document and the results.

    ``engine`` is where the tables are (:class:`~cohort.engine.DuckDBEngine` or
    :class:`~cohort.engine.SparkEngine`): only the reads of :mod:`.records` run there; the
    analyses run on the small per-patient frames they return, the same code for both."""
    prepare(engine)
    regimens = regimen_table()
    groups: dict[str, GroupResult] = {}
    notes: list[str] = []
    if found is None:
        try:
            found = read_found_cohort(engine)
        except DatabaseError as e:
            if ids is None:
                raise
            notes.append(f"No found cohort: {e}")
    numbers = ids.paper_patient if ids else {}
    keys: set[str] = set()
    if found is not None:
        found = found.copy()
        found["patient_key"] = [as_key(str(x)) for x in found["patient_id"]]
        found["paper_patient"] = [numbers.get(as_id(k)) for k in found["patient_key"]]
        keys |= set(found["patient_key"])
    if ids is not None:
        keys |= {as_key(i) for i in ids.ids}
    progress(f"reading records of {len(keys)} patients")
    rec = read_records(engine, keys)
    if found is not None and len(found):
        progress(f"analysing the {FOUND} ({len(found)} patients)")
        groups[FOUND] = analyse_group(FOUND, rec, found, regimens, cutoff)
    if ids is not None:
        listed = _listed_group(ids, rec)
        if len(listed) < len(ids.ids):
            notes.append(f"{len(ids.ids) - len(listed)} listed patient(s) have no documented BMC "
                         "date (no marrow report or marrow-metastasis Condition) or are not in "
                         "the database")
        if len(listed):
            progress(f"analysing the {LISTED if numbers else 'listed patients'} ({len(listed)})")
            groups[LISTED] = analyse_group(LISTED, rec, listed, regimens, cutoff)
    analysed = {k for g in groups.values() for k in g.patients["patient_key"]}
    unseen = outside_scope(engine, analysed) if analysed else []
    if unseen:
        notes.append(f"{len(unseen)} analysed patient(s) are outside bmc_scope (no nRBC result, "
                     "bone/marrow metastasis or marrow report), so the cohort kept no blood "
                     "counts of theirs")
    progress("incidence among breast-cancer patients")
    bc = breast_cancer_patients(engine)
    inc = [incidence(label, g.patients["patient_key"], bc) for label, g in groups.items()]
    if found is not None and FOUND not in groups:  # an empty cohort: 0 of N, said as such
        inc.insert(0, incidence(FOUND, [], bc))
    overview = data_overview(engine)
    progress("published vs reproduced")
    verdict_rows = {label: verdicts(g, ids_given=label == LISTED) for label, g in groups.items()}
    progress("figures")
    figures = {}
    fig1 = _published_median("Figure 1 caption", "fig1_os_bmc")
    fig2 = _published_median("Results", "os_met")
    for label, g in groups.items():
        slug = "found" if label == FOUND else "listed"
        if g.km_bmc is not None:
            figures[f"km_bmc_{slug}"] = plots.km_png(
                [g.km_bmc], f"Figure 1. Overall survival from BMC diagnosis - {label}",
                published=fig1)
        if g.km_metastasis is not None:
            figures[f"km_metastasis_{slug}"] = plots.km_png(
                [g.km_metastasis],
                f"Figure 2. Overall survival from diagnosis of metastatic disease - {label}",
                published=fig2)
        if g.onset_logrank is not None:
            figures[f"km_onset_{slug}"] = plots.km_png(
                list(g.onset_logrank.groups),
                f"OS from BMC, early (< 36 months) vs late onset - {label}")
    synthetic = is_synthetic_sample(ids, groups)
    doc = build_document(groups, verdict_rows, inc, figures, cutoff, notes, overview, synthetic)
    progress("beyond the paper: exact intervals, Cox, medians, sensitivity of the definition")
    _add_beyond(doc, engine, groups, inc, truth, sensitivity)
    return ReportResult(doc, groups, verdict_rows, inc, cutoff, synthetic)


def is_synthetic_sample(ids: IdList | None, groups: dict) -> bool:
    """The database is the committed synthetic sample: the paper's 22 were picked by the
    sample's own roles.csv and found in it."""
    from ..paths import sample_bundles_dir

    if ids is None or LISTED not in groups:
        return False
    roles = sample_bundles_dir() / "roles.csv"
    return roles.is_file() and Path(ids.source).resolve() == roles.resolve()


def _published_median(source: str, prefix: str) -> plots.PublishedMedian:
    """The paper's median and CI of a figure: ``<prefix>_median``, ``_ci_low``, ``_ci_high``
    of cohort/data/published.csv (Figure 1's caption; Figure 2's numbers are in the text)."""
    from .published import published_by_key

    pub = published_by_key()
    return plots.PublishedMedian(source, float(pub[f"{prefix}_median"].value),
                                 (float(pub[f"{prefix}_ci_low"].value),
                                  float(pub[f"{prefix}_ci_high"].value)))


def report_summary(result: ReportResult) -> dict:
    """The short account of a report (``bmc demo`` prints it as JSON): per analysed group its
    size, median OS from BMC and the verdict counts; the incidence as 'k of N'; and, for a
    database without any BMC case, a sentence saying so instead of numbers that are not there.
    """
    def median(g: GroupResult) -> dict | None:
        km = g.km_bmc
        if km is None:
            return None
        return {"months": None if km.median is None else round(km.median, 1),
                "ci95": [None if x is None else round(x, 1) for x in km.median_ci]}

    out: dict = {
        "groups": {label: {"patients": g.n, "median_os_from_bmc": median(g),
                           "published_vs_reproduced": tally(result.verdicts[label]),
                           "by_construction": sum(bool(v.by_construction)
                                                  for v in result.verdicts[label])}
                   for label, g in result.groups.items()},
        "incidence": {i.label: f"{i.cases} of {i.breast_cancer_patients}"
                      for i in result.incidence},
    }
    if result.synthetic:
        out["synthetic"] = SYNTHETIC
    if not result.groups:
        out["message"] = ("no BMC case in this database: nothing to compare with the paper "
                          "(the report shows the funnel and the incidence)")
    return out


def _add_beyond(doc: Document, engine: Engine, groups: dict[str, GroupResult],
                inc: list[Incidence], truth: Mapping[str, bool] | None,
                sensitivity: bool) -> None:
    """Insert the "Beyond the paper" sections before "Methods and caveats". The sensitivity
    of the definition is run only when asked (``bmc report --sensitivity``) and on DuckDB
    only (TEMP tables on the report's connection; ``bmc sensitivity`` has the full grid), so
    the default report stays the same on both engines; it varies one choice at a time."""
    from .beyond import beyond_sections
    from .records import built_parameters
    from .sensitivity import run_sensitivity

    sens, why = None, ""
    if not sensitivity:
        why = ("Not run: `bmc report --sensitivity` adds it (DuckDB), `bmc sensitivity --db "
               "FILE` runs the full grid.")
    elif engine.name == "duckdb":
        sens = run_sensitivity(engine.con, truth=truth,  # type: ignore[attr-defined]
                               base=built_parameters(engine), design="one-at-a-time")
        if truth is None:
            why = "No truth labels given (`bmc report --truth FILE`), so no sensitivity/PPV."
    else:
        why = "Not computed on Spark: run `bmc sensitivity --db FILE` on a DuckDB database."
    at = next((i for i, s in enumerate(doc.sections) if s.title == "Methods and caveats"),
              len(doc.sections))
    doc.sections[at:at] = beyond_sections(groups, inc, sens, why)


def write_report(db: Path, out_dir: Path, *, ids_file: Path | None = None,
                 cutoff: date | None = None,
                 progress: Callable[[str], None] = lambda _: None,
                 truth_file: Path | None = None,
                 sensitivity: bool = False) -> tuple[ReportResult, dict]:
    """Open ``db`` read-only, build the report and write it into ``out_dir``.

    The report reads the cohort's tables (blood counts and grades of ``bmc_lab`` /
    ``bmc_lab_grade``); when the database has none yet, the cohort is built first with the
    default parameters, as ``bmc cohort`` would.
    """
    from ..check import read_truth
    from ..definition import build_cohort
    from ..runner import check_loaded, open_database

    ids = read_id_list(ids_file) if ids_file else None
    truth = read_truth(truth_file) if truth_file else None
    con = open_database(db, read_only=True)
    try:
        check_loaded(con)
        build = bool(missing_cohort_tables(DuckDBEngine(con)))
    finally:
        con.close()
    if build:
        progress("building the cohort tables (bmc cohort, default parameters)")
        con = open_database(db)
        try:
            build_cohort(con)
        finally:
            con.close()
    con = open_database(db, read_only=True)
    try:
        result = build_report(DuckDBEngine(con), ids=ids, cutoff=cutoff, progress=progress,
                              truth=truth, sensitivity=sensitivity)
    finally:
        con.close()
    progress(f"writing {out_dir}")
    return result, write_document(result.document, out_dir)
