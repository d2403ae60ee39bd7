"""The cohort definition's parameters: declared once here, with type, default and the reason.

Every ``$name`` a query in ``queries/bmc/`` binds is one of these (a test checks it), and
``bmc cohort --param name=value`` can set any of them. Defaults reproduce the paper's rule
(Anticancer Res 31:4025-4030: histology, or a leuko-erythroblastic smear with cytopenia of CTC
grade >= 1 in at least one lineage) on data shaped like ``../shared/clinical/CODES.md``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UsageError


@dataclass(frozen=True)
class Param:
    """One parameter: ``kind`` is int, bool, choice or list (comma-separated values)."""

    name: str
    kind: str
    default: Any
    why: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None

    def parse(self, text: str) -> Any:
        """The value of ``--param name=text``; raises :class:`UsageError` naming the problem."""
        text = text.strip()
        if self.kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise UsageError(f"--param {self.name}: expected a whole number, got {text!r}") from None
            if self.minimum is not None and value < self.minimum:
                raise UsageError(f"--param {self.name}: must be >= {self.minimum}, got {value}")
            return value
        if self.kind == "bool":
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise UsageError(f"--param {self.name}: expected true or false, got {text!r}")
        if self.kind == "choice":
            if text not in self.choices:
                raise UsageError(f"--param {self.name}: expected one of "
                                 f"{', '.join(self.choices)}; got {text!r}")
            return text
        if self.kind == "list":
            items = [t.strip() for t in text.split(",") if t.strip()]
            if not items:
                raise UsageError(f"--param {self.name}: expected at least one value; valid: "
                                 f"{', '.join(self.choices)}")
            bad = [t for t in items if self.choices and t not in self.choices]
            if bad:
                raise UsageError(f"--param {self.name}: unknown value(s) {', '.join(bad)}; "
                                 f"valid: {', '.join(self.choices)}")
            return items
        raise AssertionError(self.kind)

    def show(self, value: Any) -> str:
        """The value as it would be written after ``name=``."""
        if isinstance(value, list | tuple):
            return ",".join(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


PARAMETERS: tuple[Param, ...] = (
    Param(
        "smear_window_days", "int", 14, minimum=0,
        why="Cytopenia counts for the smear route when its blood count lies within this many "
            "days before or after the nRBC-positive result. CODES.md §6.3 suggests 'e.g. +/-7 "
            "days'; 14 is chosen because oncology patients are counted every 1-3 weeks (one "
            "chemotherapy cycle) and the paper grades cytopenia 'at BMC diagnosis'. Measured on "
            "the sample: every window from 0 to 10 days loses only the planted +14-day case, "
            "14 keeps it, 21 and 28 also admit the planted +15-day control; the 22 paper "
            "patients do not depend on the window (their counts are drawn with the smear)."),
    Param(
        "smear_index_date", "choice", "nrbc", choices=("nrbc", "both-met"),
        why="The date a smear-route case is met. 'nrbc' (default): the date of the nRBC-positive "
            "result -- the smear is the diagnostic test and the counts within the window are "
            "its context, as the paper dates smear-diagnosed BMC by the smear. 'both-met': the "
            "later of the nRBC result and the cytopenia, the first day both facts were on file."),
    Param(
        "cytopenia_min_grade", "int", 1, minimum=1,
        why="CTCAE grade that counts as cytopenia for the smear route. The paper: 'cytopenia "
            ">= CTC grade 1 in at least one lineage' (CODES.md §5.3: grade 1 = below the LLN)."),
    Param(
        "cytopenia_lineages", "list", ["hgb", "plt", "wbc"], choices=("hgb", "plt", "wbc", "anc"),
        why="Lineages whose cytopenia counts for the smear route. The issue and the paper name "
            "haemoglobin, platelets and leukocytes; neutrophils are graded and reported but are "
            "not part of the published rule."),
    Param(
        "anemia_grade4", "bool", True,
        why="Grade a haemoglobin below 6.5 g/dL as anaemia grade 4: the hgb grade-4 row of "
            "queries/reference/ctcae_v5.csv, taken from CTC v2.0/v3.0 (CODES.md §5.3, "
            "unverified). CTCAE v5.0 has no laboratory anaemia grade 4 (it needs clinical "
            "context), so 'false' grades such a value 3, as v5.0 does. Default true: the paper's "
            "patients (1995-2009) were graded with the CTC of their time, and its Table II gives "
            "patient 14 anaemia grade 4. Used by bmc_lab_grade, so by the cohort's grades at "
            "index, the screen and the outcomes report alike."),
    Param(
        "exclude_alt_causes", "bool", True,
        why="Drop smear-route patients with another cause of a leuko-erythroblastic picture "
            "(CODES.md §7: haemolytic anaemia, MDS, MPN/myelofibrosis). Histology-proven "
            "patients are never dropped: a marrow biopsy showing carcinoma is BMC whatever else "
            "the patient has."),
    Param(
        "alt_cause_valuesets", "list",
        ["alt_cause_hemolytic", "alt_cause_mds", "alt_cause_mpn", "alt_cause_haem_malignancy",
         "alt_cause_marrow_transplant", "alt_cause_marrow_failure"],
        choices=("alt_cause_hemolytic", "alt_cause_mds", "alt_cause_mpn",
                 "alt_cause_haem_malignancy", "alt_cause_marrow_transplant",
                 "alt_cause_marrow_failure", "alt_cause_secondary_myelofibrosis"),
        why="Which value sets (queries/reference/valuesets.csv) are alternative causes. "
            "Haemolysis, MDS and MPN are CODES.md §7's causes of a leuko-erythroblastic picture; "
            "haematological malignancy (leukaemia, lymphoma, myeloma: ICD-10-CM C81-C96), a "
            "marrow transplant and marrow failure (aplastic anaemia, pure red cell aplasia) "
            "suppress or replace the marrow themselves (issue 11: a leukaemia patient after a "
            "marrow transplant topped the screen). Secondary myelofibrosis (D75.81) is left out "
            "by default: CODES.md §7 warns it may be caused by the marrow metastasis itself; "
            "so are pancytopenia (D61.81x) and myelophthisis (D61.82), which BMC causes."),
    Param(
        "coded_condition", "choice", "unless-lab-evidence",
        choices=("proof", "unless-lab-evidence", "never"),
        why="When a coded marrow-metastasis Condition (C79.52 / 94217008) proves BMC on the "
            "histology/cytology route. 'proof': always. 'unless-lab-evidence' (default): unless "
            "the Condition's own evidence cites only blood-count Observations, i.e. it records a "
            "smear-based diagnosis, which must then meet the smear rule (this is how Table II "
            "patient 2 - smear without cytopenia - stays out, as the paper's own rule demands). "
            "'never': only a positive marrow report counts. CODES.md §9.1: 'coded C79.52 alone "
            "is weaker than a report'."),
    Param(
        "result_statuses", "list", ["preliminary", "final", "amended", "corrected", "appended"],
        choices=("registered", "partial", "preliminary", "final", "amended", "corrected",
                 "appended", "cancelled", "entered-in-error", "unknown"),
        why="Observation/DiagnosticReport statuses that are read. A clinician acts on a "
            "preliminary count, but not on a cancelled or entered-in-error one; a preliminary "
            "result that was later finalised or corrected is replaced by the later version (same "
            "id: the loader keeps the latest; another id with the same code and time: the "
            "preliminary one is dropped)."),
    Param(
        "chemo_lookback_days", "int", 21, minimum=0,
        why="Screen tier 2: cytopenia within this many days after a myelosuppressive "
            "chemotherapy administration counts as explained by chemotherapy. 21 days = one "
            "3-weekly cycle (nadir days 7-14, recovery by day 21) for the study's regimens "
            "(CODES.md §8.1)."),
    Param(
        "screen_min_grade", "int", 2, minimum=1,
        why="Screen tier 2: CTCAE grade of 'otherwise unexplained cytopenia' that should prompt "
            "a smear (the issue: grade >= 2; grade 1 is too common in metastatic breast cancer)."),
)

BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}


def defaults() -> dict[str, Any]:
    """Every parameter at its default (lists copied, so callers may change them)."""
    return {p.name: list(p.default) if isinstance(p.default, list) else p.default
            for p in PARAMETERS}


def resolve(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults updated with ``overrides`` (already typed values, e.g. from Python callers).

    Unknown names are a :class:`UsageError` that lists the valid ones.
    """
    values = defaults()
    for name, value in (overrides or {}).items():
        if name not in BY_NAME:
            raise UsageError(unknown_message(name))
        p = BY_NAME[name]
        values[name] = p.parse(p.show(value)) if not isinstance(value, str) else p.parse(value)
    return values


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """``["name=value", ...]`` (the CLI's repeated ``--param``) -> resolved parameter values."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--param {pair!r}: expected name=value")
        name = name.strip()
        if name not in BY_NAME:
            raise UsageError(unknown_message(name))
        overrides[name] = value
    return resolve(overrides)


def unknown_message(name: str) -> str:
    return f"unknown parameter {name!r}; valid parameters: {', '.join(BY_NAME)}"


def describe() -> list[dict[str, str]]:
    """Name, type, default and reason of every parameter (for --help and the docs)."""
    return [{"name": p.name, "type": p.kind, "default": p.show(p.default), "why": p.why}
            for p in PARAMETERS]
