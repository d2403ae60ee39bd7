"""A small helper that writes the routine parts of an institution patient's chart.

Keeps the role builders in :mod:`.institution` short: visits with a blood count, chemotherapy
courses with their nadir counts, follow-up until the last contact or death.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from . import oncology as O
from .labs import LAB_A, LAB_B, LAB_C, Draw, Lab, cbc, cbc_graded
from .paper import DATA_CUTOFF
from .record import Record, Ref, days
from .treatment import REGIMENS, administer, plan_cycles

START = date(1990, 1, 1)


def rand_date(rng, lo: date, hi: date) -> date:
    return lo + days(rng.randint(0, max(0, (hi - lo).days)))


def pick_lab(rng) -> Lab:
    """65% central lab (g/dL, 10*3/uL), 25% outpatient lab (g/L, 10*9/L), 10% no ranges."""
    x = rng.random()
    return LAB_A if x < 0.65 else LAB_B if x < 0.90 else LAB_C


@dataclass
class Chart:
    rec: Record
    sex: str
    lab: Lab
    end: date  # last contact (alive) or death
    dead: bool
    admin_days: list[date] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rng(self):
        return self.rec.rng

    def minute(self) -> int:
        return 7 * 60 + self.rng.randint(0, 150)

    def cbc(self, d: date, a: int = 0, p: int = 0, w: int = 0, *, nrbc: int | None = None,
            anc: bool = False, minute: int | None = None, lab: Lab | None = None) -> Draw:
        return cbc_graded(self.rec, d, minute if minute is not None else self.minute(),
                          lab or self.lab, self.sex, a, p, w, nrbc=nrbc, with_anc=anc)

    def cbc_values(self, d: date, hgb: float, plt: float, wbc: float, *, nrbc: int | None = None,
                   minute: int | None = None, lab: Lab | None = None) -> Draw:
        return cbc(self.rec, d, minute if minute is not None else self.minute(), lab or self.lab,
                   self.sex, hgb=hgb, plt=plt, wbc=wbc, nrbc=nrbc)

    def routine_grades(self) -> tuple[int, int, int]:
        """Grades of a routine count: normal, sometimes grade-1 anaemia."""
        return (1 if self.rng.random() < 0.2 else 0, 0, 0)

    def visit(self, d: date, text: str = "Oncology follow-up", *, blood: bool = True) -> Ref:
        enc = self.rec.encounter(d, text=text, minute=self.minute())
        if blood:
            self.cbc(d, *self.routine_grades())
        return enc

    def follow_up(self, start: date, stop: date, every: tuple[int, int] = (365, 730),
                  blood: float = 0.5) -> None:
        d = start + days(self.rng.randint(*every))
        while d < stop and d < self.end:
            self.visit(d, blood=self.rng.random() < blood)
            d = d + days(self.rng.randint(*every))

    def chemo(self, prim: Ref, regimen: str, start: date, n: int, *, bsa: float = 1.75,
              nadir: tuple[int, int, int] | None = None, nadir_day: int = 10,
              nadir_cycles: tuple[int, ...] = (1,), nrbc_zero: bool = False) -> list[date]:
        """A course with a count before cycle 1 (and after each nadir); ``nadir`` grades on day ``nadir_day``
        after the cycle's last administration (within 3 weeks: explained by treatment)."""
        reg = REGIMENS[regimen]
        given: list[date] = []
        for k, cyc in enumerate(plan_cycles(start, reg, n), start=1):
            if cyc.start >= self.end - days(25):
                break
            if k == 1 or (nadir is not None and k - 1 in nadir_cycles):
                # pre-cycle count (after a documented nadir: the recovery count)
                self.cbc(cyc.start, *self.routine_grades(), minute=7 * 60 + self.rng.randint(0, 30))
            got = administer(self.rec, reg, cyc, bsa, prim)
            given += got
            if nadir is not None and k in nadir_cycles and got[-1] + days(nadir_day) < self.end:
                self.cbc(got[-1] + days(nadir_day), *nadir, anc=True,
                         nrbc=0 if nrbc_zero else None)
        self.admin_days += given
        return given

    def finish(self) -> None:
        """Last contact: an encounter on ``end`` (alive) or a terminal admission ending on it."""
        if self.dead:
            self.rec.encounter(self.end - days(self.rng.randint(2, 8)), self.end, cls="IMP",
                               text="Oncology ward", expired=True)
        else:
            self.visit(self.end)


def record_span(rng, *, dx_lo: date = START, dx_hi: date = date(2009, 6, 30),
                death_p: float = 0.1, min_span: int = 120) -> tuple[date, date, bool]:
    """A diagnosis date, the end of the record (death or last contact) and whether it is death."""
    dx = rand_date(rng, dx_lo, dx_hi)
    dead = rng.random() < death_p
    end = rand_date(rng, min(dx + days(min_span), DATA_CUTOFF), DATA_CUTOFF)
    if not dead and rng.random() < 0.35:
        end = DATA_CUTOFF  # still followed at the cut-off
    return dx, end, dead


def new_chart(rec: Record, sex: str, dx: date, end: date, dead: bool, *,
              age: tuple[int, int] = (35, 82), lab: Lab | None = None,
              cancer: bool = True) -> Chart:
    """Write the Patient (age drawn at ``dx``) and return the chart helper."""
    rng = rec.rng
    birth = O.birth_date_for_age(rng, dx, rng.randint(*age))
    O.patient(rec, sex, birth, end if dead else None, cancer=cancer)
    return Chart(rec, sex, lab or pick_lab(rng), end, dead)
