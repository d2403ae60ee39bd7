"""The institution around the 22: role builders for every other kind of patient.

Each builder writes one patient's chart into a :class:`Record` and returns its :class:`RoleRow`
(intent + expectations for tests). ``variant`` counts patients of the same role (0, 1, 2, ...);
builders use it to plant the documented edge cases once per cycle of variants, so the sample
(variants 0..n-1) holds each edge exactly once and the scaled stream holds them in proportion.

Invariants the expectations rely on (the smear rule and tier-2 screen of ``DEFINITIONS.md``):
* outside the roles that are meant to meet it, no record has an nRBC > 0 result (final) within
  14 days of a count below the LLN;
* in breast-cancer records with bone metastases, every count of grade >= 2 is within 21 days
  after a chemotherapy administration, or the record holds an nRBC result, unless the role is
  ``bc_screen_tier2`` (planted candidates).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date

from . import codes as C
from . import oncology as O
from .chart import Chart, new_chart, rand_date, record_span
from .labs import LAB_A, LAB_B, as_panel, qty, to_period
from .paper import DATA_CUTOFF
from .record import Record, Ref, days
from .roles import RoleRow
from .treatment import available

PALLIATIVE_IN_HOUSE = ("paclitaxel", "docetaxel mono 75", "capecitabine", "vinorelbine", "FEC",
                       "gemcitabine/vinorelbine", "docetaxel/adriamycin", "liposomal doxorubicin")


def _pick_available(rng, names: tuple[str, ...], on: date) -> str:
    return rng.choice([n for n in names if available(n, on)] or ["FEC"])


def _breast(ch: Chart, dx: date, stage: str, *, style: str | None = None) -> Ref:
    """Diagnosis visit, primary breast cancer (varied codings), stage, markers, first count."""
    rng, rec = ch.rng, ch.rec
    histology = rng.choice(("ductal",) * 7 + ("lobular",) * 2 + (None,))
    style = style or rng.choice(("both",) * 6 + ("icd",) * 3 + ("sct",))
    rec.encounter(dx, text="Breast clinic: diagnosis")
    prim_res, prim = O.breast_primary(rec, ch.sex, dx, histology, style=style)
    if rng.random() < 0.8:
        st = O.stage_group(rec, stage, dx, prim, generic=rng.random() < 0.3)
        O.link_stage(prim_res, st, stage)
    if rng.random() < 0.7:
        sct = rng.random() < 0.3
        for m in ("er", "pr", "her2"):
            O.tumor_marker(rec, m, rng.random() < (0.2 if m == "her2" else 0.7), dx + days(4), prim,
                           sct_answers=sct)
    ch.cbc(dx)
    return prim


def _sex(rng, male_p: float = 0.01) -> str:
    return "M" if rng.random() < male_p else "F"


def _row(rec: Record, ch: Chart, role: str, cancer: str, **kw) -> RoleRow:
    notes = kw.pop("notes", None)
    all_notes = [*ch.notes, *([notes] if notes else [])]
    return RoleRow(patient_id=rec.patient_id, role=role, sex=ch.sex, cancer=cancer,
                   lab=ch.lab.key, notes="; ".join(all_notes), **kw)


def _mets(ch: Chart, prim: Ref, M: date, *, bone: bool, others: bool = True) -> list[str]:
    rng = ch.rng
    sites = ["bone"] if bone else []
    if others or not sites:
        for site, p in (("liver", 0.35), ("lymph node", 0.3), ("brain", 0.08), ("skin", 0.05)):
            if rng.random() < p:
                sites.append(site)
    if not sites:
        sites.append("liver")
    ch.rec.encounter(M, text="Staging")
    for s in sites:
        O.secondary(ch.rec, s, M if s == sites[0] else M + days(rng.randint(0, 120)), prim)
    return sites


# --------------------------------------------------------------------------------------------
def bc_localized(rec: Record, v: int) -> RoleRow:
    """Breast cancer stage I-IIIA, no metastasis; adjuvant chemotherapy in half of them."""
    rng = rec.rng
    dx, end, dead = record_span(rng, death_p=0.06, min_span=200)
    ch = new_chart(rec, _sex(rng), dx, end, dead)
    prim = _breast(ch, dx, rng.choice(("I", "I", "IIA", "IIA", "IIB", "IIIA")))
    if rng.random() < 0.3 and (end - dx).days > 200:
        ch.chemo(prim, _pick_available(rng, ("FEC", "AC", "epirubicin/cyclophosphamide"), dx),
                 dx + days(rng.randint(28, 42)), 4,
                 nadir=(rng.randint(0, 1), 0, rng.randint(1, 2)) if rng.random() < 0.4 else None)
    ch.follow_up(dx + days(150), end)
    if v % 40 == 1:
        d = rand_date(rng, dx + days(30), end)
        draw = ch.cbc(d)
        to_period(draw.hgb)
        to_period(draw.plt)
        ch.notes.append(f"effectivePeriod on Hgb/platelets {d}")
    ch.finish()
    return _row(rec, ch, "bc_localized", "breast")


def bc_mets_no_marrow(rec: Record, v: int) -> RoleRow:
    """Metastatic breast cancer without marrow involvement (bone metastases in ~60%)."""
    rng = rec.rng
    dx, end, dead = record_span(rng, dx_hi=date(2008, 6, 30), death_p=0.55, min_span=400)
    ch = new_chart(rec, _sex(rng), dx, end, dead)
    stage4 = rng.random() < 0.2
    prim = _breast(ch, dx, "IV" if stage4 else rng.choice(("IIA", "IIB", "IIIA", "IIIB")))
    M = dx if stage4 else rand_date(rng, dx + days(180), max(dx + days(180), end - days(200)))
    bone = rng.random() < 0.6 or v % 30 == 1
    _mets(ch, prim, M, bone=bone)
    ch.follow_up(dx + days(60), M)
    start = M + days(rng.randint(14, 30))
    if start < end - days(60):
        n = rng.randint(3, 4)
        ch.chemo(prim, _pick_available(rng, PALLIATIVE_IN_HOUSE, start), start, n,
                 nadir=(rng.randint(0, 2), rng.randint(0, 1), rng.randint(0, 2)),
                 nadir_cycles=(1, 2))
        ch.follow_up(start + days(n * 21 + 30), end, every=(180, 450))
    if v % 30 == 1:
        d = rand_date(rng, M + days(5), end - days(3))
        draw = ch.cbc(d)
        assert draw.hgb is not None
        draw.hgb["status"] = "entered-in-error"
        hv = 61 if ch.lab.hgb_unit == "g/L" else 6.1
        draw.hgb["valueQuantity"] = qty(hv, ch.lab.hgb_unit)
        draw.hgb.pop("interpretation", None)
        ch.notes.append(f"Hgb {hv} {ch.lab.hgb_unit} on {d} is entered-in-error (not a tier-2 cytopenia)")
    if v % 30 == 2:
        draw = ch.cbc(rand_date(rng, M, end - days(3)))
        to_period(draw.wbc)
        ch.notes.append("effectivePeriod on one leukocyte count")
    ch.finish()
    return _row(rec, ch, "bc_mets_no_marrow", "breast",
                notes="bone metastases" if bone else "no bone metastases")


def bc_mets_chemo_cytopenia(rec: Record, v: int) -> RoleRow:
    """Bone-metastatic breast cancer with cytopenia at a chemotherapy nadir (8-20 days after an
    administration) and no marrow involvement; 60% have no nRBC result at all."""
    rng = rec.rng
    dx, end, dead = record_span(rng, dx_hi=date(2008, 1, 1), death_p=0.5, min_span=500)
    ch = new_chart(rec, _sex(rng), dx, end, dead)
    stage4 = rng.random() < 0.25
    prim = _breast(ch, dx, "IV" if stage4 else rng.choice(("IIA", "IIB", "IIIA", "IIIB")))
    M = dx if stage4 else rand_date(rng, dx + days(180), max(dx + days(180), end - days(250)))
    _mets(ch, prim, M, bone=True)
    ch.follow_up(dx + days(60), M)
    start = M + days(rng.randint(10, 30))
    lineage = rng.randrange(3)
    nad = [rng.randint(0, 1), rng.randint(0, 1), rng.randint(0, 1)]
    nad[lineage] = rng.randint(2, 4) if lineage else rng.randint(2, 3)
    nadir_day = 20 if v % 20 == 2 else rng.randint(8, 18)
    nrbc_zero = rng.random() < 0.4
    n = rng.randint(3, 4)
    given = ch.chemo(prim, _pick_available(rng, PALLIATIVE_IN_HOUSE, start), start, n,
                     nadir=tuple(nad), nadir_day=nadir_day, nadir_cycles=(1, 2), nrbc_zero=nrbc_zero)
    if v % 20 == 2 and given:
        ch.notes.append(f"nadir count {nadir_day} days after an administration (inside 21 d)")
    if v % 20 == 1 and given:
        d = given[-1] + days(9)
        draw = ch.cbc(d, 1, 4, 2, anc=True)
        assert draw.plt is not None
        draw.plt["valueQuantity"] = {**qty(10, ch.lab.count_unit), "comparator": "<"}
        ch.notes.append(f"platelets '<10' (comparator) on {d}")
    if rng.random() < 0.3 and given:
        O.plain_condition(rec, rng.choice((C.CHEMO_ANEMIA, C.CHEMO_PANCYTOPENIA)),
                          given[0] + days(nadir_day))
    ch.follow_up(start + days(n * 21 + 30), end, every=(180, 450))
    ch.finish()
    return _row(rec, ch, "bc_mets_chemo_cytopenia", "breast",
                notes="nRBC measured 0 at nadir" if nrbc_zero else "no nRBC result")


def bc_screen_tier2(rec: Record, v: int) -> RoleRow:
    """Bone-metastatic breast cancer with grade 2-3 cytopenia not explained by recent
    chemotherapy and no nRBC result on file: a candidate for a smear / marrow work-up."""
    rng = rec.rng
    S = rand_date(rng, date(1997, 1, 1), date(2010, 3, 31))
    dx = S - days(rng.randint(2 * 365, 9 * 365))
    end = min(DATA_CUTOFF, S + days(rng.randint(30, 700)))
    ch = new_chart(rec, _sex(rng), dx, end, rng.random() < 0.6)
    prim = _breast(ch, dx, rng.choice(("IIA", "IIB", "IIIA", "IIIB")))
    M = rand_date(rng, dx + days(180), S - days(150))
    _mets(ch, prim, M, bone=True)
    ch.follow_up(dx + days(60), M)
    gap = 24 if v % 6 == 1 else rng.randint(70, 200)
    reg = _pick_available(rng, ("paclitaxel", "docetaxel mono 75", "FEC"), M)
    n = rng.randint(2, 4)
    first = S - days(gap + (n - 1) * 21)
    if first > M:
        ch.chemo(prim, reg, first, n)
    g = (rng.randint(2, 3), rng.randint(0, 1), 0) if rng.random() < 0.6 else (rng.randint(0, 1), rng.randint(2, 3), 0)
    rec.encounter(S, text="Oncology clinic")
    ch.cbc(S, *g, anc=True)
    if rng.random() < 0.3:
        O.plain_condition(rec, C.ANEMIA_NEOPLASTIC if g[0] >= 2 else C.THROMBOCYTOPENIA, S)
    note = f"cytopenia grade {max(g)} on {S}, no nRBC result"
    if v % 6 == 1 and first > M:
        note += f"; last administration {gap} days before (just outside 21 d)"
    ch.follow_up(S + days(30), end, every=(60, 150), blood=0.3)
    ch.finish()
    return _row(rec, ch, "bc_screen_tier2", "breast", expected_screen_tier="2", notes=note)


# --- the unrecognised: the smear rule is met, nobody made the diagnosis ----------------------------
UNRECOGNIZED_VARIANTS = 8


def bc_bmc_unrecognized(rec: Record, v: int) -> RoleRow:
    """Breast cancer with bone metastases meeting the smear rule (nRBC > 0 and a count below
    the LLN within 14 days), but no marrow Condition, biopsy or report."""
    rng = rec.rng
    k = v % UNRECOGNIZED_VARIANTS
    sex = "M" if k == 7 else "F"
    S = rand_date(rng, date(1996, 1, 1), date(2010, 3, 31))
    dx = S - days(rng.randint(400, 10 * 365))
    dead = rng.random() < 0.7
    end = min(DATA_CUTOFF, S + days(rng.randint(30, 500)))
    lab = LAB_B if k == 2 else LAB_A
    ch = new_chart(rec, sex, dx, end, dead, lab=lab)
    prim = _breast(ch, dx, rng.choice(("IIA", "IIB", "IIIA", "IIIB")))
    M = rand_date(rng, dx + days(120), S - days(60))
    _mets(ch, prim, M, bone=True)
    ch.follow_up(dx + days(60), S - days(40))
    minute = 35 if k == 0 else None
    rec.encounter(S, cls="EMER" if k == 0 else "AMB", text="Emergency department" if k == 0 else "Oncology clinic",
                  minute=minute or 8 * 60)
    nrbc = rng.randint(2, 24)
    note = ""
    index = S
    if k == 0:  # standard, drawn after midnight
        ch.cbc(S, rng.randint(1, 3), rng.randint(1, 3), 0, nrbc=nrbc, minute=35, anc=True)
        note = "index count drawn 00:35 local time (previous day in UTC)"
    elif k == 1:  # platelets in /uL
        draw = ch.cbc(S, 0, 2, 0, nrbc=nrbc)
        assert draw.plt is not None
        val = rng.randint(55, 70) * 1000
        draw.plt["valueQuantity"] = qty(val, "/uL")
        draw.plt["referenceRange"] = [{"low": qty(150000, "/uL"), "high": qty(400000, "/uL")}]
        note = f"platelets {val} /uL (grade 2) are the only cytopenia"
    elif k == 2:  # g/L lab
        ch.cbc_values(S, hgb=rng.uniform(8.6, 9.6), plt=rng.randint(180, 300), wbc=rng.uniform(5.0, 8.0),
                      nrbc=nrbc)
        note = "Hgb in g/L (grade 2) is the only cytopenia; counts in 10*9/L"
    elif k == 3:  # CBC panel with components
        draw = ch.cbc(S, 2, 1, 0, nrbc=nrbc, anc=True)
        as_panel(rec, draw)
        note = "index CBC is one panel Observation (58410-2) with components"
    elif k == 4:  # preliminary nRBC 0, corrected to > 0
        draw = ch.cbc(S, 0, 2, 0, nrbc=0)
        assert draw.nrbc is not None
        v1 = draw.nrbc
        rest = {k: v1.pop(k) for k in list(v1) if k not in ("resourceType", "id")}
        v1["meta"] = {"versionId": "1", "lastUpdated": f"{S.isoformat()}T10:00:00{rest['effectiveDateTime'][19:]}"}
        v1.update(rest)
        v1["status"] = "preliminary"
        v2 = {**v1, "meta": {"versionId": "2", "lastUpdated": f"{(S + days(1)).isoformat()}T09:00:00{v1['effectiveDateTime'][19:]}"},
              "status": "corrected", "valueQuantity": qty(nrbc, "/100{WBCs}", "/100 WBC"),
              "interpretation": [C.INTERP["H"]]}
        rec.add_version(v2)
        note = f"nRBC preliminary 0 (versionId 1) corrected to {nrbc} (versionId 2)"
    elif k == 5:  # nRBC with normal counts, cytopenia 14 days later (just inside)
        ch.cbc(S, 0, 0, 0, nrbc=nrbc)
        later = S + days(14)
        rec.encounter(later, text="Oncology clinic")
        ch.cbc(later, 2, 0, 0)
        note = f"nRBC>0 on {S} with normal counts; anaemia grade 2 on {later} (+14 d, just inside)"
    elif k == 6:  # Hgb just under the LLN
        ch.cbc_values(S, hgb=11.9, plt=rng.randint(180, 300), wbc=rng.uniform(5.0, 8.0), nrbc=nrbc)
        note = "Hgb 11.9 g/dL vs LLN 12.0: grade 1 just below the LLN, the only cytopenia"
    else:  # male: Hgb below the male LLN only; effectivePeriod
        draw = ch.cbc_values(S, hgb=13.1, plt=rng.randint(180, 300), wbc=rng.uniform(5.0, 8.0), nrbc=nrbc)
        for o in draw.all():
            to_period(o)
        note = "male: Hgb 13.1 g/dL < male LLN 13.5 (normal for a woman); index draw as effectivePeriod"
    ch.follow_up(S + days(20), end, every=(45, 120), blood=0.5)
    ch.finish()
    return _row(rec, ch, "bc_bmc_unrecognized", "breast", expected_in_cohort=1,
                expected_route="smear", expected_index_date=index, expected_screen_tier="1",
                bmc_label=1, notes=note)


# --- other causes of a leukoerythroblastic picture ----------------------------------------------------
ALT_CAUSES = {
    "mds": (C.MDS, "myelodysplastic syndrome"),
    "hemolysis": (C.HEMOLYSIS, "acquired haemolytic anaemia"),
    "myelofibrosis": (C.MYELOFIBROSIS, "osteomyelofibrosis"),
}


def _alt_cause(kind: str) -> Callable[[Record, int], RoleRow]:
    codings, words = ALT_CAUSES[kind]

    def build(rec: Record, v: int) -> RoleRow:
        rng = rec.rng
        S = rand_date(rng, date(1997, 1, 1), date(2010, 3, 31))
        dx = S - days(rng.randint(300, 8 * 365))
        end = min(DATA_CUTOFF, S + days(rng.randint(60, 900)))
        ch = new_chart(rec, _sex(rng), dx, end, rng.random() < 0.4, age=(50, 85))
        prim = _breast(ch, dx, rng.choice(("I", "IIA", "IIB", "IIIA")))
        bone = v % 2 == 0
        if bone:
            _mets(ch, prim, rand_date(rng, dx + days(100), S - days(60)), bone=True, others=False)
        ch.follow_up(dx + days(60), S - days(120))
        onset = S - days(rng.randint(20, 700))
        cod = codings if v % 3 else codings[:1]
        if kind == "hemolysis" and v % 4 == 3:
            cod = C.HEMOLYSIS_DRUG
        O.plain_condition(rec, cod, onset)
        rec.encounter(S, text="Haematology clinic")
        g = (rng.randint(2, 3), rng.randint(1, 3) if kind != "hemolysis" else 0, rng.randint(0, 1))
        ch.cbc(S, *g, nrbc=rng.randint(1, 12), anc=True)
        ch.follow_up(S + days(20), end, every=(60, 180), blood=0.6)
        ch.finish()
        return _row(rec, ch, f"bc_alt_cause_{kind}", "breast", expected_route="smear",
                    notes=f"smear rule met on {S} but explained by {words} ({cod[0]['code']})"
                    + ("; bone metastases" if bone else ""))

    build.__name__ = f"bc_alt_cause_{kind}"
    build.__doc__ = f"Breast cancer with nRBC and cytopenia explained by {words}."
    return build


# --- marrow carcinomatosis of other primaries --------------------------------------------------------
def _other_bmc(kind: str) -> Callable[[Record, int], RoleRow]:
    def build(rec: Record, v: int) -> RoleRow:
        rng = rec.rng
        sex = "M" if kind == "prostate" or rng.random() < 0.6 else "F"
        S = rand_date(rng, date(1996, 1, 1), date(2010, 3, 31))
        dx = S - days(rng.randint(200, 6 * 365))
        end = min(DATA_CUTOFF, S + days(rng.randint(20, 500)))
        ch = new_chart(rec, sex, dx, end, rng.random() < 0.8, age=(50, 85))
        codings = C.PROSTATE_CA if kind == "prostate" else (C.GASTRIC_CA if v % 2 else C.GASTRIC_CA_ANTRUM)
        rec.encounter(dx, text="Oncology clinic: diagnosis")
        _, prim = O.other_primary(rec, codings, dx)
        ch.cbc(dx)
        M = rand_date(rng, dx, S - days(30))
        rec.encounter(M, text="Staging")
        O.secondary(rec, "bone", M, prim)
        ch.follow_up(dx + days(60), S - days(60))
        biopsy = v % 3 != 2
        enc = rec.encounter(S - days(1), S + days(2), cls="IMP", text="Oncology ward")
        draw = ch.cbc(S, rng.randint(1, 3), rng.randint(1, 4), rng.randint(0, 2), nrbc=rng.randint(1, 30))
        if biopsy:
            word = "adenocarcinoma of prostatic origin" if kind == "prostate" else "signet-ring cell adenocarcinoma of gastric origin"
            report = O.marrow_biopsy(rec, S, prim, enc, f"Bone marrow trephine: infiltration by metastatic {word}.")
            O.secondary(rec, "marrow", S, prim, evidence=report)
        else:
            O.secondary(rec, "marrow", S, prim, evidence=draw.nrbc_ref)
        ch.follow_up(S + days(20), end, every=(45, 120), blood=0.6)
        ch.finish()
        return _row(rec, ch, f"{kind}_bmc", kind, expected_route="both" if biopsy else "smear",
                    coded_bmc=1, notes=f"marrow carcinomatosis of a {kind} primary on {S} (not breast)")

    build.__name__ = f"{kind}_bmc"
    build.__doc__ = f"Marrow carcinomatosis (C79.52) of a {kind} primary: not breast cancer."
    return build


def other_cancer(rec: Record, v: int) -> RoleRow:
    """Lung or colon cancer, half with bone metastases; some with nRBC and cytopenia."""
    rng = rec.rng
    kind = "lung" if v % 2 == 0 else "colon"
    dx, end, dead = record_span(rng, death_p=0.5, min_span=200)
    ch = new_chart(rec, "M" if rng.random() < 0.55 else "F", dx, end, dead, age=(45, 85))
    rec.encounter(dx, text="Oncology clinic: diagnosis")
    _, prim = O.other_primary(rec, C.LUNG_CA if kind == "lung" else C.COLON_CA, dx)
    ch.cbc(dx)
    route = "none"
    if rng.random() < 0.5 and (end - dx).days > 120:
        M = rand_date(rng, dx, end - days(60))
        rec.encounter(M, text="Staging")
        O.secondary(rec, "bone", M, prim)
        if v % 5 == 0:
            S = rand_date(rng, M, end - days(10))
            rec.encounter(S, text="Oncology clinic")
            ch.cbc(S, 2, rng.randint(0, 2), 0, nrbc=rng.randint(1, 10))
            route = "smear"
    reg = "paclitaxel" if kind == "lung" else "FEC"
    if rng.random() < 0.5 and (end - dx).days > 200:
        ch.chemo(prim, reg, dx + days(30), rng.randint(3, 4),
                 nadir=(rng.randint(0, 2), rng.randint(0, 2), rng.randint(1, 3)))
    ch.follow_up(dx + days(100), end)
    ch.finish()
    return _row(rec, ch, "other_cancer", kind, expected_route=route)


def no_cancer(rec: Record, v: int) -> RoleRow:
    """No cancer: anaemia work-up or routine counts; a few with nRBC and cytopenia."""
    rng = rec.rng
    dx, end, dead = record_span(rng, dx_lo=date(1995, 1, 1), death_p=0.05, min_span=60)
    ch = new_chart(rec, "F" if rng.random() < 0.7 else "M", dx, end, dead, age=(20, 90), cancer=False)
    rec.encounter(dx, text="Outpatient clinic")
    route = "none"
    if v % 2 == 0:
        O.plain_condition(rec, rng.choice((C.ANEMIA_UNSPEC, C.IRON_DEFICIENCY)), dx)
        ch.cbc(dx, rng.randint(1, 2), 0, 0, nrbc=rng.randint(1, 4) if v % 10 == 0 else None)
        route = "smear" if v % 10 == 0 else "none"
    else:
        ch.cbc(dx)
    ch.follow_up(dx, end, every=(200, 500), blood=0.5)
    ch.finish()
    return _row(rec, ch, "no_cancer", "none", expected_route=route)


# --- planted edges of the smear rule ---------------------------------------------------------------------
def _edge_base(rec: Record) -> tuple[Chart, date]:
    rng = rec.rng
    S = rand_date(rng, date(1998, 1, 1), date(2010, 2, 28))
    dx = S - days(rng.randint(500, 8 * 365))
    end = min(DATA_CUTOFF, S + days(rng.randint(60, 600)))
    ch = new_chart(rec, "F", dx, end, rng.random() < 0.3, lab=LAB_A)
    prim = _breast(ch, dx, rng.choice(("IIA", "IIB", "IIIA")))
    _mets(ch, prim, rand_date(rng, dx + days(120), S - days(60)), bone=True, others=False)
    ch.follow_up(dx + days(60), S - days(45))
    rec.encounter(S, text="Oncology clinic")
    return ch, S


def bc_smear_window_outside(rec: Record, v: int) -> RoleRow:
    """nRBC > 0 with normal counts; the cytopenia comes 15 days later: outside +/-14 days."""
    ch, S = _edge_base(rec)
    ch.cbc(S, 0, 0, 0, nrbc=rec.rng.randint(2, 8))
    later = S + days(15)
    rec.encounter(later, text="Oncology clinic")
    ch.cbc(later, 2, 0, 0)
    ch.follow_up(later + days(30), ch.end, every=(60, 120), blood=0.0)
    ch.finish()
    return _row(rec, ch, "bc_smear_window_outside", "breast",
                notes=f"nRBC>0 on {S} with normal counts; anaemia grade 2 on {later} (+15 d, just outside)")


def bc_nrbc_entered_in_error(rec: Record, v: int) -> RoleRow:
    """Grade-1 anaemia and an nRBC result that was entered in error: the rule is not met."""
    ch, S = _edge_base(rec)
    draw = ch.cbc(S, 1, 0, 0, nrbc=6)
    assert draw.nrbc is not None
    draw.nrbc["status"] = "entered-in-error"
    ch.follow_up(S + days(30), ch.end, every=(60, 120), blood=0.0)
    ch.finish()
    return _row(rec, ch, "bc_nrbc_entered_in_error", "breast",
                notes=f"nRBC 6 on {S} is entered-in-error; grade-1 anaemia the same day")


def bc_smear_no_cytopenia(rec: Record, v: int) -> RoleRow:
    """nRBC > 0 with counts exactly at / just above the lab's own LLN: no cytopenia."""
    ch, S = _edge_base(rec)
    rng = rec.rng
    if v % 2 == 0:
        ch.cbc_values(S, hgb=rng.uniform(12.8, 14.0), plt=150, wbc=rng.uniform(5.0, 8.0), nrbc=3)
        note = f"nRBC 3 on {S}; platelets exactly 150 = LLN (grade 0)"
    else:
        ch.cbc_values(S, hgb=rng.uniform(12.8, 14.0), plt=rng.randint(180, 300), wbc=4.2, nrbc=2)
        note = (f"nRBC 2 on {S}; WBC 4.2 with this lab's LLN 4.0 (grade 0; the default LLN 4.5 "
                "would call it grade 1)")
    ch.follow_up(S + days(30), ch.end, every=(60, 120), blood=0.0)
    ch.finish()
    return _row(rec, ch, "bc_smear_no_cytopenia", "breast", notes=note)


BUILDERS: dict[str, Callable[[Record, int], RoleRow]] = {
    "bc_localized": bc_localized,
    "bc_mets_no_marrow": bc_mets_no_marrow,
    "bc_mets_chemo_cytopenia": bc_mets_chemo_cytopenia,
    "bc_screen_tier2": bc_screen_tier2,
    "bc_bmc_unrecognized": bc_bmc_unrecognized,
    "bc_alt_cause_mds": _alt_cause("mds"),
    "bc_alt_cause_hemolysis": _alt_cause("hemolysis"),
    "bc_alt_cause_myelofibrosis": _alt_cause("myelofibrosis"),
    "prostate_bmc": _other_bmc("prostate"),
    "gastric_bmc": _other_bmc("gastric"),
    "other_cancer": other_cancer,
    "no_cancer": no_cancer,
    "bc_smear_window_outside": bc_smear_window_outside,
    "bc_nrbc_entered_in_error": bc_nrbc_entered_in_error,
    "bc_smear_no_cytopenia": bc_smear_no_cytopenia,
}
