"""Chemotherapy for BMC: regimens, cycles, dose reductions, postponed cycles, best response,
the course of each cytopenia after the first regimen, and haematological toxicity.

Definitions (the same as ``cohort/synth/DEFINITIONS.md`` "The first regimen after BMC"; dates
are local calendar dates):

* A **regimen episode** is a run of administrations whose ingredient set stays the same; a new
  episode starts when the set of drugs given within one cycle changes or after a gap of more
  than ``EPISODE_GAP_DAYS`` without any administration of the set. Its name comes from
  ``queries/outcomes/regimens.csv`` (ingredient set -> regimen), else the ingredients joined by
  '/'. A cycle giving only some of the episode's drugs (a last cycle cut short by death)
  continues the episode. The **BMC regimen** is the first episode starting on or after the BMC index date;
  ``A1`` / ``A_last`` are its first and last administration dates. Prior regimens = episodes
  starting before the index date.
* **Cycles**: administrations less than ``NEW_CYCLE_GAP_DAYS`` after the previous one belong to
  the same cycle (day-8/day-15 doses), unless the drugs together would no longer be part of
  one known regimen while the cycle so far is (two regimens given days apart); a cycle is **postponed** when it starts more than
  ``POSTPONE_SLACK_DAYS`` later than the regimen's cycle length after the previous cycle; its
  dose is **reduced** when any drug's dose is below 90% of that drug's first-cycle dose.
  **Further lines**: regimen episodes after the BMC regimen (another drug set, or the same
  after more than ``EPISODE_GAP_DAYS``).
* **First cycle at a reduced dose**: a drug of the BMC regimen's first cycle given at less
  than 90% of the protocol dose, i.e. ``dose mg / body surface area`` below 90% of the
  regimen's ``dose_mg_per_m2`` (``queries/outcomes/protocol_doses.csv``); the area is the
  latest body-surface-area Observation on or before the day (``administrations.sql``).
  Unknown (None) without an area, a dose in mg or a protocol dose for the drug.
* **Why the second cycle was postponed** (the paper's three reasons), read from the record,
  the first that applies: ``prolonged_cytopenia`` when a blood draw from
  ``RECOVERY_LOOKBACK_DAYS`` before the planned day (cycle 1 start + cycle length) until the
  day before cycle 2 started has not recovered (a grade at or above
  ``queries/outcomes/recovery.csv``: leukocytes, neutrophils or platelets grade >= 2);
  ``non_haematological_toxicity`` when a Condition of concept 'toxicity'
  (``queries/outcomes/codes.csv``, e.g. oral mucositis) began after the first dose and was not
  resolved on the planned day; else ``other``. (A not-done MedicationAdministration with a
  ``statusReason`` says the same in words, but the declared ``medication_administration`` view
  has no column for it.)
* **After cycle 1**: first CBC 7-21 days after A1. **After treatment**: last CBC within 42 days
  after A_last. **Nadir / toxicity window**: CBCs after A1 up to the after-treatment CBC.
* **Best response**: best CancerDiseaseStatus from A1 to A_last + 42 days (CR > PR > SD > PD >
  NE).
* **Course** of a lineage cytopenic at index (anaemia grade >= 2 as the paper's "14 anaemic"
  patients, thrombocytopenia and leukopenia grade >= 1): after-treatment grade 0 = normalised,
  lower = improved, equal = unchanged, higher = worse; no after-treatment CBC = not evaluable.
* **Grade 3/4 haematological toxicity**: in Hgb, platelets or leukocytes, the worst grade in
  the window is >= 3 and higher than the index grade.
* **Febrile neutropenia / bleeding**: Conditions with onset from A1 to A_last + 42 days; FN is
  grade >= 3 by its CTCAE definition; a bleeding grade is read from the Condition when recorded.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import pandas as pd

from ..paths import queries_dir

EPISODE_GAP_DAYS = 90
NEW_CYCLE_GAP_DAYS = 12
POSTPONE_SLACK_DAYS = 3
DOSE_REDUCED_BELOW = 0.9
RECOVERY_LOOKBACK_DAYS = 3
POSTPONE_REASONS = ("prolonged_cytopenia", "non_haematological_toxicity", "other")
RESPONSE_RANK = {"CR": 5, "PR": 4, "SD": 3, "PD": 2, "NE": 1}
COURSE_THRESHOLD = {"hgb": 2, "plt": 1, "wbc": 1}
COURSE_LINEAGE = {"hgb": "anaemia", "plt": "thrombocytopenia", "wbc": "leukopenia"}


@dataclass(frozen=True)
class Episode:
    """One regimen episode of one patient."""

    name: str
    ingredients: tuple[str, ...]
    first_day: date
    last_day: date
    cycles: int
    postponed_cycles: int
    dose_reduced_from_cycle: int | None
    second_cycle_postponed: bool = False
    #: the first day of cycle 2 by the regimen's cycle length, and the day it started
    second_cycle_planned: date | None = None
    second_cycle_start: date | None = None
    #: the administration days of cycle 1
    first_cycle_days: tuple[date, ...] = ()


def regimen_name(ingredients: frozenset[str], regimens: pd.DataFrame) -> str:
    for _, r in regimens.iterrows():
        if frozenset(r["ingredients"].split(";")) == ingredients:
            return str(r["regimen"])
    return "/".join(sorted(ingredients))


def _cycle_days(name: str, regimens: pd.DataFrame) -> int | None:
    hit = regimens.loc[regimens["regimen"] == name, "cycle_days"]
    return int(hit.iloc[0]) if len(hit) else None


def episodes(admins: pd.DataFrame, regimens: pd.DataFrame) -> list[Episode]:
    """Split one patient's administrations (columns day, ingredient, dose_value) into episodes."""
    if admins.empty:
        return []
    by_day = (admins.groupby("day")["ingredient"].agg(lambda s: frozenset(s)).sort_index())
    days = list(by_day.index)
    # cycles first (administrations close together), then episodes of cycles with one drug set
    known = [frozenset(x.split(";")) for x in regimens["ingredients"]]

    def is_known(drugs: frozenset[str]) -> bool:
        return any(drugs <= k for k in known)

    cycles: list[list[date]] = []
    current: frozenset[str] = frozenset()
    for d in days:
        close = bool(cycles) and (d - cycles[-1][-1]).days < NEW_CYCLE_GAP_DAYS
        joined = current | by_day[d]
        if close and (is_known(joined) or not is_known(current)):
            cycles[-1].append(d)
            current = joined
        else:
            cycles.append([d])
            current = by_day[d]
    groups: list[list[list[date]]] = []
    sets: list[frozenset[str]] = []
    for cyc in cycles:
        drugs = frozenset().union(*(by_day[d] for d in cyc))
        gap = (cyc[0] - groups[-1][-1][-1]).days if groups else None
        if groups and drugs <= sets[-1] and gap is not None and gap <= EPISODE_GAP_DAYS:
            groups[-1].append(cyc)
        else:
            groups.append([cyc])
            sets.append(drugs)
    out = []
    for cycs, drugs in zip(groups, sets, strict=True):
        name = regimen_name(drugs, regimens)
        length = _cycle_days(name, regimens)
        if length is None and len(cycs) > 1:
            length = min((b[0] - a[0]).days for a, b in itertools.pairwise(cycs))
        late = [length is not None and length != 0 and (b[0] - a[0]).days > length + POSTPONE_SLACK_DAYS
                for a, b in itertools.pairwise(cycs)]
        postponed = sum(late)
        first = admins[admins["day"].isin(cycs[0])].groupby("ingredient")["dose_value"].max()
        reduced = None
        for k, cyc in enumerate(cycs[1:], start=2):
            doses = admins[admins["day"].isin(cyc)].groupby("ingredient")["dose_value"].max()
            if any(ing in first and first[ing] and dose < DOSE_REDUCED_BELOW * first[ing]
                   for ing, dose in doses.items()):
                reduced = k
                break
        planned = cycs[0][0] + timedelta(days=length) if length and len(cycs) > 1 else None
        out.append(Episode(name, tuple(sorted(drugs)), cycs[0][0], cycs[-1][-1], len(cycs),
                           postponed, reduced, bool(late) and late[0], planned,
                           cycs[1][0] if len(cycs) > 1 else None, tuple(cycs[0])))
    return out


