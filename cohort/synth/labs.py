"""Complete blood counts as FHIR Observations, in the units and ranges of three labs.

* ``LAB_A`` the hospital's central lab (all 22 paper patients): Hgb g/dL, counts 10*3/uL,
  sex-matched range on each result (female Hgb 12.0-15.5, male 13.5-17.5 g/dL; platelets
  150-400; WBC 4.0-10.0; ANC 1.8-7.7), CODES.md §4.3/§4.4.
* ``LAB_B`` an outpatient lab: Hgb g/L, counts 10*9/L, WBC 4.5-11.0, platelets 150-450, and the
  Hgb range given for both sexes with ``appliesTo`` (the reader must pick the patient's).
* ``LAB_C`` an external lab that sends no reference ranges (graders fall back to §4.3).

nRBC is LOINC 58413-6 in ``/100{WBCs}`` with reference range high 0 (§4.1, §4.4).
Values come in canonical units (Hgb g/dL, counts 10^9/L) and are converted per lab.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from . import codes as C
from .ctcae import HGB_LLN, pick_hgb, pick_plt, pick_wbc
from .record import Record, Ref, ts

FEMALE = C.cc(C.coding(C.SCT, "248152002", "Female"))  # CODES.md §4.4 appliesTo
MALE = C.cc(C.coding(C.SCT, "248153007", "Male"))


def qty(value: float, code: str, unit: str | None = None) -> dict:
    return {"value": value, "unit": unit or code, "system": C.UCUM, "code": code}


@dataclass(frozen=True)
class Lab:
    key: str
    hgb_unit: str  # "g/dL" | "g/L"
    count_unit: str  # "10*3/uL" | "10*9/L"
    wbc_low: float
    wbc_high: float
    plt_high: float
    ranges: bool
    both_sex_hgb_ranges: bool = False

    @property
    def hgb_factor(self) -> float:
        return 10.0 if self.hgb_unit == "g/L" else 1.0


LAB_A = Lab("A", "g/dL", "10*3/uL", 4.0, 10.0, 400.0, ranges=True)
LAB_B = Lab("B", "g/L", "10*9/L", 4.5, 11.0, 450.0, ranges=True, both_sex_hgb_ranges=True)
LAB_C = Lab("C", "g/dL", "10*9/L", 4.5, 11.0, 450.0, ranges=False)

_HGB_RANGE = {"F": (12.0, 15.5), "M": (13.5, 17.5)}
_HGB_RANGE_B = {"F": (12.0, 16.0), "M": (13.5, 17.5)}


def _rq(value: float, unit: str) -> dict:
    return {"value": value, "system": C.UCUM, "code": unit}


def _rr(low: float | None, high: float | None, unit: str, applies: dict | None = None) -> dict:
    r: dict = {}
    if low is not None:
        r["low"] = _rq(low, unit)
    if high is not None:
        r["high"] = _rq(high, unit)
    if applies is not None:
        r["appliesTo"] = [applies]
    return r


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


class RangeBook:
    """Reference ranges per (lab, sex, analyte), built once and shared (never mutated)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str], list | None] = {}

    def get(self, lab: Lab, sex: str, analyte: str) -> list | None:
        key = (lab.key, sex, analyte)
        if key not in self._cache:
            self._cache[key] = self._build(lab, sex, analyte)
        return self._cache[key]

    @staticmethod
    def _build(lab: Lab, sex: str, analyte: str) -> list | None:
        if not lab.ranges:
            return None
        f = lab.hgb_factor
        if analyte == "hgb":
            if lab.both_sex_hgb_ranges:
                return [
                    _rr(_num(lo * f), _num(hi * f), lab.hgb_unit, FEMALE if s == "F" else MALE)
                    for s, (lo, hi) in _HGB_RANGE_B.items()
                ]
            lo, hi = _HGB_RANGE[sex]
            return [_rr(_num(lo * f), _num(hi * f), lab.hgb_unit)]
        if analyte == "plt":
            return [_rr(150, _num(lab.plt_high), lab.count_unit)]
        if analyte == "wbc":
            return [_rr(_num(lab.wbc_low), _num(lab.wbc_high), lab.count_unit)]
        if analyte == "anc":
            return [_rr(1.8, 7.7, lab.count_unit)]
        if analyte == "nrbc":
            return [_rr(None, 0, "/100{WBCs}")]
        raise ValueError(analyte)


RANGES = RangeBook()


def hgb_lln(lab: Lab, sex: str) -> float:
    """The LLN (g/dL) a grader reads from this lab's result, or the §4.3 default."""
    if lab.ranges:
        return (_HGB_RANGE_B if lab.both_sex_hgb_ranges else _HGB_RANGE)[sex][0]
    return HGB_LLN[sex]


def _interp(value: float, low: float | None, high: float | None, crit_low: float) -> dict | None:
    if low is not None and value < low:
        return C.INTERP["LL"] if value < crit_low else C.INTERP["L"]
    if high is not None and value > high:
        return C.INTERP["H"]
    return None


@dataclass
class Draw:
    """The Observations of one blood draw (absent analytes are None)."""

    hgb: dict | None = None
    plt: dict | None = None
    wbc: dict | None = None
    anc: dict | None = None
    nrbc: dict | None = None
    nrbc_ref: Ref | None = None
    panel: dict | None = None

    def all(self) -> list[dict]:
        return [o for o in (self.hgb, self.plt, self.wbc, self.anc, self.nrbc, self.panel) if o]


