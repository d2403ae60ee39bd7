"""Every analysis of the paper for one group of patients, from :class:`records.Records`.

A group is a DataFrame with ``patient_key`` ('Patient/<id>'), ``index_date`` (BMC diagnosis) and
optionally ``route`` and ``paper_patient`` (the paper's patient number, used only as a label).
Survival ends at death, or is censored at the last dated record; with a ``cutoff`` date,
deaths after it are censored at it and follow-up is cut there. The clock is never read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from . import cytopenia, diagnostics, tables, treatment
from .records import Records, to_date
from .survival import (
    CoxResult,
    KaplanMeier,
    LogRank,
    SurvivalInputError,
    cox_binary,
    kaplan_meier,
    logrank,
    months_between_dates,
)

EARLY_ONSET_MONTHS = 36.0  # the paper: early < 36 months from first diagnosis, late > 36
DISTANT_EXCLUDED = ("lymph node",)


@dataclass(frozen=True)
class GroupResult:
    """The analyses of one group; ``patients`` has one row per patient with every column."""

    label: str
    patients: pd.DataFrame
    table_i: pd.DataFrame
    table_ii: pd.DataFrame
    table_i_summary: dict
    table_ii_summary: dict
    treatment: pd.DataFrame
    km_bmc: KaplanMeier | None
    km_metastasis: KaplanMeier | None
    onset_logrank: LogRank | None
    onset_cox: CoxResult | None
    smear_sensitivity: diagnostics.Proportion
    smear_sensitivity_with_cytopenia: diagnostics.Proportion
    normoblast_correlation: diagnostics.Correlation
    counts: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.patients)


def _label(row) -> str:
    pp = row.get("paper_patient")
    if pp is not None and not pd.isna(pp):
        return f"P{int(pp):02d}"
    return str(row["patient_key"]).removeprefix("Patient/")[:8]


def _per_patient(rec: Records, group: pd.DataFrame, draws: pd.DataFrame, regimens: pd.DataFrame,
                 cutoff: date | None) -> pd.DataFrame:
    rows = []
    for _, g in group.iterrows():
        key, idx = g["patient_key"], to_date(g["index_date"])
        pat = rec.patients[rec.patients["patient_key"] == key]
        if pat.empty or idx is None:  # every figure is measured from the index date
            continue
        pat = pat.iloc[0]

        def mine(df: pd.DataFrame, key=key) -> pd.DataFrame:
            return df[df["patient_key"] == key]

        t1 = tables.primary_facts(pat, mine(rec.breast_cancer), mine(rec.tumour_facts))
        d = mine(draws)
        draw = tables.index_draw(d, idx)
        mets = mine(rec.metastases)
        t2 = tables.bmc_facts(idx, t1["primary_date"], draw, mine(rec.marrow_reports), mets)
        tr = treatment.patient_treatment(idx, draw, mine(rec.administrations), d,
                                         mine(rec.disease_status), mine(rec.adverse_events),
                                         mine(rec.chemotherapy_not_done), regimens)
        distant = mets[~mets["site"].isin(DISTANT_EXCLUDED)]["onset_date"].dropna()
        first_met = min([day for x in distant if (day := to_date(x)) is not None] + [idx])
        death, last = to_date(pat["death_date"]), to_date(pat["last_record_date"])
        died = bool(death is not None and (cutoff is None or death <= cutoff))
        end = death if died else (min(last, cutoff) if (last and cutoff) else (last or cutoff))
        rows.append({
            "patient_key": key, "label": _label(g), "paper_patient": g.get("paper_patient"),
            "index_date": idx, "route": g.get("route"), **t1, **t2, **tr,
            "first_metastasis_date": first_met, "death_date": death if died else None,
            "end_date": end, "died": died,
            "os_bmc_months": months_between_dates(idx, end),
            "os_metastasis_months": months_between_dates(first_met, end),
            "metastasis_to_bmc_months": months_between_dates(first_met, idx),
        })
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["early_onset"] = df["interval_months"] < EARLY_ONSET_MONTHS
    # numpy's stubs reject None as a choice; at run time it gives an object array with None
    df["onset"] = np.where(df["interval_months"].isna(), None,  # type: ignore[call-overload]
                           np.where(df["early_onset"], "early", "late"))
    df["inclusion_rule_met"] = tables.inclusion_rule_met(df)
    sort = pd.to_numeric(df["paper_patient"], errors="coerce").fillna(10_000)
    return df.assign(_s=sort).sort_values(["_s", "index_date", "label"]).drop(columns="_s") \
             .reset_index(drop=True)


TABLE_I_COLUMNS = ("label", "age_years", "sex", "histology", "grade", "er", "pr", "her2", "stage")
TABLE_II_COLUMNS = ("label", "interval_months", "prior_regimens", "bmc_diagnosis",
                    "normoblasts_per_100_wbc", "leukopenia_ctc_grade", "anemia_ctc_grade",
                    "thrombopenia_ctc_grade", "metastatic_sites")


def _km(df: pd.DataFrame, col: str, label: str) -> KaplanMeier | None:
    ok = df[df[col].notna() & (df[col] >= 0)]
    if ok.empty:
        return None
    return kaplan_meier(ok[col].to_numpy(float), ok["died"].to_numpy(bool), label)


def analyse_group(label: str, rec: Records, group: pd.DataFrame, regimens: pd.DataFrame,
                  cutoff: date | None = None) -> GroupResult:
    """Run every analysis for ``group`` (see module docstring) on the records ``rec``."""
    draws = cytopenia.draws(rec.blood_counts)
    pp = _per_patient(rec, group, draws, regimens, cutoff)
    notes: list[str] = []
    undated = set(group.loc[group["index_date"].isna(), "patient_key"])
    missing = set(group["patient_key"]) - set(pp["patient_key"] if len(pp) else []) - undated
    if missing:
        notes.append(f"{len(missing)} patient(s) of the group are not in the database")
    if undated:
        notes.append(f"{len(undated)} patient(s) of the group have no index date and are left out")
    if pp.empty:
        raise SurvivalInputError(f"group {label!r}: no patient found in the database")
    t1 = pp[list(TABLE_I_COLUMNS)].copy()
    t2 = pp[list(TABLE_II_COLUMNS)].copy()
    lr = cox = None
    surv = pp[pp["os_bmc_months"].notna() & pp["onset"].notna()]
    try:
        lr = logrank(surv["os_bmc_months"], surv["died"], surv["onset"], ("early", "late"))
        cox = cox_binary(surv["os_bmc_months"], surv["died"], surv["onset"] == "late", "late_onset")
    except SurvivalInputError as e:
        notes.append(f"log-rank early vs late onset not computed: {e}")
    if rec.adverse_events["grade"].isna().all() and len(rec.adverse_events):
        notes.append("no complication Condition records a severity grade (NCIt grade code), so "
                     "bleeding by grade cannot be reproduced")
    trt = pp[pp["received"]] if "received" in pp else pp.iloc[0:0]
    return GroupResult(
        label=label, patients=pp, table_i=t1, table_ii=t2,
        table_i_summary=tables.table_i_summary(t1), table_ii_summary=tables.table_ii_summary(t2),
        treatment=trt, km_bmc=_km(pp, "os_bmc_months", label),
        km_metastasis=_km(pp, "os_metastasis_months", label),
        onset_logrank=lr, onset_cox=cox,
        smear_sensitivity=diagnostics.smear_sensitivity(t2),
        smear_sensitivity_with_cytopenia=diagnostics.smear_sensitivity(t2, require_cytopenia=True),
        normoblast_correlation=diagnostics.normoblasts_vs_survival(
            pp["normoblasts_per_100_wbc"], pp["os_bmc_months"], pp["died"]),
        notes=tuple(notes),
    )
