"""Published vs reproduced: one verdict per number of ``cohort/data/published.csv``.

Every verdict is a test that can fail: a change in the FHIR data that moves a reproduced value
turns its row to 'differs'.

* **reproduced** - every stated method gives the printed value within its printing precision
  (:attr:`PublishedNumber.tolerance`);
* **reproduced under <method>** - only one of the stated methods gives it (a KM median
  convention, a CI type, a count of patients instead of events); both values are shown;
* **paper inconsistent** - the printed value disagrees with what the paper's own tables or
  other sentences imply (:func:`paper_checks`, computed from the transcribed numbers only) and
  the data give exactly that implied value; the reason names which statement implies what;
* **definition** - a number that defines an analysis (the 36-month onset limit), applied as
  printed, and the data give the same groups under the paper's alternative wording;
* **differs** - anything else; the reason says why (method, missing element, the paper gives
  no value, the implied value that the data do not give either);
* **not in the <group>** - a Table I/II cell of a patient the group does not hold.

A row is also marked *by construction* (column ``by_construction`` of the published file, or
n = 22 when the patients are picked by id) when any data would reproduce it, so a reader does
not count it as evidence.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .analysis import EARLY_ONSET_MONTHS, GroupResult
from .published import PublishedNumber, load_published, published_by_key, published_table

REPRODUCED, DIFFERS, INCONSISTENT, DEFINITION = ("reproduced", "differs", "paper inconsistent",
                                                  "definition")
#: Verdict prefixes: 'reproduced under <method>', 'not in the <group>'.
REPRODUCED_UNDER, NOT_IN = "reproduced under", "not in the"
#: Tally keys of the verdicts with a variable text.
UNDER_METHOD, NOT_IN_GROUP = "reproduced under a method", "not in the group"


@dataclass(frozen=True)
class Value:
    """A reproduced value; ``alternatives`` are (method, value) pairs tried after the main one."""

    value: object
    method: str = ""
    alternatives: tuple[tuple[str, object], ...] = ()
    reason_if_differs: str = ""
    #: For a number that defines an analysis: (the data give the same result under the
    #: paper's wording, why) -- see :func:`judge`.
    definition: tuple[bool, str] | None = None


@dataclass(frozen=True)
class Verdict:
    key: str
    source: str
    statement: str
    published: str
    unit: str
    reproduced: str
    verdict: str
    reason: str
    by_construction: str = ""


# --- what the paper's own numbers imply --------------------------------------------------------
def paper_checks() -> dict[str, tuple[object, str, float]]:
    """Per key: (value implied by the paper's other numbers, explanation, how close the data
    must come to it to equal it). Only the transcribed numbers are used, never the data."""
    t1, t2, pub = published_table("table_i"), published_table("table_ii"), published_by_key()

    def num(v):
        return None if v is None else float(v)

    ages = [num(r["age_years"]) for r in t1.values()]
    iv = np.sort([num(r["interval_months"]) for r in t2.values()])
    liver = sum("liver" in (r["metastatic_sites"] or "") for r in t2.values())
    leuko = sum(num(r["leukopenia_ctc_grade"]) >= 1 for r in t2.values())
    hist = [r for r in t2.values() if r["bmc_diagnosis"] == "histology"]
    smear_pos = sum(num(r["normoblasts_per_100_wbc"]) > 0 for r in hist)
    rule = sum(r["bmc_diagnosis"] == "histology" or (
        num(r["normoblasts_per_100_wbc"]) > 0 and max(
            num(r["anemia_ctc_grade"]), num(r["thrombopenia_ctc_grade"]),
            num(r["leukopenia_ctc_grade"])) >= 1) for r in t2.values())
    failing = [n for n, r in t2.items() if not (r["bmc_diagnosis"] == "histology" or (
        num(r["normoblasts_per_100_wbc"]) > 0 and max(
            num(r["anemia_ctc_grade"]), num(r["thrombopenia_ctc_grade"]),
            num(r["leukopenia_ctc_grade"])) >= 1))]
    chi2 = float(pub["logrank_chi2"].value)
    p_implied = float(stats.chi2.sf(chi2, 1))
    fn = int(pub["febrile_neutropenia"].value)
    bleed34 = int(pub["bleeding_g3"].value) + int(pub["bleeding_g4"].value)
    median_text = float(pub["os_bmc_median"].value)
    early, late = int(pub["n_early"].value), int(pub["n_late"].value)
    period = f"{pub['bmc_year_first'].value}-{pub['bmc_year_last'].value}"
    # How close the data must come to an implied value to be "that value": the precision of
    # the printed numbers it is derived from (whole months in Table II and the text's '19';
    # p from a chi-square printed to 3 decimals); counts and ratios of counts exactly.
    p_band = max(abs(float(stats.chi2.sf(chi2 + d, 1)) - p_implied) for d in (-5e-4, 5e-4))
    tolerance = {"logrank_p": p_band, "primary_to_bmc_median": 0.5, "fig1_os_bmc_median": 0.5,
                 "smear_sensitivity": 1e-6}
    implied = {
        "age_min": (min(ages), f"Table I gives a youngest age of {min(ages):.0f} (patient "
                    f"{min(t1, key=lambda n: num(t1[n]['age_years']))})"),
        "age_max": (max(ages), "Table I oldest age"),
        "liver_mets": (liver, f"Table II lists liver metastases in {liver} patients"),
        "leukopenic_at_bmc": (leuko, f"Table II has {leuko} patients with leukopenia grade >= 1, "
                              "and the abstract speaks of 'all 4 leukopenic patients'"),
        "smear_sensitivity": (100 * smear_pos / len(hist),
                              f"Table II: {smear_pos} of {len(hist)} histology-proven patients "
                              f"have normoblasts > 0 = {100 * smear_pos / len(hist):.1f}% "
                              "(75% would be 12/16)"),
        "primary_to_bmc_median": (float(np.median(iv)),
                                  f"the median of Table II's 22 intervals is {np.median(iv):g} "
                                  f"(11th value {iv[10]:g}, 12th {iv[11]:g}); 46 is the lower "
                                  "median"),
        "primary_to_bmc_min": (float(iv.min()), "Table II shortest interval"),
        "primary_to_bmc_max": (float(iv.max()), "Table II longest interval"),
        "logrank_p": (p_implied, f"chi-square {chi2} with 1 df gives p = {p_implied:.4f}, which "
                      "rounds to 0.39"),
        "inclusion_rule_met": (rule, f"by Table II, patient(s) {', '.join(map(str, failing))} "
                               "(smear, no cytopenia) do not meet the stated rule"),
        "cytopenia_events_g34": (fn + bleed34, f"the Results give febrile neutropenia in {fn} "
                                 f"and grade 3/4 bleeding in {bleed34} = {fn + bleed34} events "
                                 "(5 only if counted as patients)"),
        "fig1_os_bmc_median": (median_text, f"the abstract and text give {median_text:g} months; "
                               f"with subgroup medians 20 (n={early}) and 19 (n={late}) and no "
                               "censoring before 48 months at most 4 + 6 patients can have died "
                               "by 11 months, so S(11) >= 12/22 > 0.5"),
        "n_early": (sum(num(r["interval_months"]) < 36 for r in t2.values()),
                    "Table II intervals < 36 months"),
        "n_late": (sum(num(r["interval_months"]) > 36 for r in t2.values()),
                   "Table II intervals > 36 months"),
        "stage_iv_n": (sum(r["stage"] == "IV" for r in t1.values()), "Table I stage IV"),
        "bmc_within_5_years": (sum(num(r["interval_months"]) < 60 for r in t2.values()),
                               "Table II has "
                               f"{sum(num(r['interval_months']) < 60 for r in t2.values())} "
                               "intervals from first diagnosis under 60 months"),
        "study_period.text": (period, f"the abstract gives BMC diagnoses {period}"),
        "study_period.other": (period, f"the abstract gives BMC diagnoses {period}"),
    }
    return {k: (v, why, tolerance.get(k, 0.0)) for k, (v, why) in implied.items()}


_TWO_CI_METHODS = ("the paper's two CIs need different methods: Figure 1's 10.5-27.5 is "
                   "symmetric about 19 (SPSS-style), the 23-53 from first metastasis is not")
NOTES = {
    "os_bmc_median": "the Figure 1 caption gives 11 months",
    "anemia_at_bmc": "17 = any grade at BMC; the treatment paragraph's '14 anaemic' = grade >= 2",
    "met_to_bmc_median": "the same 31 months as the median OS from first metastasis, although "
                         "OS from metastasis = gap + OS from BMC exceeds the gap in every patient",
    "fig1_os_bmc_ci_low": _TWO_CI_METHODS, "fig1_os_bmc_ci_high": _TWO_CI_METHODS,
    "os_met_ci_low": _TWO_CI_METHODS, "os_met_ci_high": _TWO_CI_METHODS,
    "chemo_offered": "21 offered vs 20 received: one patient declined (a not-done chemotherapy "
                     "Procedure)",
    "claim_os_independent_of_onset": "the abstract says 'duration of metastatic disease'; the "
                                     "groups are defined by the interval from first diagnosis",
}


# --- reproduced values -------------------------------------------------------------------------
def _count(mask) -> int:
    return sum(1 for x in mask if x is not None and not pd.isna(x) and bool(x))


def reproduced_values(g: GroupResult) -> dict[str, Value]:
    """Reproduced value per published key for one group (keys it cannot address are absent)."""
    p, t1s, t2s = g.patients, g.table_i_summary, g.table_ii_summary
    out: dict[str, Value] = {}
    years = [d.year for d in p["index_date"].dropna()]
    out["n_patients"] = Value(len(p))
    if years:
        out["bmc_year_first"], out["bmc_year_last"] = Value(min(years)), Value(max(years))
    out["bone_mets_at_bmc"] = Value(t2s["bone"])
    out["anemia_at_bmc"] = Value(t2s["anemia_any"], "any grade")
    out["chemo_offered"] = Value(_count(p["offered"]))
    out["chemo_received"] = Value(_count(p["received"]))
    km, kmm, lr = g.km_bmc, g.km_metastasis, g.onset_logrank
    if km is not None:
        out["os_bmc_median"] = Value(km.median, "lifelines KM median",
                                     (("R midpoint rule", km.median_midpoint),))
        out["fig1_os_bmc_median"] = Value(km.median, "lifelines KM median")
        sym = km.symmetric_ci or (None, None)
        out["fig1_os_bmc_ci_low"] = Value(km.median_ci[0], "lifelines log(-log) CI",
                                          (("symmetric SPSS-style CI", sym[0]),),
                                          "CI method: the paper does not say which")
        out["fig1_os_bmc_ci_high"] = Value(km.median_ci[1], "lifelines log(-log) CI",
                                           (("symmetric SPSS-style CI", sym[1]),),
                                           "CI method: the paper does not say which")
        out["alive_48_months"] = Value(km.alive_at.get(48.0), "patients followed >= 48 months alive")
    if kmm is not None:
        out["os_met_median"] = Value(kmm.median, "lifelines KM median",
                                     (("R midpoint rule", kmm.median_midpoint),))
        msym = kmm.symmetric_ci or (None, None)
        out["os_met_ci_low"] = Value(kmm.median_ci[0], "lifelines log(-log) CI",
                                     (("symmetric SPSS-style CI", msym[0]),))
        out["os_met_ci_high"] = Value(kmm.median_ci[1], "lifelines log(-log) CI",
                                      (("symmetric SPSS-style CI", msym[1]),))
    if lr is not None:
        out["logrank_chi2"] = Value(lr.chi2)
        out["logrank_p"] = Value(lr.p)
        out["os_bmc_median_early"] = Value(lr.groups[0].median, "lifelines KM median")
        out["os_bmc_median_late"] = Value(lr.groups[1].median, "lifelines KM median")
        out["claim_os_independent_of_onset"] = Value(
            "independent" if lr.p > 0.05 else "dependent", f"log-rank p = {lr.p:.3f}")
    out["n_early"] = Value(_count(p["onset"] == "early"))
    out["n_late"] = Value(_count(p["onset"] == "late"))
    at_limit = _count(p["interval_months"].round() == EARLY_ONSET_MONTHS)
    out["onset_cutoff"] = Value(
        EARLY_ONSET_MONTHS, "applied: early < 36 months, late >= 36",
        definition=(at_limit == 0, "no patient at 36 months, so the paper's '< 36 / > 36' gives "
                    "the same groups" if at_limit == 0 else f"{at_limit} patient(s) at 36 months:"
                    " the paper's '> 36' leaves them out of both groups, '>= 36' counts them "
                    "late"))
    iv = p["interval_months"].dropna()
    if len(iv):
        out["bmc_within_5_years"] = Value(_count(iv < 60), "interval from first diagnosis < 60 "
                                                           "months")
    if years:
        span = f"{min(years)}-{max(years)}"
        out["study_period.text"] = Value(span, "years of the BMC diagnoses")
        out["study_period.other"] = Value(span, "years of the BMC diagnoses")
    gaps = p["metastasis_to_bmc_months"].dropna().to_numpy(float)
    if len(gaps):
        out["met_to_bmc_median"] = Value(float(np.median(gaps)), "median (mean of middle pair)")
    if t2s["interval_median"] is not None:
        out["primary_to_bmc_median"] = Value(t2s["interval_median"], "median (mean of middle pair)",
                                             (("lower median", t2s["interval_lower_median"]),))
        out["primary_to_bmc_min"] = Value(t2s["interval_min"])
        out["primary_to_bmc_max"] = Value(t2s["interval_max"])
    out["age_min"], out["age_max"] = Value(t1s["age_min"]), Value(t1s["age_max"])
    out["stage_iv_n"] = Value(t1s["stage_iv"])
    out["liver_mets"] = Value(t2s["liver"])
    out["leukopenic_at_bmc"] = Value(t2s["leukopenia_any"], "leukopenia grade >= 1")
    s = g.smear_sensitivity
    if s.n:
        out["smear_sensitivity"] = Value(100 * s.k / s.n, f"{s.k}/{s.n} histology-proven with "
                                                          "normoblasts > 0")
    out["inclusion_rule_met"] = Value(_count(p["inclusion_rule_met"]))
    c = g.normoblast_correlation
    if c.r is not None:
        out["normoblasts_r"] = Value(c.r, "Pearson r")
        out["claim_normoblasts_uncorrelated"] = Value(
            "not correlated" if (c.p or 0) > 0.05 else "correlated", f"Pearson p = {c.p:.2f}")
    t = g.treatment
    for reg, n in t["regimen"].value_counts().items():
        out[f"regimen.{reg}"] = Value(int(n))
    for r in ("PR", "SD"):
        out[f"response.{r}"] = Value(_count(t["best_response"] == r))
    for lin in ("anaemia", "thrombocytopenia", "leukopenia"):
        col = t.get(f"{lin}_course", pd.Series(dtype=object))
        name = "anemia" if lin == "anaemia" else lin
        if lin == "anaemia" and len(t):
            at_bmc = g.patients.set_index("patient_key").loc[t["patient_key"], "anemia_ctc_grade"]
            out["anemia_course.cytopenic"] = Value(
                _count(at_bmc.to_numpy() >= 1), "anaemic = grade >= 1 (the abstract's 17)",
                (("anaemic = grade >= 2", _count(col.notna())),))
        else:
            out[f"{name}_course.cytopenic"] = Value(_count(col.notna()))
        out[f"{name}_course.improved_or_normalised"] = Value(
            _count(col.isin(["improved", "normalised"])))
        out[f"{name}_course.improved"] = Value(_count(col == "improved"))
        out[f"{name}_course.normalised"] = Value(_count(col == "normalised"))
        out[f"{name}_course.unchanged"] = Value(_count(col == "unchanged"))
        out[f"{name}_course.worse"] = Value(_count(col == "worse"))
        out[f"{name}_course.not_improved"] = Value(_count(col.isin(["unchanged", "worse"])))
    if len(t):
        idx_w, idx_p = g.patients.set_index("patient_key").loc[t["patient_key"]], None
        out["new_g3_leukopenia"] = Value(_count((idx_w["leukopenia_ctc_grade"].to_numpy() == 0)
                                                & (t["wbc_grade_post"].fillna(0).to_numpy() >= 3)))
        idx_p = idx_w["thrombopenia_ctc_grade"].to_numpy()
        out["thrombocytopenia_worse_after_first"] = Value(_count(
            t["plt_grade_after_cycle1"].fillna(-1).to_numpy() > idx_p))
        out["febrile_neutropenia"] = Value(_count(t["febrile_neutropenia"]))
        out["bleeding"] = Value(_count(t["bleeding"]))
        grades = t["bleeding_grade"]
        why = "" if grades.notna().any() else (
            "no bleeding Condition records a severity grade (NCIt grade code)")
        for gr in (3, 4):
            out[f"bleeding_g{gr}"] = Value(_count(grades == gr) if not why else None,
                                           reason_if_differs=why)
        fn_ev = int(t["febrile_neutropenia_events"].sum())
        if why:
            out["cytopenia_events_g34"] = Value(
                _count(t["febrile_neutropenia"] | t["bleeding"]),
                "patients with febrile neutropenia or bleeding of any grade",
                reason_if_differs=why)
        else:
            out["cytopenia_events_g34"] = Value(
                fn_ev + int((grades >= 3).sum()),
                "events (febrile neutropenia episodes + grade >= 3 bleedings)",
                (("patients counted instead of events",
                  _count(t["febrile_neutropenia"] | (grades >= 3))),))
        out["heme_toxicity_g34"] = Value(_count(t["heme_toxicity_g34"]))
        # dose and timing of the BMC regimen, and what came after it (outcomes/treatment.py)
        out["cycle2_postponed"] = Value(_count(t["second_cycle_postponed"]),
                                        "cycle 2 started > cycle length + 3 days after cycle 1")
        out["dose_reduced_cycle2"] = Value(_count(t["dose_reduced_from_cycle"] == 2),
                                           "a cycle-2 dose < 90% of the cycle-1 dose")
        out["further_line"] = Value(_count(t["further_lines"] > 0),
                                    "another regimen episode after the BMC regimen")
        known = _count(t["cycle1_dose_percent"].notna()) if "cycle1_dose_percent" in t else 0
        out["dose_reduced_cycle1"] = Value(
            _count(t["dose_reduced_cycle1"]) if known else None,
            "a cycle-1 dose < 90% of the protocol dose per m2 x body surface area",
            reason_if_differs="" if known else (
                "no patient has a body surface area (LOINC 8277-6) and a protocol dose "
                "(queries/outcomes/protocol_doses.csv) for the first cycle"))
        for why in ("prolonged_cytopenia", "non_haematological_toxicity", "other"):
            out[f"cycle2_postponed.{why}"] = Value(
                _count(t["second_cycle_postponed_reason"] == why),
                "cytopenia not recovered on the planned day, else an unresolved "
                "non-haematological toxicity, else other (outcomes/treatment.py)")
    for _, row in g.patients.iterrows():
        pp = row.get("paper_patient")
        if pp is None or pd.isna(pp):
            continue
        for tab, cols in (("table_i", g.table_i.columns), ("table_ii", g.table_ii.columns)):
            for col in cols:
                if col != "label":
                    out[f"{tab}.{int(pp):02d}.{col}"] = Value(row[col])
    return out


# --- comparing ---------------------------------------------------------------------------------
def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def show(v, unit: str = "") -> str:
    if _missing(v):
        return "NA"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, float | np.floating):
        if float(v).is_integer():
            return str(int(v))
        return f"{v:.4f}" if unit in ("p", "r", "chi-square") else f"{v:.2f}"
    return str(v)


def matches(pub: PublishedNumber, v) -> bool:
    if pub.missing:
        return _missing(v)
    if _missing(v):
        return False
    if pub.number is None or isinstance(v, str):
        return str(v) == pub.value
    try:
        return abs(float(v) - pub.number) <= pub.tolerance + 1e-9
    except (TypeError, ValueError):
        return False


def _equal(a, b, tol: float) -> bool:
    """Two reproduced values are the same (numbers within ``tol``, else as text)."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    try:
        return abs(float(a) - float(b)) <= tol + 1e-9
    except (TypeError, ValueError):
        return str(a) == str(b)


