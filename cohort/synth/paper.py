"""The 22 patients of the paper, read from ``../shared/paper/timeline.csv`` at generation time.

``timeline.csv`` (see ``../shared/paper/fit_report.md``, "Column dictionary") already merges Table I,
Table II and the fitted synthetic dates, treatment and response course, so it is the only file the
generator needs. It is read, never copied into the repository. Set ``BMC_PAPER_DIR`` to point
elsewhere (e.g. from an installed wheel).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

#: Data cut-off of the study (timeline.csv column ``data_cutoff_date``; fit_report.md "Conventions").
DATA_CUTOFF = date(2010, 6, 30)


class PaperDataMissing(FileNotFoundError):
    """``../shared/paper/timeline.csv`` cannot be found."""


@dataclass(frozen=True)
class PaperPatient:
    """One row of timeline.csv, typed. Grades are CTC grades; ``None`` means NA / not applicable."""

    number: int
    age_at_primary_dx: int
    sex: str  # "M" | "F"
    histology: str | None  # "ductal" | "lobular" | None (Table I NA)
    grade: str | None  # "2", "3", "2-3" or None
    er: str | None  # "pos" | "neg" | None
    pr: str | None
    her2: str | None
    stage: str  # I, IIA, IIB, IIIA, IIIB, IV
    prior_regimens: int | None  # Table II; None = '-' (patient 2)
    bmc_method: str  # "histology" | "smear"
    normoblasts: int  # per 100 WBC at BMC (Table II)
    leukopenia_grade: int
    anemia_grade: int
    thrombopenia_grade: int
    sites: tuple[str, ...]  # metastatic sites at BMC, always starting with bone
    primary_dx_date: date
    metastasis_date: date
    bmc_date: date
    death_date: date | None
    last_followup_date: date | None
    end_date: date
    chemo_regimen: str | None
    chemo_start_date: date | None
    best_response: str  # PR, SD, PD, NE, "not treated"
    anemia_grade_post: int | None
    thrombopenia_grade_after_cycle1: int | None
    thrombopenia_grade_post: int | None
    leukopenia_grade_nadir: int | None
    leukopenia_grade_post: int | None
    febrile_neutropenia: bool
    bleeding_grade: int
    heme_toxicity_grade34: bool

    @property
    def treated(self) -> bool:
        return self.chemo_start_date is not None


def paper_dir() -> Path:
    """``$BMC_PAPER_DIR`` or ``<repo root>/../shared/paper``."""
    env = os.environ.get("BMC_PAPER_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "paper"


def _d(s: str) -> date | None:
    return date.fromisoformat(s) if s else None


def _i(s: str) -> int | None:
    return int(s) if s not in ("", "NA") else None


def _s(s: str) -> str | None:
    return s if s not in ("", "NA") else None


def load_paper_patients(directory: Path | None = None) -> list[PaperPatient]:
    """Read the 22 rows of ``timeline.csv`` in patient order."""
    path = (directory or paper_dir()) / "timeline.csv"
    if not path.is_file():
        raise PaperDataMissing(
            f"{path} not found: the generator reads the paper's timeline at generation time; "
            "check out ../shared next to the repository or set BMC_PAPER_DIR"
        )
    out: list[PaperPatient] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            out.append(
                PaperPatient(
                    number=int(r["patient"]),
                    age_at_primary_dx=int(r["age_at_primary_dx"]),
                    sex=r["sex"],
                    histology=_s(r["histology"]),
                    grade=_s(r["grade"]),
                    er=_s(r["er"]),
                    pr=_s(r["pr"]),
                    her2=_s(r["her2"]),
                    stage=r["stage"],
                    prior_regimens=_i(r["prior_regimens"]),
                    bmc_method=r["bmc_diagnosis_method"],
                    normoblasts=int(r["normoblasts_per_100wbc"]),
                    leukopenia_grade=int(r["leukopenia_grade_bmc"]),
                    anemia_grade=int(r["anemia_grade_bmc"]),
                    thrombopenia_grade=int(r["thrombopenia_grade_bmc"]),
                    sites=tuple(r["metastatic_sites"].split(";")),
                    primary_dx_date=date.fromisoformat(r["primary_dx_date"]),
                    metastasis_date=date.fromisoformat(r["metastasis_date"]),
                    bmc_date=date.fromisoformat(r["bmc_date"]),
                    death_date=_d(r["death_date"]),
                    last_followup_date=_d(r["last_followup_date"]),
                    end_date=date.fromisoformat(r["end_date"]),
                    chemo_regimen=_s(r["chemo_regimen"]),
                    chemo_start_date=_d(r["chemo_start_date"]),
                    best_response=r["best_response"],
                    anemia_grade_post=_i(r["anemia_grade_post"]),
                    thrombopenia_grade_after_cycle1=_i(r["thrombopenia_grade_after_cycle1"]),
                    thrombopenia_grade_post=_i(r["thrombopenia_grade_post"]),
                    leukopenia_grade_nadir=_i(r["leukopenia_grade_nadir"]),
                    leukopenia_grade_post=_i(r["leukopenia_grade_post"]),
                    febrile_neutropenia=r["febrile_neutropenia"] == "True",
                    bleeding_grade=int(r["bleeding_grade"] or 0),
                    heme_toxicity_grade34=r["heme_toxicity_grade34"] == "True",
                )
            )
    if len(out) != 22:
        raise ValueError(f"{path}: expected 22 patients, found {len(out)}")
    return out
