"""Chemotherapy regimens and their MedicationAdministrations (mCODE, CODES.md §8).

One MedicationAdministration per drug and treatment day, with RxNorm ingredient + SNOMED
substance codes, the dose in mg (dose per m2 x body surface area, times a reduction factor), an
``effectivePeriod`` (infusion start-end; for oral capecitabine days 1-14 of the cycle), the route,
``reasonReference`` to the primary cancer and ``context`` to the day's ambulatory Encounter.
Dose reductions and postponed cycles are visible in the dose and dates and explained in
``note``. The "administration date" used by the definitions in ``DEFINITIONS.md`` is the local
date of ``effectivePeriod.start``.

Doses and schedules are the usual published ones for these regimens; the paper does not give
them (design assumption, not a paper fact).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from . import codes as C
from .labs import qty
from .record import Record, Ref, days, ref, ts


@dataclass(frozen=True)
class Drug:
    name: str  # key of codes.DRUGS
    mg_m2: float
    days: tuple[int, ...]  # treatment days within the cycle (1-based)
    minutes: int  # infusion length; oral: 0
    schedule: str  # dosage text


@dataclass(frozen=True)
class Regimen:
    name: str
    drugs: tuple[Drug, ...]
    cycle_days: int
    from_year: int  # not used before (drug availability; fit_report.md "How the timeline was built" 2.)

    @property
    def treatment_days(self) -> tuple[int, ...]:
        return tuple(sorted({d for drug in self.drugs for d in drug.days}))


def _r(name: str, cycle: int, year: int, *drugs: Drug) -> Regimen:
    return Regimen(name, drugs, cycle, year)


DOC75 = Drug("docetaxel", 75, (1,), 60, "75 mg/m2 IV over 1 h, day 1")
REGIMENS: dict[str, Regimen] = {r.name: r for r in (
    # the nine regimens given for BMC (published.json regimen_counts; timeline.csv chemo_regimen)
    _r("docetaxel", 21, 1996, Drug("docetaxel", 100, (1,), 60, "100 mg/m2 IV over 1 h, day 1")),
    _r("docetaxel/adriamycin", 21, 1996,
       Drug("doxorubicin", 50, (1,), 15, "50 mg/m2 IV bolus, day 1"), DOC75),
    _r("gemcitabine/vinorelbine", 21, 2000,
       Drug("gemcitabine", 1000, (1, 8), 30, "1000 mg/m2 IV over 30 min, days 1 and 8"),
       Drug("vinorelbine", 25, (1, 8), 10, "25 mg/m2 IV over 10 min, days 1 and 8")),
    _r("liposomal doxorubicin", 28, 2000,
       Drug("liposomal doxorubicin", 40, (1,), 60, "40 mg/m2 IV over 1 h, day 1")),
    _r("capecitabine", 21, 2001,
       Drug("capecitabine", 1250, (1,), 0, "1250 mg/m2 orally twice daily, days 1-14")),
    _r("epirubicin/cyclophosphamide", 21, 1990,
       Drug("epirubicin", 90, (1,), 15, "90 mg/m2 IV, day 1"),
       Drug("cyclophosphamide", 600, (1,), 30, "600 mg/m2 IV, day 1")),
    _r("gemcitabine", 28, 2000,
       Drug("gemcitabine", 1000, (1, 8, 15), 30, "1000 mg/m2 IV over 30 min, days 1, 8, 15")),
    _r("paclitaxel/5-FU", 21, 1994,
       Drug("paclitaxel", 175, (1,), 180, "175 mg/m2 IV over 3 h, day 1"),
       Drug("fluorouracil", 500, (1,), 15, "500 mg/m2 IV bolus, day 1")),
    _r("docetaxel/gemcitabine", 21, 2000,
       Drug("gemcitabine", 1000, (1, 8), 30, "1000 mg/m2 IV over 30 min, days 1 and 8"),
       Drug("docetaxel", 75, (8,), 60, "75 mg/m2 IV over 1 h, day 8")),
    # further regimens for earlier lines and for the institution
    _r("FEC", 21, 1985,
       Drug("fluorouracil", 500, (1,), 15, "500 mg/m2 IV, day 1"),
       Drug("epirubicin", 100, (1,), 15, "100 mg/m2 IV, day 1"),
       Drug("cyclophosphamide", 500, (1,), 30, "500 mg/m2 IV, day 1")),
    _r("AC", 21, 1985,
       Drug("doxorubicin", 60, (1,), 15, "60 mg/m2 IV, day 1"),
       Drug("cyclophosphamide", 600, (1,), 30, "600 mg/m2 IV, day 1")),
    _r("paclitaxel", 21, 1994, Drug("paclitaxel", 175, (1,), 180, "175 mg/m2 IV over 3 h, day 1")),
    _r("vinorelbine", 21, 1995,
       Drug("vinorelbine", 30, (1, 8), 10, "30 mg/m2 IV, days 1 and 8")),
    _r("docetaxel mono 75", 21, 1996, DOC75),
    _r("paclitaxel/trastuzumab", 21, 2000,
       Drug("paclitaxel", 175, (1,), 180, "175 mg/m2 IV over 3 h, day 1"),
       Drug("trastuzumab", 3.5, (1,), 90, "6 mg/kg IV (loading 8 mg/kg), day 1")),
)}

ADJUVANT = ("FEC", "AC", "epirubicin/cyclophosphamide")
PALLIATIVE = ("paclitaxel", "vinorelbine", "docetaxel mono 75", "capecitabine",
              "liposomal doxorubicin", "gemcitabine", "FEC", "AC", "paclitaxel/trastuzumab")


def available(name: str, on: date) -> bool:
    return REGIMENS[name].from_year <= on.year


_DRUG_CC = {
    name: C.cc(C.coding(C.RXNORM, rx, name.split(" ")[-1] if name != "liposomal doxorubicin" else "doxorubicin"),
               C.coding(C.SCT, sct), text=name)
    for name, (rx, sct) in C.DRUGS.items()
}


@dataclass
class Cycle:
    start: date
    factor: float = 1.0
    note: str | None = None


def administer(rec: Record, reg: Regimen, cycle: Cycle, bsa: float, primary: Ref,
               last_day: date | None = None) -> list[date]:
    """Write one cycle (encounter + administrations per treatment day); return the days given.

    Treatment days after ``last_day`` (death, cut-off) are not given.
    """
    given: list[date] = []
    for tday in reg.treatment_days:
        day = cycle.start + days(tday - 1)
        if last_day is not None and day > last_day:
            break
        minute = 9 * 60 + rec.rng.randint(0, 90)
        enc = rec.encounter(day, text="Chemotherapy", minute=minute - 45)
        for drug in reg.drugs:
            if tday not in drug.days:
                continue
            res, _ = rec.new("MedicationAdministration")
            res["meta"] = {"profile": [C.P_MED_ADMIN]}
            res["status"] = "completed"
            res["medicationCodeableConcept"] = _DRUG_CC[drug.name]
            res["subject"] = rec.subject
            res["context"] = ref(enc)
            if drug.minutes:
                res["effectivePeriod"] = {"start": ts(day, minute), "end": ts(day, minute + drug.minutes)}
                minute += drug.minutes + 5
                route = C.ROUTE_IV
            else:  # oral, days 1-14
                res["effectivePeriod"] = {"start": ts(day, 8 * 60), "end": ts(day + days(13), 20 * 60)}
                route = C.ROUTE_ORAL
            res["reasonReference"] = [ref(primary)]
            mg = round(drug.mg_m2 * bsa * cycle.factor)
            if drug.name == "trastuzumab":
                mg = round(6 * bsa * 38 * cycle.factor / 10) * 10  # weight ~ 38 kg per m2
            text = drug.schedule if cycle.factor == 1.0 else f"{drug.schedule}; {round(cycle.factor * 100)}% dose"
            res["dosage"] = {"text": text, "route": route, "dose": qty(mg, "mg")}
            if cycle.note:
                res["note"] = [{"text": cycle.note}]
        given.append(day)
    return given


def plan_cycles(first: date, reg: Regimen, n: int, *, postpone: dict[int, int] | None = None,
                reduce_from: int | None = None, reduce_factor: float = 0.75,
                reduce_note: str = "", postpone_note: str = "", start_factor: float = 1.0,
                start_note: str = "") -> list[Cycle]:
    """Cycle start dates: every ``cycle_days``, cycle k (1-based) postponed by ``postpone[k]``
    days; doses at ``start_factor`` of the protocol dose from cycle 1 (``start_note`` says
    why), reduced to ``reduce_factor`` from cycle ``reduce_from`` on."""
    out: list[Cycle] = []
    start = first
    for k in range(1, n + 1):
        note = None
        if k > 1:
            start = start + days(reg.cycle_days)
            if postpone and k in postpone:
                start = start + days(postpone[k])
                note = postpone_note
        factor = start_factor
        if start_factor != 1.0 and start_note:
            note = f"{note}; {start_note}" if note else start_note
        if reduce_from is not None and k >= reduce_from:
            factor = reduce_factor
            note = f"{note}; {reduce_note}" if note else reduce_note
        out.append(Cycle(start, factor, note))
    return out


def not_given(rec: Record, reg: Regimen, day: date, reason: dict, text: str, primary: Ref,
              encounter: Ref) -> None:
    """A planned cycle not given on its day: one MedicationAdministration per drug of the
    cycle's first day, status ``not-done``, ``statusReason`` coded (``codes.DELAY_REASON``)
    with the clinician's words, ``effectiveDateTime`` the planned day."""
    first = reg.treatment_days[0]
    for drug in reg.drugs:
        if first not in drug.days:
            continue
        res, _ = rec.new("MedicationAdministration")
        res["meta"] = {"profile": [C.P_MED_ADMIN]}
        res["status"] = "not-done"
        res["statusReason"] = [C.cc(reason, text=text)]
        res["medicationCodeableConcept"] = _DRUG_CC[drug.name]
        res["subject"] = rec.subject
        res["context"] = ref(encounter)
        res["effectiveDateTime"] = ts(day, 9 * 60)
        res["reasonReference"] = [ref(primary)]


def last_day_of(reg: Regimen, cycle: Cycle) -> date:
    """Date of the last administration start within a cycle."""
    return cycle.start + days(reg.treatment_days[-1] - 1)