def judge(pub: PublishedNumber, val: Value | None,
          checks: dict[str, tuple[object, str, float]]) -> tuple[str, str, str]:
    """(reproduced text, verdict, reason) for one published number (verdicts: module doc).

    The order matters: a value every stated method reproduces, then one only some method
    reproduces (both shown), then a paper inconsistency -- only when the data give exactly the
    value the paper's own other numbers imply -- and otherwise 'differs'."""
    note = NOTES.get(pub.key, "")
    # what the paper's other numbers imply, kept only when the printed number contradicts it
    implied, said, implied_tol = None, "", 0.0
    check = checks.get(pub.key)
    conflict = check is not None and not matches(pub, check[0])
    if check is not None and conflict:
        implied, said, implied_tol = check

    def why(*parts: str) -> str:
        return "; ".join(x for x in (*parts, note) if x)

    if val is None or (_missing(val.value) and not pub.missing
                       and not any(not _missing(a) for _, a in val.alternatives)):
        lack = (val.reason_if_differs if val else "") or "not derivable from the FHIR tables"
        return "NA", DIFFERS, why(lack, f"the paper's own numbers imply {show(implied, pub.unit)}"
                                         f" ({said})" if conflict else "")
    shown = show(val.value, pub.unit)
    if val.definition is not None:
        holds, because = val.definition
        if holds and matches(pub, val.value):
            return shown, DEFINITION, why(val.method, because)
        return shown, DIFFERS, why(val.method, because)
    alts = [(m, a) for m, a in val.alternatives if not _missing(a)]
    others = [(m, a) for m, a in alts if not _equal(a, val.value, pub.tolerance)]
    both = "; ".join(f"{m}: {show(a, pub.unit)}" for m, a in others)
    main = val.method or "the main method"
    if conflict and not _equal(val.value, implied, implied_tol):
        # the paper contradicts itself: only data that follow its other statement can be
        # judged; data that give the printed number contradict that statement instead
        at = show(implied, pub.unit)
        return (f"{shown} ({both})" if others else shown), DIFFERS, why(
            f"the FHIR data give {shown}" + (f" ({val.method})" if val.method else ""),
            f"not the {at} that the paper's own numbers imply ({said}), so the data do not "
            "confirm either statement")
    if matches(pub, val.value):
        if not others:
            return shown, REPRODUCED, why(val.method, said)
        return (f"{shown} ({both})", f"{REPRODUCED_UNDER} {main}",
                why(f"{main} gives {shown}, {both}", said))
    for method, alt in alts:
        if matches(pub, alt):
            return (f"{shown} ({both})", f"{REPRODUCED_UNDER} {method}",
                    why(f"{main} gives {shown}; {method} gives {show(alt, pub.unit)}", said))
    if conflict:  # the data give the value the paper's other statement implies
        return shown, INCONSISTENT, why(f"{said}; the data give {show(implied, pub.unit)}, "
                                        "the value the paper's own numbers imply")
    if pub.missing:
        return shown, DIFFERS, "the paper gives no value ('-' / NA); the record has one"
    reason = val.reason_if_differs or (f"the FHIR data give {shown}"
                                       + (f" ({val.method})" if val.method else ""))
    return shown, DIFFERS, why(reason)