def protocol_doses() -> pd.DataFrame:
    """``queries/outcomes/protocol_doses.csv``: regimen, ingredient, dose_mg_per_m2."""
    return _protocol_doses().copy()


@cache
def _protocol_doses() -> pd.DataFrame:
    df = pd.read_csv(queries_dir() / "outcomes" / "protocol_doses.csv", dtype=str)
    df["dose_mg_per_m2"] = df["dose_mg_per_m2"].astype(float)
    return df


@cache
def recovery_grades() -> dict[str, int]:
    """``queries/outcomes/recovery.csv``: analyte -> the grade from which a count has not
    recovered for the next cycle."""
    df = pd.read_csv(queries_dir() / "outcomes" / "recovery.csv", dtype=str)
    return {r["analyte"]: int(r["not_recovered_from_grade"]) for _, r in df.iterrows()}


def first_cycle_dose_percent(ep: Episode, admins: pd.DataFrame,
                             protocol: pd.DataFrame) -> float | None:
    """The lowest share (in %) of the protocol dose that a drug of ``ep``'s first cycle was
    given at (dose in mg / body surface area / protocol mg per m2), or None when no drug of
    the cycle can be read (no area, no dose in mg, no protocol dose)."""
    if "bsa_m2" not in admins:
        return None
    first = admins[admins["day"].isin(ep.first_cycle_days)]
    plan = protocol[protocol["regimen"] == ep.name].set_index("ingredient")["dose_mg_per_m2"]
    shares = []
    for _, a in first.iterrows():
        bsa, dose = a.get("bsa_m2"), a.get("dose_value")
        if (a["ingredient"] not in plan.index or _missing(bsa) or _missing(dose)
                or str(a.get("dose_unit") or "").lower() != "mg" or float(bsa) <= 0):
            continue
        shares.append(100 * float(dose) / float(bsa) / float(plan[a["ingredient"]]))
    return min(shares) if shares else None


