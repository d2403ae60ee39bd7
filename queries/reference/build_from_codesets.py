"""Rebuild ``valuesets.csv``, ``lab_codes.csv`` and ``drug_names.csv`` from the sourced code
lists in ``../shared/clinical/codesets`` and the hand-kept rows in ``sources/``.

The package reads only the files this writes (never ``../shared`` at run time); run this
again when the code lists or the decisions change, and commit what it writes::

    python queries/reference/build_from_codesets.py [--codesets DIR]

* ``sources/curated_valuesets.csv`` / ``curated_lab_codes.csv``: rows kept by hand (the
  CODES.md rows the definition started from, and sourced additions the code lists lack:
  haematological malignancy, marrow transplant, marrow failure, platinum / CDK4/6 drugs,
  chemotherapy procedures, sex codings of ``appliesTo``).
* ``sources/decisions.csv``: what to do with a code-list row -- ``include``, ``exclude``,
  ``prefix`` (match every code below it) or ``move:<value set>``. Every ``FLAG:`` row of the
  code lists needs a decision: the build stops and names the row otherwise, so nothing
  flagged for review slips in unreviewed.
* A row present in both keeps the hand-kept match and display and both sources; an ``exact``
  row that a ``prefix`` row of the same value set and system already matches is dropped (it
  would only add a second display for the same coding).
* ``drug_names.csv``: the ingredient names of the ``chemotherapy`` RxNorm ingredients, for
  the documented fallback that finds clinical-drug codes (SCD/SBD) by the ingredient's name in
  the coding display or text when no RxNorm release is at hand to roll them up.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
DEFAULT_CODESETS = HERE.parents[2] / "shared" / "clinical" / "codesets"

VALUESET_OF = {
    "breast_cancer.csv": "breast_cancer", "marrow_metastasis.csv": "marrow_metastasis",
    "bone_metastasis.csv": "bone_metastasis", "liver_metastasis.csv": "liver_metastasis",
    "mds.csv": "alt_cause_mds", "myelofibrosis_mpn.csv": "alt_cause_mpn",
    "haemolytic_anaemia.csv": "alt_cause_hemolytic", "chemotherapy.csv": "chemotherapy",
}
ANALYTE_OF = {
    "labs_haemoglobin.csv": "hgb", "labs_platelets.csv": "plt", "labs_leukocytes.csv": "wbc",
    "labs_neutrophils_absolute.csv": "anc", "labs_nrbc.csv": "nrbc_ratio",
}
VS_COLUMNS = ["valueset", "system", "code", "display", "match", "source", "confidence"]
LAB_COLUMNS = ["analyte", "system", "code", "display", "source", "confidence"]
DOTTED = {"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10",
          "http://hl7.org/fhir/sid/icd-9-cm", "http://terminology.hl7.org/CodeSystem/icd-o-3"}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


class BuildError(Exception):
    """A code-list row the build cannot place (no decision for a FLAG: row, a bad action)."""


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def key(system: str, code: str) -> str:
    """Codes compared as the package compares them (cohort.reference.code_key)."""
    return code.replace(".", "").upper() if system in DOTTED else code


def sourced(file: str, row: dict) -> str:
    return f"codesets/{file}: {row['source']}"


def codeset_rows(folder: Path, decisions: dict) -> tuple[list[dict], list[dict]]:
    """(value-set rows, lab-code rows) from the code lists, after the decisions."""
    vs_rows, lab_rows, used = [], [], set()
    for file in sorted({*VALUESET_OF, *ANALYTE_OF}):
        for n, row in enumerate(read_csv(folder / file), start=2):
            d = decisions.get((file, row["system"], row["code"]))
            flagged = "FLAG:" in row["how_obtained"]
            if flagged and d is None:
                raise BuildError(f"{folder / file} line {n}: FLAG: row {row['system']}|{row['code']} "
                                 f"has no decision in {SOURCES / 'decisions.csv'}")
            action = d["action"] if d else "include"
            if d:
                used.add((file, row["system"], row["code"]))
            if action == "exclude":
                continue
            if action not in ("include", "prefix") and not action.startswith("move:"):
                raise BuildError(f"{SOURCES / 'decisions.csv'}: unknown action {action!r}")
            confidence = (d["confidence"] if d else "") or ("◐" if flagged else "✅")
            note = f" [decision: {d['reason']}]" if d else ""
            if file in ANALYTE_OF:
                lab_rows.append({"analyte": ANALYTE_OF[file], "system": row["system"],
                                 "code": row["code"], "display": row["display"],
                                 "source": sourced(file, row) + note, "confidence": confidence})
                continue
            vs = action[5:] if action.startswith("move:") else VALUESET_OF[file]
            vs_rows.append({"valueset": vs, "system": row["system"], "code": row["code"],
                            "display": row["display"],
                            "match": "prefix" if action == "prefix" else "exact",
                            "source": sourced(file, row) + note, "confidence": confidence})
    unused = set(decisions) - used
    if unused:
        raise BuildError("decisions for rows no code list has: "
                         + ", ".join("|".join(k) for k in sorted(unused)))
    return vs_rows, lab_rows


def merge(curated: list[dict], generated: list[dict], key_cols: tuple[str, ...]) -> list[dict]:
    """Hand-kept rows first; a generated row with the same key adds its source to it."""
    def k(r):
        return tuple(key(r["system"], r[c]) if c == "code" else r[c] for c in key_cols)
    out = [dict(r) for r in curated]
    at = {k(r): r for r in out}
    for r in generated:
        if k(r) in at:
            if r["source"] not in at[k(r)]["source"]:
                at[k(r)]["source"] += " | " + r["source"]
        else:
            at[k(r)] = dict(r)
            out.append(at[k(r)])
    return out


def drop_subsumed(rows: list[dict]) -> list[dict]:
    """Exact rows that a prefix row of the same value set and system matches anyway."""
    prefixes = {(r["valueset"], r["system"], key(r["system"], r["code"]))
                for r in rows if r["match"] == "prefix"}

    def covered(r):
        k = key(r["system"], r["code"])
        return r["match"] == "exact" and any(
            vs == r["valueset"] and s == r["system"] and k.startswith(p) and k != p
            for vs, s, p in prefixes)
    return [r for r in rows if not covered(r)]


def drug_names(valuesets: list[dict], curated: list[dict]) -> list[dict]:
    """One row per chemotherapy ingredient name (RxNorm ingredient rows) plus curated names."""
    names = {r["name"]: r for r in curated}
    for r in valuesets:
        name = r["display"].strip().lower()
        if (r["valueset"] == "chemotherapy" and r["system"] == RXNORM and name.isalpha()
                and name not in names):
            names[name] = {"valueset": "chemotherapy", "name": name,
                           "source": f"ingredient of RxNorm {r['code']} ({r['source'].split(' | ')[0]})"}
    return sorted(names.values(), key=lambda r: (r["valueset"], r["name"]))


def write(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows({c: r[c] for c in columns} for r in rows)


def build(codesets: Path, out: Path = HERE) -> dict[str, int]:
    """Write the three files into ``out``; returns rows per file."""
    decisions = {(d["file"], d["system"], d["code"]): d
                 for d in read_csv(SOURCES / "decisions.csv")}
    vs_gen, lab_gen = codeset_rows(codesets, decisions)
    valuesets = drop_subsumed(merge(read_csv(SOURCES / "curated_valuesets.csv"), vs_gen,
                                    ("valueset", "system", "code")))
    labs = merge(read_csv(SOURCES / "curated_lab_codes.csv"), lab_gen, ("system", "code"))
    names = drug_names(valuesets, read_csv(SOURCES / "curated_drug_names.csv"))
    write(out / "valuesets.csv", VS_COLUMNS, valuesets)
    write(out / "lab_codes.csv", LAB_COLUMNS, labs)
    write(out / "drug_names.csv", ["valueset", "name", "source"], names)
    return {"valuesets.csv": len(valuesets), "lab_codes.csv": len(labs),
            "drug_names.csv": len(names)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codesets", type=Path, default=DEFAULT_CODESETS)
    args = ap.parse_args(argv)
    try:
        counts = build(args.codesets)
    except (BuildError, OSError) as e:
        print(f"build_from_codesets: {e}", file=sys.stderr)
        return 1
    for f, n in counts.items():
        print(f"{f}: {n} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