def verdicts(g: GroupResult, published: tuple[PublishedNumber, ...] | None = None,
             ids_given: bool = False) -> list[Verdict]:
    """One verdict per published number, against group ``g`` (``ids_given``: the group is
    the patients picked by id, so its n is no test)."""
    vals, checks = reproduced_values(g), paper_checks()
    out = []
    for pub in published or load_published():
        shown, verdict, reason = judge(pub, vals.get(pub.key), checks)
        if pub.table and pub.key not in vals:
            shown, verdict, reason = "NA", f"{NOT_IN} {g.label}", (
                f"paper patient {pub.paper_patient} is not in the {g.label}")
        out.append(Verdict(pub.key, pub.source, pub.statement, pub.value, pub.unit, shown,
                           verdict, reason, by_construction(pub, g, ids_given)))
    return out


def by_construction(pub: PublishedNumber, g: GroupResult, ids_given: bool) -> str:
    """Why any data would reproduce this number ('' when a change in the data can move it):
    the published file's ``by_construction`` column, and n when the patients are picked by
    id."""
    if pub.key == "n_patients" and ids_given:
        return "the patients are picked by id: n is the length of the list"
    return pub.by_construction or ""


def tally(rows: list[Verdict], where: Callable[[Verdict], bool] = lambda v: True) -> dict[str, int]:
    out = {REPRODUCED: 0, UNDER_METHOD: 0, DIFFERS: 0, INCONSISTENT: 0, DEFINITION: 0,
           NOT_IN_GROUP: 0}
    for r in rows:
        if where(r):
            out[verdict_kind(r.verdict)] += 1
    return out


def verdict_kind(verdict: str) -> str:
    """The tally key of a verdict text ('reproduced under X' -> 'reproduced under a method')."""
    if verdict.startswith(REPRODUCED_UNDER):
        return UNDER_METHOD
    if verdict.startswith(NOT_IN):
        return NOT_IN_GROUP
    return verdict