def postpone_reason(ep: Episode, draws: pd.DataFrame, adverse: pd.DataFrame) -> str | None:
    """Why ``ep``'s second cycle was postponed (one of ``POSTPONE_REASONS``), None when it
    was not. ``draws`` are the patient's blood draws with grades (``g_wbc``, ``g_anc``,
    ``g_plt``), ``adverse`` the complications with ``kind``, ``onset_date``,
    ``abatement_date``."""
    if not ep.second_cycle_postponed or ep.second_cycle_planned is None:
        return None
    planned, started = ep.second_cycle_planned, ep.second_cycle_start
    lo = planned - timedelta(days=RECOVERY_LOOKBACK_DAYS)
    near = draws[_between(draws["day"], lo, started - timedelta(days=1))] if started else draws[:0]
    for analyte, grade in recovery_grades().items():
        col = f"g_{analyte}"
        if col in near and (pd.to_numeric(near[col], errors="coerce") >= grade).any():
            return "prolonged_cytopenia"
    tox = adverse[(adverse["kind"] == "non-haematological toxicity")
                  & _between(adverse["onset_date"], ep.first_day, planned)]
    if any(_missing(end) or end >= planned for end in tox["abatement_date"]):
        return "non_haematological_toxicity"
    return "other"


def _missing(x) -> bool:
    return x is None or (not isinstance(x, str | date) and pd.isna(x))


def _between(s: pd.Series, lo: date | None, hi: date | None) -> pd.Series:
    """lo <= value <= hi for a column of dates (missing dates are outside)."""
    return s.map(lambda x: x is not None and not pd.isna(x)
                 and (lo is None or x >= lo) and (hi is None or x <= hi)).astype(bool)


def _first(df: pd.DataFrame):
    return df.iloc[0] if len(df) else None


def course(index_grade, post_grade) -> str:
    if post_grade is None or pd.isna(post_grade):
        return "not evaluable"
    if post_grade == 0:
        return "normalised"
    if post_grade < index_grade:
        return "improved"
    return "unchanged" if post_grade == index_grade else "worse"


