"""`bmc codes`: what is coded in the data, and what the cohort definition does not see.

The first thing to run on a new export. Every (source, system, code, display) of the
Condition, Observation, Procedure, DiagnosticReport and medication tables is listed with its
counts (and units, for observations), and marked:

* ``mapped`` -- the definition reads it: a value set's code (``queries/reference/
  valuesets.csv``, or the user's ``--codes``) or a lab analyte's (``lab_codes.csv``);
* ``candidate`` -- it is not mapped but looks like a concept a rule needs: its display or text
  has the concept's words (``queries/codes/concept_words.csv``), or it is a local code (a
  system no reference file uses) without display or text whose unit is one of an analyte's
  (``units.csv``);
* ``unmapped`` -- neither.

Two more columns catch codes that are read wrongly: ``unconvertible_units`` (units of a mapped
lab code that ``units.csv`` cannot convert, so its values are never graded) and
``display_conflict`` (the display in the data shares no telling word with the display the
reference files give that code: RxNorm 3002 is cyclophosphamide, a file that labels it
"Alendronate (Fosamax)" has a wrong code or a wrong label). Word matching folds British
spelling (haemoglobin = hemoglobin, leucocyte = leukocyte) and ignores the words every
concept of a kind shares (``queries/codes/generic_words.csv``): a candidate is a suggestion
for a person to review, never a mapping.

The SQL is ``queries/codes/inventory.sql``; this module decides candidates and conflicts from
its rows (pure functions) and reads the database through a read-only connection (reference
tables as TEMP tables, dropped afterwards).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from .errors import QueryError, ReferenceDataError
from .paths import queries_dir
from .reference import REFERENCE_FILES, load_reference
from .runner import stages
from .usercodes import UserCodes

#: Output columns of `bmc codes` (a contract, documented in README.md).
CODES_COLUMNS = ("source", "system", "code", "display", "text", "n_records", "n_patients",
                 "units", "status", "mapped_to", "candidate_for", "candidate_reason",
                 "unconvertible_units", "display_conflict")
STATUS_ORDER = {"candidate": 0, "mapped": 1, "unmapped": 2}
#: The tables the inventory reads (medication_request came after the first databases).
INVENTORY_TABLES = ("condition", "observation", "procedure", "diagnostic_report",
                    "medication_administration", "medication_request", "medication")
_CODED = "codes_coded"


@dataclass(frozen=True)
class WordRule:
    """One row of ``concept_words.csv``: a coding of one of ``sources`` (the tables the
    definition reads the concept from) whose folded display or text has every word of
    ``words`` and none of ``unless`` looks like ``concept``. A word ending in ``*`` matches
    the start of a word, any other word a whole word."""

    concept: str
    add_to: str
    sources: tuple[str, ...]
    words: tuple[str, ...]
    unless: tuple[str, ...]
    decides: str
    line: int


def fold(text: str | None) -> list[str]:
    """Words of a display or text as compared: lower-case, British spelling folded
    (ae -> e, leuc -> leuk), split at anything that is not a letter or digit."""
    if not text:
        return []
    low = text.lower().replace("ae", "e").replace("leuc", "leuk")
    return [w for w in re.split(r"[^a-z0-9]+", low) if w]


def _has(word: str, words: list[str]) -> bool:
    if word.endswith("*"):
        return any(w.startswith(word[:-1]) for w in words)
    return word in words


def matches(rule: WordRule, words: list[str]) -> bool:
    """True when ``words`` (folded) hold every word of the rule and none of its exceptions."""
    return all(_has(w, words) for w in rule.words) and not any(_has(w, words) for w in rule.unless)


def read_concept_words(path: Path | None = None) -> list[WordRule]:
    """The rules of ``queries/codes/concept_words.csv``, checked (header, fields, words)."""
    path = path or queries_dir() / "codes" / "concept_words.csv"
    header = ["concept", "add_to", "sources", "words", "unless", "decides", "source"]
    rules = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != header:
            raise ReferenceDataError(f"{path}: header must be {','.join(header)}")
        for n, row in enumerate(reader, start=2):
            if None in row or any(row[c] is None for c in header):
                raise ReferenceDataError(f"{path} line {n}: expected {len(header)} fields")
            words = tuple(" ".join(fold(w)) + ("*" if w.endswith("*") else "")
                          for w in row["words"].split())
            if not row["concept"] or not words or not row["sources"].split():
                raise ReferenceDataError(f"{path} line {n}: concept, sources and words must "
                                         f"not be empty")
            unless = tuple(" ".join(fold(w)) + ("*" if w.endswith("*") else "")
                           for w in row["unless"].split())
            rules.append(WordRule(row["concept"], row["add_to"], tuple(row["sources"].split()),
                                  words, unless, row["decides"], n))
    return rules


def read_generic_words(path: Path | None = None) -> frozenset[str]:
    """Words that never tell two concepts apart (``queries/codes/generic_words.csv``)."""
    path = path or queries_dir() / "codes" / "generic_words.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["word", "why"]:
            raise ReferenceDataError(f"{path}: header must be word,why")
        return frozenset(w for row in reader for w in fold(row["word"]))


def read_synonyms(path: Path | None = None) -> dict[str, list[str]]:
    """Abbreviations and other names -> the words they stand for
    (``queries/codes/synonyms.csv``: 'hgb' -> hemoglobin, 'wbc' -> leukocytes)."""
    path = path or queries_dir() / "codes" / "synonyms.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["word", "means", "source"]:
            raise ReferenceDataError(f"{path}: header must be word,means,source")
        return {" ".join(fold(row["word"])): fold(row["means"]) for row in reader}


@dataclass(frozen=True)
class Vocabulary:
    """What display comparison needs: words that never tell concepts apart, and synonyms."""

    generic: frozenset[str]
    synonyms: dict[str, list[str]]

    def telling(self, text: str | None) -> set[str]:
        """The words of a display that name a concept, as 5-letter stems (so plural and
        inflected forms agree: platelet/platelets, leukocyte/leukocytes): synonyms
        expanded, 4 letters or more, not a number, not generic."""
        words = [m for w in fold(text) for m in self.synonyms.get(w, [w])]
        return {w[:5] for w in words if len(w) >= 4 and not w.isdigit() and w not in self.generic}


def read_vocabulary() -> Vocabulary:
    return Vocabulary(read_generic_words(), read_synonyms())


def display_conflict(display: str | None, sourced: list[str], vocab: Vocabulary) -> str | None:
    """The sourced display(s) when the data's display shares no telling word with any of
    them (None when it does, or when there is nothing to compare)."""
    mine = vocab.telling(display)
    theirs = [s for s in sourced if vocab.telling(s)]
    if not mine or not theirs:
        return None
    if any(mine & vocab.telling(s) for s in theirs):
        return None
    return "; ".join(theirs)


def _listed(values) -> list[str]:
    return [] if values is None else [str(v) for v in values]


def classify(rows: pd.DataFrame, rules: list[WordRule], vocab: Vocabulary) -> pd.DataFrame:
    """The inventory table from the rows of ``inventory.sql``: status, mapped_to, candidates
    (by words, or by unit for local codes without words), unconvertible units and display
    conflicts; one
    row per coding, candidates first, then by source and frequency."""
    out = []
    for r in rows.itertuples(index=False):
        mapped = [*(f"valueset:{v}" for v in _listed(r.mapped_valuesets)),
                  *(f"lab:{a}" for a in _listed(r.mapped_analytes))]
        concepts: dict[str, str] = {}
        if not mapped:
            words = fold(r.display) + fold(r.text)
            for rule in rules:
                if r.source not in rule.sources:  # a concept counts where the rules read it
                    continue
                if rule.concept not in concepts and matches(rule, words):
                    concepts[rule.concept] = (f"display/text has {' + '.join(rule.words)} "
                                              f"(add to {rule.add_to})")
            # the unit is the only evidence when nothing names the code (a local code
            # without display or text); words, when there are any, decide alone
            if not r.known_system and r.source == "observation" and not words:
                for analyte in _listed(r.unit_fits):
                    concepts.setdefault(analyte, f"local code with a unit of {analyte} "
                                                 f"(add to lab_codes.csv {analyte})")
        status = "mapped" if mapped else "candidate" if concepts else "unmapped"
        conflict = display_conflict(r.display, _listed(r.sourced_displays), vocab) \
            if mapped else None
        out.append({
            "source": r.source, "system": r.system, "code": r.code, "display": r.display,
            "text": r.text, "n_records": int(r.n_records), "n_patients": int(r.n_patients),
            "units": r.units, "status": status, "mapped_to": ", ".join(mapped) or None,
            "candidate_for": ", ".join(concepts) or None,
            "candidate_reason": "; ".join(concepts.values()) or None,
            "unconvertible_units": ", ".join(_listed(r.unconvertible_units)) or None,
            "display_conflict": f"sourced display: {conflict}" if conflict else None,
        })
    table = pd.DataFrame(out, columns=list(CODES_COLUMNS))
    if table.empty:
        return table
    order = table["status"].map(STATUS_ORDER)
    table = table.assign(_o=order).sort_values(
        ["_o", "source", "n_records", "system", "code"], ascending=[True, True, False, True, True],
        na_position="last", kind="stable").drop(columns="_o")
    return table.reset_index(drop=True)


def for_reading(table: pd.DataFrame) -> pd.DataFrame:
    """The inventory narrowed for a terminal (``--format table``): the concept it is mapped to
    or may be, and one note for what is wrong; csv and json keep every column."""
    notes = table["unconvertible_units"].map(lambda v: f"units not converted: {v}",
                                             na_action="ignore")
    notes = notes.fillna(table["display_conflict"])
    return pd.DataFrame({
        "source": table["source"], "system": table["system"], "code": table["code"],
        "display": table["display"].fillna(table["text"]), "n_records": table["n_records"],
        "units": table["units"], "status": table["status"],
        "concept": table["mapped_to"].fillna(table["candidate_for"]), "note": notes})


@dataclass
class CodeInventory:
    """The inventory table and what a user should hear about it."""

    table: pd.DataFrame
    rules: list[WordRule]

    @property
    def candidates(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "candidate"]

    def candidate_counts(self) -> dict[str, int]:
        """Unmapped codings per concept they may be (a coding may count for two)."""
        counts: dict[str, int] = {}
        for value in self.candidates["candidate_for"]:
            for concept in value.split(", "):
                counts[concept] = counts.get(concept, 0) + 1
        return counts

    def rule_warnings(self) -> list[str]:
        """One warning per concept that decides a cohort rule and has unmapped candidates."""
        decides = {r.concept: r.decides for r in self.rules if r.decides}
        return [f"warning: {n} unmapped code(s) in the data look like {concept}, which "
                f"decides {decides[concept]}; they are not read: see `bmc codes`"
                for concept, n in sorted(self.candidate_counts().items()) if concept in decides]

    def hint(self, db: str | Path) -> str | None:
        """The one line that ends a load summary when there are unmapped candidates."""
        counts = self.candidate_counts()
        if not counts:
            return None
        return (f"hint: {len(self.candidates)} unmapped code(s) look like "
                f"{', '.join(sorted(counts))}: run `bmc codes --db {db}` to review them")


def _missing_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables")
            .fetchall()}
    return [t for t in INVENTORY_TABLES if t not in have]


def inventory_rows(con: duckdb.DuckDBPyConnection, codes: UserCodes | None = None, *,
                   built: bool = False) -> pd.DataFrame:
    """The rows of ``inventory.sql`` on a loaded database (read-only is enough): the reference
    tables (with the user's rows) and the definition's coded rows are TEMP tables, dropped
    afterwards, so the database and later cohort runs on this connection see nothing of them.
    With ``built``, the coded rows are the ``bmc_coded`` table the cohort just built with the
    same codes (not computed again)."""
    from .errors import DatabaseError

    missing = _missing_tables(con)
    if missing:
        raise DatabaseError(f"the database has no {', '.join(missing)} table; load an export "
                            f"with `bmc load`, or `bmc rebuild` a database from an older version")
    coded = next(s for s in stages("cohort") if s.table == "bmc_coded")
    sql = (queries_dir() / "codes" / "inventory.sql").read_text(encoding="utf-8")
    temps = [spec.table for spec in REFERENCE_FILES] + [_CODED]
    try:
        load_reference(con, extra=codes.rows if codes else None, temp=True)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_CODED} AS\n"
                    + ("SELECT system, code, valueset FROM main.bmc_coded" if built else coded.sql))
        return con.execute(sql).df()
    except duckdb.Error as e:
        raise QueryError(f"queries/codes/inventory.sql: {str(e).splitlines()[0]}") from None
    finally:
        for t in temps:
            con.execute(f"DROP TABLE IF EXISTS temp.main.{t}")


def code_inventory(con: duckdb.DuckDBPyConnection, codes: UserCodes | None = None, *,
                   built: bool = False) -> CodeInventory:
    """`bmc codes`: every coding in the database, mapped, candidate or unmapped (``built``:
    see :func:`inventory_rows`)."""
    rules = read_concept_words()
    return CodeInventory(classify(inventory_rows(con, codes, built=built), rules,
                                  read_vocabulary()), rules)
