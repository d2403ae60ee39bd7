"""The report's "Beyond the paper" sections: what a reader of the case series would want next.

* exact (Clopper-Pearson) intervals for every published proportion (:mod:`.intervals`);
* the abstract's claim "prognosis from BMC is independent of the duration of metastatic
  disease" as a continuous Cox term (HR per year) beside the paper's dichotomised log-rank;
* every Kaplan-Meier median under both conventions (lifelines' first t with S <= 0.5 and R's
  midpoint) with both CI types (log(-log) and the symmetric SPSS-style interval);
* the sensitivity of the cohort to the definition's choices (:mod:`.sensitivity`).

Pure: takes the analysed groups and results, returns report sections.
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import intervals, survival
from .analysis import GroupResult
from .incidence import Incidence
from .report import Image, Section, Table
from .sensitivity import SensitivityResult
from .verdicts import reproduced_values

MONTHS_PER_YEAR = 12.0


def _f(x, nd: int = 2) -> str:
    return "NA" if x is None or (isinstance(x, float) and pd.isna(x)) else f"{x:.{nd}f}"


def _ci(ci) -> str:
    return "NA" if ci is None else f"{_f(ci[0])}-{_f(ci[1])}"


def proportions_table(groups: Mapping[str, GroupResult], inc: list[Incidence]) -> pd.DataFrame:
    """Published and reproduced k/n with exact 95% intervals; the smear sensitivity from
    Table II's counts and the incidence among breast-cancer patients are added per group."""
    values = {label: {k: v.value for k, v in reproduced_values(g).items()}
              for label, g in groups.items()}
    rows = intervals.proportion_rows(values)
    smear = {"proportion": "smear sensitivity (normoblasts > 0, histology-proven)",
             "published": "75% printed; no k/n (Table II: 12/17)"}
    for label, g in groups.items():
        s = g.smear_sensitivity
        smear[f"reproduced ({label})"] = intervals.exact(s.k, s.n).show()
    smear["note"] = "the printed 75% would be 12/16"
    incid = {"proportion": "BMC among breast-cancer patients (incidence)",
             "published": "not printed as a proportion"}
    for i in inc:
        incid[f"reproduced ({i.label})"] = intervals.exact(i.cases, i.breast_cancer_patients).show()
    incid["note"] = "a period proportion; needs every breast-cancer patient of the period"
    return pd.DataFrame([smear, incid, *rows])


def cox_table(groups: Mapping[str, GroupResult]) -> pd.DataFrame:
    """Per group: HR per year of metastatic disease before BMC (the abstract's variable) and
    per year from first diagnosis (the variable of the paper's groups), beside the log-rank
    test of the dichotomised interval."""
    rows = []
    for label, g in groups.items():
        p = g.patients
        lr = g.onset_logrank
        for what, col in (("years of metastatic disease before BMC", "metastasis_to_bmc_months"),
                          ("years from first diagnosis to BMC", "interval_months")):
            cox = survival.cox_continuous(p["os_bmc_months"], p["died"],
                                          p[col] / MONTHS_PER_YEAR, col)
            rows.append({
                "group": label, "covariate (continuous)": what,
                "n": "NA" if cox is None else cox.n, "deaths": "NA" if cox is None else cox.events,
                "HR per year [95% CI]": "NA" if cox is None else
                f"{cox.hazard_ratio:.3f} [{cox.ci[0]:.3f}-{cox.ci[1]:.3f}]",
                "Cox p (Wald)": "NA" if cox is None else f"{cox.p:.4f}",
                "log-rank, early < 36 vs late months from diagnosis": "NA" if lr is None else
                f"chi2 {lr.chi2:.4f}, p {lr.p:.4f}",
                "warnings": "" if cox is None else "; ".join(cox.warnings)})
    return pd.DataFrame(rows)


def medians_table(groups: Mapping[str, GroupResult]) -> pd.DataFrame:
    """Every KM median of the report under both conventions with both CI types."""
    rows = []
    for label, g in groups.items():
        curves: list[tuple[str, survival.KaplanMeier | None]] = [
            ("OS from BMC (Figure 1)", g.km_bmc),
            ("OS from first metastasis (Figure 2)", g.km_metastasis)]
        if g.onset_logrank is not None:
            curves += [(f"OS from BMC, {k.label} onset", k) for k in g.onset_logrank.groups]
        for what, km in curves:
            if km is None:
                continue
            rows.append({"group": label, "analysis": what, "n": km.n, "deaths": km.events,
                         "median, lifelines (first t with S <= 0.5)": _f(km.median),
                         "median, R midpoint rule": _f(km.median_midpoint),
                         "95% CI log(-log)": _ci(km.median_ci),
                         "95% CI symmetric (SPSS-style)": _ci(km.symmetric_ci)})
    return pd.DataFrame(rows)