def _obs(rec: Record, code: dict, when: str, value: dict, ranges: list | None,
         interp: dict | None, status: str = "final") -> tuple[dict, Ref]:
    res, r = rec.new("Observation")
    res["status"] = status
    res["category"] = C.CAT_LAB
    res["code"] = {"coding": [code]}
    res["subject"] = rec.subject
    res["effectiveDateTime"] = when
    res["valueQuantity"] = value
    if interp is not None:
        res["interpretation"] = [interp]
    if ranges is not None:
        res["referenceRange"] = ranges
    return res, r


def cbc(
    rec: Record, day: date, minute: int, lab: Lab, sex: str, *,
    hgb: float, plt: float, wbc: float, anc: float | None = None, nrbc: int | None = None,
) -> Draw:
    """Write one CBC draw; values in canonical units (Hgb g/dL, counts 10^9/L)."""
    when = ts(day, minute)
    f = lab.hgb_factor
    hv = _num(round(hgb * f)) if f == 10.0 else round(hgb, 1)
    lo_h = hgb_lln(lab, sex) * f if lab.ranges else None
    hi_h = (_HGB_RANGE_B if lab.both_sex_hgb_ranges else _HGB_RANGE)[sex][1] * f if lab.ranges else None
    d = Draw()
    d.hgb, _ = _obs(rec, C.HGB, when, qty(hv, lab.hgb_unit), RANGES.get(lab, sex, "hgb"),
                    _interp(hv, lo_h, hi_h, 7.0 * f) if lab.ranges else None)
    pv = _num(round(plt))
    d.plt, _ = _obs(rec, C.PLT, when, qty(pv, lab.count_unit), RANGES.get(lab, sex, "plt"),
                    _interp(pv, 150, lab.plt_high, 20) if lab.ranges else None)
    wv = round(wbc, 1)
    d.wbc, _ = _obs(rec, C.WBC, when, qty(wv, lab.count_unit), RANGES.get(lab, sex, "wbc"),
                    _interp(wv, lab.wbc_low, lab.wbc_high, 1.0) if lab.ranges else None)
    if anc is not None:
        av = round(anc, 2)
        d.anc, _ = _obs(rec, C.ANC, when, qty(av, lab.count_unit), RANGES.get(lab, sex, "anc"),
                        _interp(av, 1.8, 7.7, 0.5) if lab.ranges else None)
    if nrbc is not None:
        d.nrbc, d.nrbc_ref = _obs(
            rec, C.NRBC, when, qty(nrbc, "/100{WBCs}", "/100 WBC"), RANGES.get(lab, sex, "nrbc"),
            (C.INTERP["H"] if nrbc > 0 else None) if lab.ranges else None)
    return d


def cbc_graded(
    rec: Record, day: date, minute: int, lab: Lab, sex: str, a: int, p: int, w: int, *,
    nrbc: int | None = None, with_anc: bool = True, anc_fraction: float | None = None,
) -> Draw:
    """A CBC whose values grade to anaemia ``a``, platelets ``p``, leukocytes ``w`` (CTCAE v5)."""
    rng = rec.rng
    hgb = pick_hgb(rng, a, hgb_lln(lab, sex))
    plt = pick_plt(rng, p)
    wbc = pick_wbc(rng, w)
    anc = None
    if with_anc:
        anc = wbc * (anc_fraction if anc_fraction is not None else rng.uniform(0.52, 0.70))
    return cbc(rec, day, minute, lab, sex, hgb=hgb, plt=plt, wbc=wbc, anc=anc, nrbc=nrbc)


def as_panel(rec: Record, draw: Draw) -> dict:
    """Fold a draw into one CBC panel Observation (LOINC 58410-2) with components.

    The separate Observations are removed from the record; the panel keeps each analyte's
    value, interpretation and reference range in its component.
    """
    parts = [o for o in (draw.hgb, draw.plt, draw.wbc, draw.anc, draw.nrbc) if o]
    ids = {id(o) for o in parts}
    rec.entries = [e for e in rec.entries if id(e.resource) not in ids]
    res, _ = rec.new("Observation")
    res["status"] = "final"
    res["category"] = C.CAT_LAB
    res["code"] = {"coding": [C.CBC_PANEL]}
    res["subject"] = rec.subject
    res["effectiveDateTime"] = parts[0]["effectiveDateTime"]
    comps = []
    for o in parts:
        comp = {"code": o["code"], "valueQuantity": o["valueQuantity"]}
        if "interpretation" in o:
            comp["interpretation"] = o["interpretation"]
        if "referenceRange" in o:
            comp["referenceRange"] = o["referenceRange"]
        comps.append(comp)
    res["component"] = comps
    return res


def to_period(obs: dict, minutes: int = 20) -> None:
    """Replace ``effectiveDateTime`` by an ``effectivePeriod`` of the same start."""
    start = obs.pop("effectiveDateTime")
    h, m = int(start[11:13]), int(start[14:16]) + minutes
    h, m = h + m // 60, m % 60
    end = f"{start[:11]}{h:02d}:{m:02d}{start[16:]}"
    # keep key order readable: re-insert the period where effective[x] sits
    items = list(obs.items())
    obs.clear()
    for k, v in items:
        obs[k] = v
        if k == "subject":
            obs["effectivePeriod"] = {"start": start, "end": end}