def patient_treatment(index_date: date, index_cbc, admins: pd.DataFrame, draws: pd.DataFrame,
                      status: pd.DataFrame, adverse: pd.DataFrame, not_done: pd.DataFrame,
                      regimens: pd.DataFrame, protocol: pd.DataFrame | None = None) -> dict:
    """Everything about one patient's treatment for BMC (one row of the treatment table).

    ``index_cbc`` is the index draw (a row of :func:`cytopenia.draws`, or None); the frames
    hold this patient's rows only. ``protocol``: the protocol doses per m2 (default
    :func:`protocol_doses`).
    """
    eps = episodes(admins, regimens)
    prior = [e for e in eps if e.first_day < index_date]
    after = [e for e in eps if e.first_day >= index_date]
    declined = not not_done.empty and bool(
        (not_done["day"].isna() | _between(not_done["day"], index_date, None)).any())
    row: dict = {"prior_regimens": len(prior), "received": bool(after),
                 "offered": bool(after) or bool(declined)}
    idx = {lin: (None if index_cbc is None else index_cbc[f"g_{lin}"]) for lin in COURSE_LINEAGE}
    if not after:
        return row | {"regimen": None, "best_response": "not treated"}
    bmc = after[0]
    a1, alast = bmc.first_day, bmc.last_day
    end = alast + timedelta(days=42)
    cbc = draws[draws["cbc"]]
    c1 = _first(cbc[(cbc["day"] >= a1 + timedelta(days=7)) & (cbc["day"] <= a1 + timedelta(days=21))])
    post_rows = cbc[(cbc["day"] > alast) & (cbc["day"] <= end)]
    post = post_rows.iloc[-1] if len(post_rows) else None
    window_end = post["taken_at"] if post is not None else None
    win = cbc[(cbc["day"] > a1) & ((cbc["taken_at"] <= window_end) if window_end is not None
                                   else (cbc["day"] <= end))]
    st = status[_between(status["day"], a1, end)]
    ranked = [r for r in st["response"].dropna() if r in RESPONSE_RANK]
    best = max(ranked, key=RESPONSE_RANK.__getitem__) if ranked else "not assessed"
    ae = adverse[_between(adverse["onset_date"], a1, end)]
    fn = ae[ae["kind"] == "febrile neutropenia"]
    pct = first_cycle_dose_percent(bmc, admins, protocol_doses() if protocol is None else protocol)
    bl = ae[ae["kind"] == "bleeding"]
    row |= {
        "regimen": bmc.name, "first_dose": a1, "last_dose": alast, "cycles": bmc.cycles,
        "postponed_cycles": bmc.postponed_cycles,
        "dose_reduced_from_cycle": bmc.dose_reduced_from_cycle,
        "second_cycle_postponed": bmc.second_cycle_postponed,
        "second_cycle_postponed_reason": postpone_reason(bmc, draws, adverse),
        "cycle1_dose_percent": None if pct is None else round(pct, 1),
        "dose_reduced_cycle1": None if pct is None else pct < 100 * DOSE_REDUCED_BELOW,
        "further_lines": len(after) - 1,
        "best_response": best,
        "febrile_neutropenia": len(fn) > 0, "febrile_neutropenia_events": len(fn),
        "bleeding": len(bl) > 0, "bleeding_events": len(bl),
        "bleeding_grade": (int(bl["grade"].max()) if len(bl) and bl["grade"].notna().any() else None),
        "post_cbc_day": None if post is None else post["day"],
    }
    tox = False
    for lin, name in COURSE_LINEAGE.items():
        g0 = idx[lin]
        gpost = None if post is None else post[f"g_{lin}"]
        worst = win[f"g_{lin}"].max() if len(win) else None
        row[f"{lin}_grade_after_cycle1"] = None if c1 is None else _int(c1[f"g_{lin}"])
        row[f"{lin}_grade_post"] = _int(gpost)
        row[f"{lin}_grade_worst"] = _int(worst)
        cytopenic = g0 is not None and not pd.isna(g0) and g0 >= COURSE_THRESHOLD[lin]
        row[f"{name}_course"] = course(g0, gpost) if cytopenic else None
        if worst is not None and not pd.isna(worst) and g0 is not None and not pd.isna(g0):
            tox = tox or (worst >= 3 and worst > g0)
    row["heme_toxicity_g34"] = tox
    return row


def _int(x) -> int | None:
    return None if x is None or pd.isna(x) else int(x)