def _variant(row: pd.Series, axes, defaults: pd.Series) -> str:
    changed = [f"{a.parameter}={row[a.parameter]}" for a in axes
               if row[a.parameter] != defaults[a.parameter]]
    return "default" if not changed else ", ".join(changed)


def sensitivity_table(result: SensitivityResult) -> pd.DataFrame:
    """The sensitivity run as printed: one row per variant, rates to 3 decimals."""
    d = result.default_row
    t = result.table
    out = pd.DataFrame({"variant": [_variant(r, result.axes, d) for _, r in t.iterrows()]})
    for c in ("cohort", "overlap_default", "added", "removed"):
        out[c] = t[c]
    if result.with_truth:
        out["sensitivity"] = [_f(x, 3) for x in t["sensitivity"]]
        out["ppv"] = [_f(x, 3) for x in t["ppv"]]
    out["deaths"] = t["deaths"]
    out["median OS (months)"] = [_f(x) for x in t["median_os_months"]]
    out["95% CI log(-log)"] = [_ci((lo, hi)) for lo, hi in
                               zip(t["median_os_ci_low"], t["median_os_ci_high"], strict=True)]
    return out


def sensitivity_figure(result: SensitivityResult) -> bytes:
    from .plots import sensitivity_png

    t = result.table
    labels = list(sensitivity_table(result)["variant"])
    return sensitivity_png(labels, list(t["overlap_default"]), list(t["added"]),
                           [None if pd.isna(x) else float(x) for x in t["median_os_months"]],
                           [(None if pd.isna(lo) else float(lo), None if pd.isna(hi) else float(hi))
                            for lo, hi in zip(t["median_os_ci_low"], t["median_os_ci_high"],
                                              strict=True)])


def beyond_sections(groups: Mapping[str, GroupResult], inc: list[Incidence],
                    sensitivity: SensitivityResult | None, sensitivity_note: str = ""
                    ) -> list[Section]:
    """The sections, in report order."""
    secs = [Section("Beyond the paper: exact intervals for proportions", [
        Table("Published proportions with exact 95% intervals", proportions_table(groups, inc),
              csv="proportions_exact_ci",
              note=f"{intervals.METHOD}. Denominators: cohort/data/proportions.csv; 'published' "
                   "uses the printed counts, the other columns the counts reproduced from the "
                   "FHIR data.")]),
        Section("Beyond the paper: duration of metastatic disease as a continuous term", [
            "The abstract says prognosis from BMC was independent of the duration of "
            "(metastatic) disease before BMC; the paper tests it by splitting the interval from "
            "first diagnosis at 36 months. A Cox model with the duration in years as a "
            "continuous covariate uses every patient's value and no cut-off.",
            Table("Cox proportional hazards, one continuous covariate, OS from BMC",
                  cox_table(groups), csv="cox_continuous",
                  note="lifelines CoxPHFitter (Efron ties); Wald CI and p; assumes a log-linear, "
                       "proportional effect.")]),
        Section("Beyond the paper: every Kaplan-Meier median, both conventions", [
            Table("Medians and their 95% CIs", medians_table(groups), csv="km_medians",
                  note=f"log(-log): {survival.CI_METHOD}. Symmetric: "
                       f"{survival.SYMMETRIC_CI_METHOD}.")])]
    sens = Section("Beyond the paper: sensitivity of the definition")
    if sensitivity is None:
        sens.blocks.append(sensitivity_note or "Not computed.")
    else:
        sens.blocks += [
            f"The cohort rebuilt with each choice of the definition changed alone, the others at "
            f"their defaults ({len(sensitivity.table)} runs, {sensitivity.stage_builds} stage "
            f"builds instead of {sensitivity.stage_builds_without_reuse} thanks to reuse). "
            "`bmc sensitivity --db FILE` runs the full grid, "
            "where choices can interact. " + sensitivity_note,
            Table("Cohort size, overlap with the default cohort"
                  + (", sensitivity/PPV against the truth labels" if sensitivity.with_truth
                     else "") + " and median OS from the index date",
                  sensitivity_table(sensitivity), csv="sensitivity",
                  note="Overlap = patients also in the default cohort; added/removed relative "
                       "to it. Median OS: lifelines KM from the index date, censored at the "
                       "last record."),
            Image("Sensitivity of the definition", sensitivity_figure(sensitivity),
                  "sensitivity.png", "Cohort size (shared with the default cohort / added) and "
                                     "median OS with 95% CI for each variant.")]
    secs.append(sens)
    return secs
