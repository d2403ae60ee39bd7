"""The 22 paper patients as hospital records (one :class:`Record` each).

Every clinical number comes from ``../shared/paper/timeline.csv`` (Tables I/II plus the fitted
dates and course, see fit_report.md); how lab values are placed around the BMC regimen is
defined in ``DEFINITIONS.md`` next to this module.
"""
from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from . import codes as C
from . import oncology as O
from .labs import LAB_A, cbc_graded
from .paper import DATA_CUTOFF, PaperPatient
from .record import Record, days
from .roles import RoleRow
from .treatment import (
    ADJUVANT,
    PALLIATIVE,
    REGIMENS,
    administer,
    available,
    not_given,
    plan_cycles,
)

# Smear-diagnosed patients that also carry D61.82 (Myelophthisis / leukoerythroblastic anaemia,
# CODES.md §6.3) next to C79.52: a design choice to vary the coding, see DEFINITIONS.md.
D61_82_PATIENTS = (13, 16)
CYCLES_BY_RESPONSE = {"PR": 6, "SD": 6, "PD": 3, "NE": 1}
#: Random stream of the resources added for the dose, timing and later lines of treatment
#: (``Record.stream``): the ids and values drawn before them stay where they were.
COURSE_STREAM = "bmc-course"
#: Further lines start this long after the BMC regimen's last dose at the earliest (so the
#: regimen's after-treatment window, last dose + 42 days, holds none of them), and end this
#: long before death or the cut-off.
FURTHER_LINE_AFTER_DAYS = (63, 98)
FURTHER_LINE_END_MARGIN_DAYS = 14
FURTHER_LINE_MAX_CYCLES = 4


@dataclass(frozen=True)
class CoursePlan:
    """One row of ``bmc_course.csv``: how a paper patient's BMC regimen was dosed and timed
    and what followed it (design choices, not paper facts: the paper gives only the totals,
    4 first-cycle reductions, 4 postponed second cycles with reasons, 2 second-cycle
    reductions, 10 further lines; see DEFINITIONS.md)."""

    patient: int
    cycle1_dose_percent: int = 100
    cycle1_note: str = ""
    cycle2_delay_days: int = 0
    cycle2_delay_reason: str = ""
    cycle2_delay_text: str = ""
    reduce_from_cycle: int | None = None
    reduce_percent: int = 100
    reduce_note: str = ""
    further_line: str = ""


@cache
def course_plans() -> dict[int, CoursePlan]:
    """``bmc_course.csv`` by paper patient number (patients without a row: the default plan)."""
    path = Path(__file__).with_name("bmc_course.csv")
    out: dict[int, CoursePlan] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for line, r in enumerate(csv.DictReader(fh), start=2):
            reason = r["cycle2_delay_reason"]
            if reason and reason not in C.DELAY_REASON:
                raise ValueError(f"{path} line {line}: unknown cycle2_delay_reason {reason!r}")
            if r["further_line"] and r["further_line"] not in REGIMENS:
                raise ValueError(f"{path} line {line}: unknown regimen {r['further_line']!r}")
            n = int(r["patient"])
            out[n] = CoursePlan(
                n, int(r["cycle1_dose_percent"] or 100), r["cycle1_note"],
                int(r["cycle2_delay_days"] or 0), reason, r["cycle2_delay_text"],
                int(r["reduce_from_cycle"]) if r["reduce_from_cycle"] else None,
                int(r["reduce_percent"] or 100), r["reduce_note"], r["further_line"])
    return out


def _route(p: PaperPatient) -> str:
    smear = p.normoblasts > 0 and max(p.anemia_grade, p.thrombopenia_grade, p.leukopenia_grade) >= 1
    if p.bmc_method == "histology":
        return "both" if smear else "histology"
    return "smear" if smear else "coded"


