"""The report's content: results of each group turned into sections of tables, figures and text
(pure; :mod:`.report` renders them)."""
from __future__ import annotations

from datetime import date

import pandas as pd

from . import survival
from .analysis import GroupResult
from .incidence import Incidence
from .published import published_table
from .records import DataOverview
from .report import Document, Image, Section, Table
from .verdicts import Verdict, tally

FOUND_LABEL, LISTED_LABEL = "found cohort", "paper's 22 as published"
MAIN = (FOUND_LABEL, LISTED_LABEL)  # the found cohort leads: it is what the definition finds


def _na(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype(object).where(df.notna(), "NA")


def _order(groups: dict[str, GroupResult]) -> list[str]:
    return [g for g in MAIN if g in groups] + [g for g in groups if g not in MAIN]


def _f(x, nd: int = 1) -> str:
    return "NA" if x is None or (isinstance(x, float) and pd.isna(x)) else f"{x:.{nd}f}"


def _ci(ci) -> str:
    return "NA" if ci is None else f"{_f(ci[0])}-{_f(ci[1])}"


SYNTHETIC = ("This database is the committed synthetic sample, built to match the paper: "
             "agreement here tests the pipeline's arithmetic, not the paper.")


def tally_sentence(label: str, n: int, rows: list[Verdict]) -> str:
    """One group's verdict counts in words, with how many rows any data would reproduce."""
    t = tally(rows)
    built = sum(bool(v.by_construction) for v in rows)
    return (f"Against the {label} (n={n}): {t['reproduced']} of {len(rows)} published numbers "
            f"reproduced, {t['reproduced under a method']} reproduced only under one stated "
            f"method, {t['differs']} differ, {t['paper inconsistent']} follow the paper's own "
            f"other numbers where it contradicts itself, {t['definition']} definition(s) applied"
            + (f", {t['not in the group']} table cells of patients not in the group"
               if t["not in the group"] else "")
            + f"; {built} rows would be reproduced by any data (column 'by construction').")


def _verdict_table(rows: dict[str, list[Verdict]], order: list[str], cells: bool) -> pd.DataFrame:
    main = rows[order[0]]
    df = pd.DataFrame({
        "number": [v.key for v in main], "source": [v.source for v in main],
        "statement": [v.statement for v in main], "published": [v.published for v in main],
        f"reproduced ({order[0]})": [v.reproduced for v in main],
        "verdict": [v.verdict for v in main], "reason": [v.reason for v in main],
        "by construction": [v.by_construction for v in main]})
    for other in order[1:]:
        df[f"reproduced ({other})"] = [v.reproduced for v in rows[other]]
        df[f"verdict ({other})"] = [v.verdict for v in rows[other]]
    is_cell = df["number"].str.startswith("table_")
    return df[is_cell if cells else ~is_cell].reset_index(drop=True)


def _published_frame(name: str, columns) -> pd.DataFrame:
    tab = published_table(name)
    return pd.DataFrame([{"label": f"P{n:02d}", **{c: v for c, v in r.items()}}
                         for n, r in tab.items()])[list(columns)]


def _as_printed(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if c in ("interval_months", "normoblasts_per_100_wbc"):
            out[c] = [None if pd.isna(x) else str(round(float(x))) for x in out[c]]
        elif c not in ("label",):
            out[c] = [None if x is None or (isinstance(x, float) and pd.isna(x))
                      else str(int(x)) if isinstance(x, float | int) and not isinstance(x, bool)
                      else str(x) for x in out[c]]
    return out


def printed_table(g: GroupResult, name: str) -> pd.DataFrame:
    """Table I or II of a group formatted like the paper (whole months, 'NA' for missing)."""
    return _as_printed(g.table_i if name == "table_i" else g.table_ii)


def _cell_compare(g: GroupResult, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    mine = printed_table(g, name)
    pub = _published_frame(name, mine.columns).set_index("label")
    mine = mine[mine["label"].isin(pub.index)].reset_index(drop=True)
    hl = pd.DataFrame(False, index=mine.index, columns=mine.columns)
    for i, r in mine.iterrows():
        for c in mine.columns[1:]:
            p = pub.at[r["label"], c]
            hl.at[i, c] = (p or None) != (r[c] or None)
    return mine.pipe(_na), hl


def _summary_side_by_side(groups, order, key: str) -> pd.DataFrame:
    rows: dict[str, dict[str, object]] = {}  # figure -> group label -> shown value
    for label in order:
        s = getattr(groups[label], key)
        for k, v in s.items():
            rows.setdefault(k, {})[label] = (", ".join(f"{a} {b}" for a, b in v.items())
                                              if isinstance(v, dict) else _f(v, 2)
                                              if isinstance(v, float) else v)
    return pd.DataFrame([{"figure": k, **v} for k, v in rows.items()])


def _km_rows(km: survival.KaplanMeier | None, what: str) -> dict:
    if km is None:
        return {"analysis": what}
    s = km.survival_at
    return {
        "analysis": what, "n": km.n, "deaths": km.events,
        "median (months)": _f(km.median), "95% CI (log-log)": _ci(km.median_ci),
        "95% CI (symmetric, aux.)": _ci(km.symmetric_ci),
        "median, R midpoint rule": _f(km.median_midpoint),
        **{f"S({int(t)}) [95% CI]": "NA" if v[0] is None else
           f"{v[0]:.2f} [{v[1]:.2f}-{v[2]:.2f}]" for t, v in s.items()},
        "alive at 48 months": km.alive_at.get(48.0),
        "at risk 0/12/24/36/48/60/72": "/".join(str(v) for v in km.at_risk.values()),
    }


def patients(flags: pd.Series) -> int:
    """Patients whose flag is true. An object column of True/False/None sums to nonsense
    (``sum`` over objects can stop at the first None, and 'True' strings count as text), so
    count the true values."""
    return sum(1 for x in flags if x is not None and not pd.isna(x) and bool(x))


def _treatment_summary(groups, order) -> pd.DataFrame:
    rows: dict[str, dict] = {}

    def put(name: str, label: str, value) -> None:
        rows.setdefault(name, {})[label] = value

    for label in order:
        g = groups[label]
        p, t = g.patients, g.treatment

        def column(name: str, t=t) -> pd.Series:
            # a group where nobody was treated has no per-treatment columns at all
            return t[name] if name in t else pd.Series(dtype=object)

        put("offered chemotherapy", label, int(p["offered"].sum()))
        put("received chemotherapy", label, int(p["received"].sum()))
        for reg, n in column("regimen").value_counts().sort_index().items():
            put(f"regimen: {reg}", label, int(n))
        put("cycles, median", label, _f(column("cycles").median()) if len(t) else "NA")
        put("patients with a postponed cycle", label, int((column("postponed_cycles") > 0).sum()))
        put("patients with a dose reduction", label,
            int(column("dose_reduced_from_cycle").notna().sum()))
        for r, n in column("best_response").value_counts().sort_index().items():
            put(f"best response: {r}", label, int(n))
        for lin in ("anaemia", "thrombocytopenia", "leukopenia"):
            col = t.get(f"{lin}_course", pd.Series(dtype=object)).dropna()
            put(f"{lin} at BMC (treated)", label, len(col))
            for k in ("normalised", "improved", "unchanged", "worse", "not evaluable"):
                put(f"  {lin}: {k}", label, int((col == k).sum()))
        put("grade 3/4 haematological toxicity (patients)", label,
            patients(column("heme_toxicity_g34")))
        put("febrile neutropenia (patients)", label, patients(column("febrile_neutropenia")))
        put("febrile neutropenia (events)", label, int(column("febrile_neutropenia_events").sum()))
        put("bleeding (patients)", label, patients(column("bleeding")))
        for gr in (1, 2, 3, 4):
            put(f"  bleeding grade {gr}", label, int((column("bleeding_grade") == gr).sum()))
    return pd.DataFrame([{"figure": k, **v} for k, v in rows.items()]).fillna(0)


TREATMENT_COLUMNS = ("label", "regimen", "first_dose", "cycles", "postponed_cycles",
                     "dose_reduced_from_cycle", "best_response", "anaemia_course",
                     "thrombocytopenia_course", "leukopenia_course", "hgb_grade_post",
                     "plt_grade_after_cycle1", "plt_grade_post", "wbc_grade_worst",
                     "wbc_grade_post", "heme_toxicity_g34", "febrile_neutropenia",
                     "bleeding_grade")


def _incidence_section(inc: list[Incidence]) -> Section:
    return Section("Incidence", [Table("BMC cases among breast-cancer patients", pd.DataFrame([{
        "group": i.label, "cases": i.cases, "breast-cancer patients": i.breast_cancer_patients,
        "proportion": "NA" if i.proportion is None else f"{100 * i.proportion:.1f}%",
        "95% CI (Wilson)": "NA" if i.ci is None else f"{100 * i.ci[0]:.1f}-{100 * i.ci[1]:.1f}%",
        "cases without coded breast cancer": i.cases_without_breast_cancer,
        "breast-cancer onsets": "NA" if i.first_year is None else f"{i.first_year}-{i.last_year}"}
        for i in inc], columns=INCIDENCE_COLUMNS), csv="incidence")])


INCIDENCE_COLUMNS = ("group", "cases", "breast-cancer patients", "proportion", "95% CI (Wilson)",
                     "cases without coded breast cancer", "breast-cancer onsets")


def data_sentences(overview: DataOverview | None, n_found: int | None) -> list[str]:
    """What the database holds for the definition, in plain words: patients, breast cancer,
    blood counts and marrow reports in scope, and the found cohort's size (None: not read)."""
    if overview is None:
        return []
    pop, bc = overview.step("population"), overview.step("breast_cancer")
    if pop == 0:
        return ["The database holds no Patient resource, so there is nothing to analyse."]
    out = [f"The database holds {pop} patient(s); {bc} of them have a breast-cancer Condition "
           "(value set breast_cancer)."]
    if bc == 0:
        out.append("No patient has breast cancer coded with a code the definition knows, so "
                   "no one can meet the BMC definition.")
    if overview.blood_counts == 0:
        out.append("No blood count (haemoglobin, platelets, leukocytes, nucleated red cells) of "
                   "a patient in scope was found, so the smear-with-cytopenia route cannot find "
                   "anyone.")
    if overview.marrow_reports == 0:
        out.append("No marrow biopsy or cytology report proves marrow involvement, so the "
                   "histology route cannot find anyone.")
    if n_found == 0:
        out.append(f"The definition found no BMC case: 0 of {bc} breast-cancer patients. The "
                   "funnel below shows where the patients left; the incidence is 0.")
    return out


def _funnel_section(overview: DataOverview) -> Section:
    return Section("Cohort funnel", [Table(
        "Patients left after each rule of the definition (bmc_funnel)",
        overview.funnel[["step", "rule", "description", "patients", "excluded"]].pipe(_na),
        csv="funnel")])


def _no_case_document(inc: list[Incidence], cutoff: date | None, notes: list[str],
                      overview: DataOverview | None) -> Document:
    """The report of a database without any BMC case: why, the funnel and the incidence."""
    words = data_sentences(overview, 0) or ["The definition found no BMC case."]
    secs = [Section("No BMC case in this database", [
        *words,
        "Tables I and II, treatment, survival and the comparison with the paper's published "
        "numbers need at least one patient, so they are not shown."])]
    if overview is not None:
        secs.append(_funnel_section(overview))
    secs.append(_incidence_section(inc))
    if notes:
        secs.append(Section("Methods and caveats", list(notes)))
    intro = ["Outcomes of the bone marrow carcinomatosis (BMC) case series (22 breast-cancer "
             "patients, Anticancer Research 31:4025-4030, 2011) recomputed from the FHIR data "
             "in the database: this database has no BMC case."]
    return Document("BMC in breast cancer: published vs reproduced", intro, secs)


def build_document(groups: dict[str, GroupResult], verdict_rows: dict[str, list[Verdict]],
                   inc: list[Incidence], figures: dict[str, bytes], cutoff: date | None,
                   notes: list[str], overview: DataOverview | None = None,
                   synthetic: bool = False) -> Document:
    """The report's sections; with no group to analyse (no BMC case found and no listed
    patient with a BMC date), the plain-words account, the funnel and the incidence."""
    if not groups:
        return _no_case_document(inc, cutoff, notes, overview)
    order = _order(groups)
    main = order[0]
    intro = [
        "Outcomes of the bone marrow carcinomatosis (BMC) case series (22 breast-cancer "
        "patients, Anticancer Research 31:4025-4030, 2011) recomputed from the FHIR data in the "
        "database, for "
        + " and ".join(f"the {g} (n={groups[g].n})" for g in order) + ".",
        "Censoring: " + (f"data cut-off {cutoff.isoformat()} (deaths after it are censored)."
                         if cutoff else "at each patient's last dated record (no cut-off given)."),
    ]
    intro += data_sentences(overview, groups[FOUND_LABEL].n if FOUND_LABEL in groups else 0)
    intro += [SYNTHETIC] if synthetic else []
    secs: list[Section] = []
    t_cells = tally(verdict_rows[main], lambda v: v.key.startswith("table_"))
    summary = Section("Published vs reproduced", [
        *(tally_sentence(label, groups[label].n, verdict_rows[label]) for label in order),
        f"Table I/II cells ({main}): {t_cells['reproduced']} of {sum(t_cells.values())} equal.",
        *([SYNTHETIC] if synthetic else []),
        Table("Every number of the paper's text, figure caption and summary statements",
              _verdict_table(verdict_rows, order, cells=False), csv="published_vs_reproduced",
              note="Tolerance: half a unit of the last printed digit for measured quantities; "
                   "counts, grades and text exactly. Verdict 'paper inconsistent': the printed "
                   "number disagrees with the paper's own tables or sentences (reason given)."),
    ])
    secs.append(summary)
    for name, title in (("table_i", "Table I - at primary diagnosis"),
                        ("table_ii", "Table II - at BMC diagnosis")):
        sec = Section(title)
        g = groups[main]
        if g.patients["paper_patient"].notna().any():
            mine, hl = _cell_compare(g, name)
            sec.blocks.append(Table(f"{title.split(' - ')[0]} reproduced ({main}); cells that "
                                    "differ from the published table are marked", mine,
                                    csv=f"{name}_{'listed' if main == LISTED_LABEL else 'found'}",
                                    highlight=hl))
        for label in order:
            if label != main or not g.patients["paper_patient"].notna().any():
                sec.blocks.append(Table(f"{title.split(' - ')[0]} ({label})",
                                        printed_table(groups[label], name).pipe(_na),
                                        csv=f"{name}_{'listed' if label == LISTED_LABEL else 'found'}",
                                        collapsed=True))
        key = "table_i_summary" if name == "table_i" else "table_ii_summary"
        sec.blocks.append(Table("Summary figures", _summary_side_by_side(groups, order, key),
                                csv=f"{name}_summary"))
        secs.append(sec)
    diag = []
    for label in order:
        g = groups[label]
        s, s2, c = g.smear_sensitivity, g.smear_sensitivity_with_cytopenia, g.normoblast_correlation
        diag.append({
            "group": label,
            "smear sensitivity (normoblasts > 0), histology-proven": (
                f"{s.k}/{s.n} = {100 * s.value:.1f}% [{_ci(tuple(100 * x for x in s.ci))}]"
                if s.value is not None and s.ci is not None else "NA"),
            "with cytopenia >= grade 1": (f"{s2.k}/{s2.n} = {100 * s2.value:.1f}%"
                                          if s2.value is not None else "NA"),
            "Pearson r normoblasts vs OS": f"{_f(c.r, 3)} (p = {_f(c.p, 2)}, n = {c.n})",
            "Spearman rho": _f(c.spearman_rho, 3), "Pearson r, deaths only": _f(c.pearson_deaths_only, 3),
        })
    secs.append(Section("Diagnostics", [
        Table("Smear sensitivity and normoblasts vs survival", pd.DataFrame(diag),
              csv="diagnostics",
              note=f"Coefficient: {groups[main].normoblast_correlation.coefficient}. "
                   "95% interval of the sensitivity: Wilson score.")]))
    trt = Section("Treatment for BMC", [
        Table("Regimens, response, cytopenia course after the first regimen, toxicity",
              _treatment_summary(groups, order), csv="treatment_summary",
              note="Course: index grade vs the last CBC within 42 days after the last dose "
                   "(anaemia counted from grade 2, the paper's '14 anaemic'; the other lineages "
                   "from grade 1). Toxicity: worst grade after the first dose >= 3 and above the "
                   "index grade.")])
    for label in order:
        t = groups[label].treatment
        trt.blocks.append(Table(f"Per patient ({label})",
                                t[[c for c in TREATMENT_COLUMNS if c in t]].pipe(_na),
                                csv=f"treatment_{'listed' if label == LISTED_LABEL else 'found'}",
                                collapsed=True))
    secs.append(trt)
    surv = Section("Survival")
    for label in order:
        slug = "listed" if label == LISTED_LABEL else "found"
        for fig, cap in ((f"km_bmc_{slug}", "Figure 1: OS from BMC diagnosis"),
                         (f"km_metastasis_{slug}", "Figure 2: OS from diagnosis of metastatic "
                                                   "disease (first distant metastasis)"),
                         (f"km_onset_{slug}", "OS from BMC, early vs late onset")):
            if fig in figures:
                surv.blocks.append(Image(f"{cap} ({label})", figures[fig], f"{fig}.png",
                                         f"{cap} ({label}): Kaplan-Meier with pointwise 95% "
                                         "band (log(-log)); ticks = censored; numbers at risk "
                                         "under the axis"
                                         + ("; the diamond is the paper's median and 95% CI"
                                            if fig.startswith(("km_bmc", "km_metastasis"))
                                            else "") + "."))
    km_rows, lr_rows = [], []
    for label in order:
        g = groups[label]
        km_rows.append({"group": label, **_km_rows(g.km_bmc, "OS from BMC")})
        km_rows.append({"group": label, **_km_rows(g.km_metastasis, "OS from first metastasis")})
        if g.onset_logrank is not None:
            lr = g.onset_logrank
            for km in lr.groups:
                km_rows.append({"group": label, **_km_rows(km, f"OS from BMC, {km.label} onset")})
            cox = g.onset_cox
            lr_rows.append({"group": label, "early n": lr.groups[0].n, "late n": lr.groups[1].n,
                            "median early": _f(lr.groups[0].median),
                            "median late": _f(lr.groups[1].median),
                            "log-rank chi2 (1 df)": f"{lr.chi2:.4f}", "p": f"{lr.p:.4f}",
                            "Cox HR late vs early [95% CI]": "NA" if cox is None else
                            f"{cox.hazard_ratio:.2f} [{cox.ci[0]:.2f}-{cox.ci[1]:.2f}]",
                            "Cox p": "NA" if cox is None else f"{cox.p:.3f}"})
    surv.blocks.append(Table("Kaplan-Meier estimates", pd.DataFrame(km_rows), csv="survival",
                             note=f"Months of {survival.MONTH_DAYS} days. Median: smallest t "
                                  f"with S(t) <= 0.5 (lifelines). CI: {survival.CI_METHOD}. "
                                  f"Auxiliary: {survival.SYMMETRIC_CI_METHOD}."))
    if lr_rows:
        surv.blocks.append(Table("Early (< 36 months from first diagnosis) vs late onset",
                                 pd.DataFrame(lr_rows), csv="logrank"))
    secs.append(surv)
    secs.append(_incidence_section(inc))
    if overview is not None:
        secs.append(_funnel_section(overview))
    secs.append(Section("Table I and II cell by cell", [
        Table("Every published table cell with its verdict",
              _verdict_table(verdict_rows, order, cells=True), csv="table_cells_vs_published",
              collapsed=True)]))
    notes_all = list(notes) + [n for g in order for n in groups[g].notes]
    secs.append(Section("Methods and caveats", [
        "Every value comes from the DuckDB tables (SQL in queries/outcomes/); the paper's "
        "numbers come from cohort/data/published.csv (source and statement per number).",
        "The found cohort is table bmc_cohort; the listed patients' BMC date is their earliest "
        "positive marrow report or marrow-metastasis Condition.",
        "Blood counts, their LLN and CTCAE grades are the cohort's (tables bmc_lab and "
        "bmc_lab_grade; anaemia grade 4 = Hgb < 6.5 g/dL from CTC v2.0/v3.0 unless the cohort was "
        "built with anemia_grade4=false).",
        "Bleeding and febrile-neutropenia grades are Condition.severity (NCIt grade codes in "
        "condition.severity_codings).",
        *notes_all]))
    return Document("BMC in breast cancer: published vs reproduced", intro, secs)
