"""Load speed and memory: ``bmc load`` against bare DuckDB on the same NDJSON, same run.

Writes a synthetic Bulk export (N patients; realistic ~1.2 KB lab Observations, plus Patients
and Conditions), then times, each in a fresh subprocess with a fresh database file:

* baseline: bare DuckDB ``read_json`` (newline-delimited, explicit typed columns -- the same
  typed structure each Observation view needs) flattened by the views' own SQL into the same
  tables (observation, observation_reference_range) in a DuckDB file; no provenance, no
  versions, no reference resolution, no error handling;
* ``etl.load.load`` with default options over the whole export (all types, provenance,
  versions, references);
* optionally ``--validate``.

Prints MB/s, resources/s, peak RSS (VmHWM) and the ratio ours/baseline on the Observation
bytes. Targets (issue 2): default load within 1.5x of the baseline, peak memory under ~512 MB.

    python bench/load_bench.py --patients 2000 [--validate] [--keep]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]

LABS = [  # LOINC, display, unit, low, high, mean, sd  (adult reference ranges, CODES.md §4.3)
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 15.5, 12.5, 2.0),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 230, 80),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 11.0, 7.0, 2.5),
    ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*3/uL", 1.5, 7.5, 4.0, 1.5),
    ("58413-6", "Nucleated erythrocytes/100 leukocytes [Ratio] in Blood by Automated count",
     "/100{WBCs}", 0, 0, 0.2, 0.6),
]


def write_export(out: Path, n_patients: int, seed: int = 1) -> dict[str, int]:
    """Synthetic Bulk NDJSON: one file per type; returns bytes per type."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        files = {t: stack.enter_context(open(out / f"{t}.000.ndjson", "wb"))
                 for t in ("Patient", "Condition", "Observation")}
        for p in range(n_patients):
            pid = f"{p:08x}-5a1e-4c2b-9d3e-{rng.getrandbits(48):012x}"
            files["Patient"].write(orjson.dumps({
                "resourceType": "Patient", "id": pid, "meta": {"versionId": "1",
                "lastUpdated": "2024-01-01T00:00:00Z"}, "gender": rng.choice(["female", "male"]),
                "birthDate": f"{rng.randint(1930, 1990)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "identifier": [{"system": "urn:oid:1.2.3.4", "value": f"MRN{p:09d}"}]}) + b"\n")
            files["Condition"].write(orjson.dumps({
                "resourceType": "Condition", "id": f"c-{pid}", "subject": {"reference": f"Patient/{pid}"},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C50.912"},
                                    {"system": "http://snomed.info/sct", "code": "254837009"}]},
                "onsetDateTime": f"{rng.randint(1995, 2009)}-{rng.randint(1, 12):02d}"}) + b"\n")
            for k in range(40):
                code, display, unit, lo, hi, mean, sd = LABS[k % len(LABS)]
                day = f"20{rng.randint(0, 9):02d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                files["Observation"].write(orjson.dumps({
                    "resourceType": "Observation", "id": f"o-{p}-{k}",
                    "meta": {"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
                    "status": "final",
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory", "display": "Laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
                    "subject": {"reference": f"Patient/{pid}"},
                    "encounter": {"reference": f"Encounter/e-{p}-{k // 5}"},
                    "effectiveDateTime": f"{day}T08:{rng.randint(10, 59)}:00+01:00",
                    "issued": f"{day}T11:00:00.000+01:00",
                    "valueQuantity": {"value": round(max(0.0, rng.gauss(mean, sd)), 1), "unit": unit,
                                      "system": "http://unitsofmeasure.org", "code": unit},
                    "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}]}],
                    "referenceRange": [{"low": {"value": lo, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                                        "high": {"value": hi, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/referencerange-meaning", "code": "normal"}]}}],
                }) + b"\n")
    return {t: (out / f"{t}.000.ndjson").stat().st_size for t in files}


BASELINE = r"""
import json, sys, time, duckdb
from etl.declared import compiled_views
from etl.viewdef.macros import install_macros
from etl.ingest import structure_type_sql
src, db = sys.argv[1], sys.argv[2]
views = [v for v in compiled_views() if v.resource == "Observation"]
con = duckdb.connect(db)
con.execute("SET memory_limit = '512MB'")
con.execute("SET enable_progress_bar = false")
install_macros(con)
t = time.perf_counter()
n = 0
for view in views:  # observation and observation_reference_range: the same output as ours
    typ = structure_type_sql(view.structure)
    source = (f"(SELECT 0::BIGINT AS _rid, r FROM read_json('{src}', format='newline_delimited', "
              f"records=false, columns={{'r': '{typ}'}}))")
    con.execute(f"CREATE TABLE {view.name} AS " + view.sql.replace("{source}", source))
    n += con.execute(f"SELECT count(*) FROM {view.name}").fetchall()[0][0]
con.close()
print(json.dumps({"seconds": time.perf_counter() - t, "rows": n}))
"""

OURS = r"""
import json, sys, time
from etl.load import load, LoadOptions
t = time.perf_counter()
r = load(sys.argv[2], [sys.argv[1]], LoadOptions(validate=sys.argv[3] == "1"))
print(json.dumps({"seconds": time.perf_counter() - t, "loaded": r.loaded, "rejected": r.rejected,
                  "by_type": {k: dict(v) for k, v in r.by_type.items()}}))
"""


def run(code: str, *args: str) -> dict:
    """Run code in a fresh interpreter; return its JSON line and its peak RSS (VmHWM, MB)."""
    wrapper = code + r"""
for line in open('/proc/self/status'):
    if line.startswith('VmHWM'):
        print(json.dumps({'peak_mb': int(line.split()[1]) / 1024}))
"""
    p = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                       cwd=ROOT, check=False)
    if p.returncode:
        sys.exit(f"benchmark step failed:\n{p.stderr[-3000:]}")
    out = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--validate", action="store_true", help="also time --validate")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each; the best is reported")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bmc-bench-"))
    try:
        t = time.perf_counter()
        sizes = write_export(tmp / "export", args.patients)
        total = sum(sizes.values())
        obs_file = tmp / "export" / "Observation.000.ndjson"
        print(f"export: {args.patients} patients, {total / 1e6:.1f} MB "
              f"(Observation {sizes['Observation'] / 1e6:.1f} MB), written in {time.perf_counter() - t:.1f} s")

        def best(code: str, *a: str, db: str) -> dict:
            runs = []
            for _ in range(args.repeat):
                for f in tmp.glob(db + "*"):
                    f.unlink()
                runs.append(run(code, *a))
            return min(runs, key=lambda r: r["seconds"])

        base = best(BASELINE, str(obs_file), str(tmp / "base.duckdb"), db="base.duckdb")
        obs_only = best(OURS, str(obs_file), str(tmp / "obs.duckdb"), "0", db="obs.duckdb")
        full = best(OURS, str(tmp / "export"), str(tmp / "full.duckdb"), "0", db="full.duckdb")
        rows = [("bare DuckDB read_json -> observation (baseline)", sizes["Observation"], base),
                ("bmc load, Observation file", sizes["Observation"], obs_only),
                ("bmc load, whole export", total, full)]
        if args.validate:
            rows.append(("bmc load --validate, whole export", total,
                         best(OURS, str(tmp / "export"), str(tmp / "val.duckdb"), "1", db="val.duckdb")))
        print(f"{'step':50} {'MB/s':>8} {'seconds':>8} {'peak MB':>8}")
        for name, size, r in rows:
            print(f"{name:50} {size / 1e6 / r['seconds']:8.0f} {r['seconds']:8.2f} {r['peak_mb']:8.0f}")
        n_obs = args.patients * 40
        print(f"resources/s (bmc load, Observation file): {n_obs / obs_only['seconds']:,.0f}")
        print(f"ratio bmc load / bare DuckDB on the same Observation file: "
              f"{obs_only['seconds'] / base['seconds']:.2f}x (target <= 1.5x)")
        print(f"peak memory, whole export: {full['peak_mb']:.0f} MB (target < ~512 MB)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