def _prior_regimens(rec: Record, p: PaperPatient, bsa: float, primary, sex: str) -> None:
    """As many earlier regimens as Table II says, ending >= 4 weeks before BMC."""
    rng = rec.rng
    k = p.prior_regimens or 0
    if k == 0:
        return
    plan: list[tuple[str, date, date]] = []  # (regimen, window start, window end)
    pall = k
    if p.stage != "IV":
        adj = rng.choice([r for r in ADJUVANT if available(r, p.primary_dx_date)])
        start = p.primary_dx_date + days(rng.randint(28, 42))
        plan.append((adj, start, min(p.metastasis_date, p.bmc_date - days(28))))
        pall -= 1
    if pall:
        w0 = p.metastasis_date + days(14)
        w1 = p.bmc_date - days(28)
        slot = max((w1 - w0).days / pall, 1.0)
        used: set[str] = set()
        for i in range(pall):
            s = w0 + days(int(i * slot))
            e = w0 + days(int((i + 1) * slot))
            prev = plan[-1][0] if plan else None
            ok = [r for r in PALLIATIVE if available(r, s) and r != prev
                  and (r != "paclitaxel/trastuzumab" or p.her2 == "pos")]
            pool = [r for r in ok if r not in used] or ok  # consecutive lines always differ
            name = rng.choice(pool)
            used.add(name)
            plan.append((name, s, e))
    for name, s, e in plan:
        reg = REGIMENS[name]
        n = max(1, min(6, ((e - s).days - reg.cycle_days) // reg.cycle_days + 1))
        for cyc in plan_cycles(s, reg, n):
            # pre-cycle blood count (normal or mild anaemia), then the cycle
            cbc_graded(rec, cyc.start, 7 * 60 + rng.randint(0, 40), LAB_A, sex,
                       rng.choice((0, 0, 1)), 0, 0, with_anc=True)
            administer(rec, reg, cyc, bsa, primary)


def _mid_anemia(a0: int, a_post: int) -> int:
    if a_post >= a0:
        return min(a0, 3) if a0 < 4 else 3
    return min(3, math.ceil((a0 + a_post) / 2))


def build(p: PaperPatient, rng: random.Random) -> tuple[Record, RoleRow]:
    rec = Record(rng)
    sex = p.sex
    P, M, B = p.primary_dx_date, p.metastasis_date, p.bmc_date
    last_day = p.death_date or DATA_CUTOFF
    bsa = round(rng.uniform(1.85, 2.1) if sex == "M" else rng.uniform(1.55, 1.95), 2)
    O.patient(rec, sex, O.birth_date_for_age(rng, P, p.age_at_primary_dx), p.death_date)
    lab = LAB_A
    notes: list[str] = []

    # --- first diagnosis ------------------------------------------------------------------
    rec.encounter(P, text="Breast clinic: diagnosis")
    prim_res, prim = O.breast_primary(rec, sex, P, p.histology)
    st = O.stage_group(rec, p.stage, P, prim)
    O.link_stage(prim_res, st, p.stage)
    if p.grade:
        O.histologic_grade(rec, p.grade, P + days(3), prim)
    for marker, val in (("er", p.er), ("pr", p.pr), ("her2", p.her2)):
        if val:
            O.tumor_marker(rec, marker, val == "pos", P + days(4), prim)
    cbc_graded(rec, P, 8 * 60 + rng.randint(0, 50), lab, sex, 0, 0, 0)

    # --- follow-up before metastasis (yearly, at most 8) ------------------------------------
    span = (M - P).days
    n_fu = min(8, span // 365)
    for j in range(1, n_fu + 1):
        d = P + days(int(j * span / (n_fu + 1)))
        rec.encounter(d, text="Oncology follow-up")
        cbc_graded(rec, d, 8 * 60 + rng.randint(0, 120), lab, sex, 0, 0, 0, with_anc=False)

    # --- metastases (bone first, at the metastasis date; others up to BMC) ---------------------
    if M != P:
        rec.encounter(M, text="Staging: bone scan")
    for site in p.sites:
        onset = M if site == "bone" else M + days(rng.randint(0, max(0, (B - M).days)))
        O.secondary(rec, site, onset, prim)
    _prior_regimens(rec, p, bsa, prim, sex)

    # --- the weeks before BMC --------------------------------------------------------------
    pre = B - days(rng.randint(25, 45))
    if pre > P:
        rec.encounter(pre, text="Oncology follow-up")
        cbc_graded(rec, pre, 8 * 60 + rng.randint(0, 120), lab, sex, max(p.anemia_grade - 1, 0),
                   max(p.thrombopenia_grade - 1, 0), max(p.leukopenia_grade - 1, 0))

    # --- BMC diagnosis: index CBC, marrow evidence ---------------------------------------------
    g = (p.anemia_grade, p.thrombopenia_grade, p.leukopenia_grade)
    if p.bmc_method == "histology":
        enc = rec.encounter(B - days(1), B + days(3), cls="IMP", text="Oncology ward")
        index_day = B if p.normoblasts > 0 else B - days(rng.randint(0, 3))
        draw = cbc_graded(rec, index_day, 7 * 60 + rng.randint(0, 45), lab, sex, *g, nrbc=p.normoblasts)
        kind = {"ductal": "invasive ductal", "lobular": "invasive lobular"}.get(p.histology or "", "")
        concl = (f"Bone marrow trephine: diffuse infiltration by metastatic {kind} carcinoma, "
                 "consistent with the known breast primary.").replace("  ", " ")
        report = O.marrow_biopsy(rec, B, prim, enc, concl)
        O.secondary(rec, "marrow", B, prim, evidence=report)
    else:
        rec.encounter(B, text="Oncology clinic: blood smear review")
        draw = cbc_graded(rec, B, 7 * 60 + rng.randint(0, 45), lab, sex, *g, nrbc=p.normoblasts)
        O.secondary(rec, "marrow", B, prim, evidence=draw.nrbc_ref,
                    text="Bone marrow carcinomatosis (leukoerythroblastic blood smear)")
        if p.number in D61_82_PATIENTS:
            O.plain_condition(rec, (C.D61_82,), B, text="Leukoerythroblastic anaemia")
            notes.append("also coded D61.82")
    if p.anemia_grade == 4:
        O.transfusion(rec, draw_day(draw))
        notes.append("anaemia grade 4 at BMC = Hgb < 6.5 g/dL + same-day transfusion")

    # --- BMC regimen ---------------------------------------------------------------------------
    follow_from = B + days(30)
    if not p.treated and p.prior_regimens is not None:
        # patient 3: chemotherapy offered and declined (fit_report.md inconsistency 9)
        talk = B + days(7)
        enc = rec.encounter(talk, text="Oncology clinic: treatment discussion")
        O.declined_chemotherapy(rec, enc, prim)
        notes.append(f"chemotherapy offered and declined on {talk} (Procedure status not-done)")
    if p.treated:
        assert p.chemo_regimen and p.chemo_start_date
        follow_from = _bmc_regimen(rec, p, bsa, prim, last_day, notes)

    # --- follow-up until death / cut-off ------------------------------------------------------------
    a_post = p.anemia_grade_post if p.anemia_grade_post is not None else p.anemia_grade
    p_post = p.thrombopenia_grade_post if p.thrombopenia_grade_post is not None else p.thrombopenia_grade
    w_post = p.leukopenia_grade_post if p.leukopenia_grade_post is not None else p.leukopenia_grade
    interval = 90 if p.treated else 35
    d = follow_from
    stop = last_day - days(10)
    while d < stop:
        near_death = p.death_date is not None and (p.death_date - d).days < 75
        a = min(3, max(a_post, 1) + (1 if near_death else 0)) if p.death_date else min(a_post, 1)
        rec.encounter(d, text="Oncology follow-up")
        cbc_graded(rec, d, 8 * 60 + rng.randint(0, 120), lab, sex, min(a, 3), min(p_post, 3),
                   min(w_post, 2), with_anc=False)
        d = d + days(interval + rng.randint(-10, 10))
    if p.death_date is None:
        # survivors: seen on the cut-off date (last_followup_date), so censoring is derivable
        assert p.last_followup_date == DATA_CUTOFF
        rec.encounter(DATA_CUTOFF, text="Oncology follow-up")
        cbc_graded(rec, DATA_CUTOFF, 8 * 60 + rng.randint(0, 120), lab, sex, min(a_post, 1), 0, 0,
                   with_anc=False)
    else:
        rec.encounter(p.death_date - days(rng.randint(3, 9)), p.death_date, cls="IMP",
                      text="Palliative care ward", expired=True)

    row = RoleRow(
        patient_id=rec.patient_id, role="bmc_paper", paper_patient=p.number, sex=sex,
        # Paper patient 2 (route "coded": smear without cytopenia) is one of the paper's 22 but
        # does not meet the paper's own rule (fit_report.md inconsistency 12): out of the cohort,
        # still a true case in truth_labels.csv, so `bmc check` shows the rule's miss.
        cancer="breast", expected_in_cohort=int(_route(p) != "coded"), expected_route=_route(p),
        coded_bmc=1,
        expected_index_date=B if _route(p) != "coded" else None, expected_screen_tier="known", bmc_label=1, lab="A",
        notes="; ".join(notes),
    )
    return rec, row


def draw_day(draw) -> date:
    return date.fromisoformat(draw.hgb["effectiveDateTime"][:10])


def _bmc_regimen(rec: Record, p: PaperPatient, bsa: float, prim, last_day: date,
                 notes: list[str]) -> date:
    """Cycles of the first regimen after BMC and the CBCs that define its outcomes; the dose
    and timing of ``bmc_course.csv`` (first cycle reduced, second cycle postponed with its
    reason, reduced from a later cycle) and a further line after it.

    Returns the first date for routine follow-up (60 days after the last administration).
    """
    rng = rec.rng
    sex, lab = p.sex, LAB_A
    reg = REGIMENS[p.chemo_regimen or ""]
    A1 = p.chemo_start_date
    assert A1 is not None
    wN = p.leukopenia_grade_nadir or 0
    fn = p.febrile_neutropenia
    plan = course_plans().get(p.number, CoursePlan(p.number))
    postpone: dict[int, int] = {}
    if plan.cycle2_delay_days:
        postpone[2] = plan.cycle2_delay_days
    if not fn and wN >= 3:
        postpone[3] = 7
    n = CYCLES_BY_RESPONSE[p.best_response]
    while True:
        cycles = plan_cycles(
            A1, reg, n, postpone=postpone, reduce_from=plan.reduce_from_cycle,
            reduce_factor=plan.reduce_percent / 100, reduce_note=plan.reduce_note,
            postpone_note=(plan.cycle2_delay_text if 2 in postpone
                           else "cycle postponed 1 week (myelosuppression)"),
            start_factor=plan.cycle1_dose_percent / 100, start_note=plan.cycle1_note)
        last = cycles[-1].start + days(reg.treatment_days[-1] - 1)
        if n == 1 or last + days(23) <= last_day:
            break
        n -= 1
    given: list[date] = []
    for cyc in cycles:
        given += administer(rec, reg, cyc, bsa, prim, last_day=last_day - days(1))
    a_last = given[-1]
    if plan.cycle1_dose_percent != 100:
        notes.append(f"first cycle at {plan.cycle1_dose_percent}%")
    if postpone:
        notes.append("postponed cycle " + ",".join(str(k) for k in postpone if k <= n))
    if plan.reduce_from_cycle and plan.reduce_from_cycle <= n:
        notes.append(f"dose reduced from cycle {plan.reduce_from_cycle}")

    a0, p0, w0 = p.anemia_grade, p.thrombopenia_grade, p.leukopenia_grade
    aP = p.anemia_grade_post if p.anemia_grade_post is not None else a0
    p1 = p.thrombopenia_grade_after_cycle1 if p.thrombopenia_grade_after_cycle1 is not None else p0
    pP = p.thrombopenia_grade_post if p.thrombopenia_grade_post is not None else p0
    wP = p.leukopenia_grade_post if p.leukopenia_grade_post is not None else w0
    a_mid = _mid_anemia(a0, aP)

    # after cycle 1: the first CBC 7-21 days after the first administration (day 10)
    c1 = A1 + days(10)
    post_day = min(a_last + days(21), last_day - days(2))
    fn_anc = rng.uniform(0.15, 0.25) if fn else None
    cbc_graded(rec, c1, 7 * 60 + rng.randint(0, 40), lab, sex, min(a0, 3) if a0 < 4 else 3, p1, wN,
               anc_fraction=fn_anc)
    if fn:
        enc = rec.encounter(c1, c1 + days(5), cls="IMP", text="Oncology ward: febrile neutropenia",
                            minute=6 * 60)
        O.temperature(rec, c1, 6 * 60 + 20, round(rng.uniform(38.6, 39.4), 1))
        O.adverse_condition(rec, C.FEBRILE_NEUTROPENIA, c1, 3, c1 + days(5), enc,
                            text="Febrile neutropenia")
    if p.bleeding_grade:
        kind = {4: "gi", 3: rng.choice(("gi", "hematuria", "epistaxis")), 2: "epistaxis"}[p.bleeding_grade]
        onset = c1 + days(1)
        O.adverse_condition(rec, C.BLEEDING[kind], onset, p.bleeding_grade, onset + days(4),
                            text=f"Bleeding ({kind}) during thrombocytopenia")
    # later cycles: pre-cycle CBC on the day, nadir CBC on day 10
    k_total = len(cycles)
    for k, cyc in enumerate(cycles[1:], start=2):
        if cyc.start >= post_day:
            break
        frac = (k - 1) / k_total
        pg = round(p1 + (pP - p1) * frac)
        wg = round(w0 + (wP - w0) * frac) if wP != wN else wN
        wg = min(wg, wN)
        cbc_graded(rec, cyc.start, 7 * 60 + rng.randint(0, 30), lab, sex, a_mid, pg, wg)
        nad = cyc.start + days(10)
        if nad < post_day:
            cbc_graded(rec, nad, 7 * 60 + rng.randint(0, 60), lab, sex, a_mid, pg,
                       min(wN, max(wg, wN - 1)))
    # after treatment: the last CBC within 42 days after the last administration
    cbc_graded(rec, post_day, 8 * 60 + rng.randint(0, 60), lab, sex, aP, pP, wP)
    if aP == 4:
        O.transfusion(rec, post_day)
        notes.append("anaemia grade 4 after treatment = Hgb < 6.5 g/dL + same-day transfusion")

    # best response (during the regimen), later progression for those who die
    if p.best_response in ("PR", "SD"):
        when = cycles[min(2, len(cycles) - 1)].start + days(14)
        O.disease_status(rec, p.best_response, min(when, post_day), prim)
    elif p.best_response == "PD":
        O.disease_status(rec, "PD", min(a_last + days(14), post_day), prim)
    elif p.best_response == "NE":
        O.disease_status(rec, "NE", post_day, prim)
    if p.death_date and p.best_response in ("PR", "SD"):
        prog = p.death_date - days(rng.randint(30, 60))
        if prog > a_last + days(56):
            O.disease_status(rec, "PD", prog, prim)
    # the records of dose and timing, and the later line (a random stream of their own)
    with rec.stream(COURSE_STREAM):
        O.body_surface_area(rec, A1, 8 * 60, bsa)
        if 2 in postpone and n >= 2:
            planned = cycles[0].start + days(reg.cycle_days)
            _second_cycle_not_given(rec, p, reg, plan, planned, prim, a_mid, p1)
        if plan.further_line:
            _further_line(rec, p, REGIMENS[plan.further_line], bsa, prim, a_last, last_day,
                          (aP, pP, wP), notes)
    return a_last + days(60)


def _second_cycle_not_given(rec: Record, p: PaperPatient, reg, plan: CoursePlan, planned: date,
                            prim, a_mid: int, p1: int) -> None:
    """The planned day of cycle 2: a visit, the cycle recorded as not given with its reason,
    and what shows the reason: a blood count that has not recovered (leukocytes grade 2,
    platelets grade >= 2, never worse than the cycle's nadir) or the unresolved
    non-haematological toxicity (oral mucositis grade 3 from day 8 of cycle 1)."""
    enc = rec.encounter(planned, text="Oncology clinic: cycle 2 postponed", minute=8 * 60 + 30)
    not_given(rec, reg, planned, C.DELAY_REASON[plan.cycle2_delay_reason],
              plan.cycle2_delay_text, prim, enc)
    if plan.cycle2_delay_reason == "prolonged_cytopenia":
        cbc_graded(rec, planned, 7 * 60 + rec.rng.randint(0, 30), LAB_A, p.sex, a_mid,
                   max(2, min(p1, 3)), 2)
    elif plan.cycle2_delay_reason == "non_haematological_toxicity":
        cycle1 = planned - days(reg.cycle_days)
        O.adverse_condition(rec, C.ORAL_MUCOSITIS, cycle1 + days(7), 3, planned + days(4),
                            text="Oral mucositis")


def _further_line(rec: Record, p: PaperPatient, reg, bsa: float, prim, a_last: date,
                  last_day: date, grades: tuple[int, int, int], notes: list[str]) -> None:
    """A further line of cytotoxic treatment after the BMC regimen: progression recorded 1-2
    weeks before, body surface area and a blood count before each cycle, up to
    ``FURTHER_LINE_MAX_CYCLES`` cycles ending ``FURTHER_LINE_END_MARGIN_DAYS`` before death or
    the cut-off. Starts ``FURTHER_LINE_AFTER_DAYS`` after the last dose of the BMC regimen."""
    rng = rec.rng
    start = a_last + days(rng.randint(*FURTHER_LINE_AFTER_DAYS))
    stop = last_day - days(FURTHER_LINE_END_MARGIN_DAYS)
    n = 0
    while (n < FURTHER_LINE_MAX_CYCLES
           and start + days(n * reg.cycle_days + reg.treatment_days[-1] - 1) <= stop):
        n += 1
    if n == 0:
        raise ValueError(f"bmc_course.csv: no room for a further line for paper patient "
                         f"{p.number} (starts {start}, must end by {stop})")
    O.disease_status(rec, "PD", start - days(rng.randint(7, 14)), prim)
    O.body_surface_area(rec, start, 8 * 60, bsa)
    a, pl, w = grades
    for cyc in plan_cycles(start, reg, n):
        cbc_graded(rec, cyc.start, 7 * 60 + rng.randint(0, 40), LAB_A, p.sex, min(max(a, 1), 2),
                   min(pl, 1), min(w, 1))
        administer(rec, reg, cyc, bsa, prim, last_day=stop)
    notes.append(f"further line: {reg.name} x{n} from {start}")
