"""Memory of ``bmc load`` whatever the input (issue 15 §1): peak RSS against the 512 MB bound.

Each step runs ``bmc load`` in a fresh child process and reads that child's own peak RSS
(``os.wait4`` rusage ``ru_maxrss``), beside a baseline measured in the same run:

* many small files: N per-patient NDJSON files and Bundles (default 10,000), against the same
  resources in one file;
* a large single NDJSON file (default 500 MB) loaded, then re-loaded after every resource
  changed (from another path), against bare DuckDB ``read_ndjson`` over the same file.
  5 GB needs ~11 GB of disk here (file, changed copy, database) and about 10x the minutes;
* one resource of 200 MB (a DocumentReference with a large attachment) among small ones,
  against the same file without it: loaded, or rejected with the per-resource limit message;
* 100,000 rejected lines: seconds, against 100,000 valid lines.

    python bench/memory_bench.py [--files 10000] [--large-mb 500] [--resource-mb 200]
                                 [--rejected 100000] [--only files,large,resource,rejected]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

TARGET_MB = 512


def patient(i: int) -> dict:
    return {"resourceType": "Patient", "id": f"p{i}", "meta": {"versionId": "1"},
            "gender": "female", "birthDate": f"19{40 + i % 50}-0{1 + i % 9}-1{i % 10}",
            "identifier": [{"system": "urn:oid:1.2.3.4", "value": f"MRN{i:09d}"}]}


def observation(i: int, k: int, value: float = 11.2) -> dict:
    return {"resourceType": "Observation", "id": f"o{i}-{k}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                "observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7",
                                 "display": "Hemoglobin [Mass/volume] in Blood"}]},
            "subject": {"reference": f"Patient/p{i}"},
            "effectiveDateTime": f"20{k % 10:02d}-0{1 + k % 9}-1{k % 10}T08:00:00Z",
            "valueQuantity": {"value": value, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                              "code": "g/dL"},
            "referenceRange": [{"low": {"value": 12.0, "unit": "g/dL"},
                                "high": {"value": 15.5, "unit": "g/dL"}}]}


def lines(docs) -> bytes:
    return b"".join(orjson.dumps(d) + b"\n" for d in docs)


def write_many(folder: Path, n: int) -> Path:
    """n small files: every other one a patient's NDJSON, the rest a patient's Bundle."""
    folder.mkdir(parents=True)
    one = folder.parent / "one.ndjson"
    with one.open("wb") as whole:
        for i in range(n):
            docs = [patient(i)] + [observation(i, k) for k in range(5)]
            whole.write(lines(docs))
            if i % 2:
                (folder / f"p{i}.ndjson").write_bytes(lines(docs))
            else:
                (folder / f"p{i}.json").write_bytes(orjson.dumps({
                    "resourceType": "Bundle", "type": "collection",
                    "entry": [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:06d}{k:06d}",
                               "resource": d} for k, d in enumerate(docs)]}))
    return one


def write_large(path: Path, mb: int, value: float) -> int:
    """An NDJSON file of about mb MB (Patients and their Observations); returns resources."""
    n = 0
    with path.open("wb") as f:
        i = 0
        while f.tell() < mb * 1_000_000:
            f.write(lines([patient(i)] + [observation(i, k, value) for k in range(20)]))
            n += 21
            i += 1
    return n


def write_big_resource(path: Path, mb: int) -> None:
    """A DocumentReference whose attachment is mb MB of base64, between small resources."""
    data = "QUJD" * (mb * 1_000_000 // 4)
    path.write_bytes(lines([patient(1), observation(1, 1), {
        "resourceType": "DocumentReference", "id": "big", "status": "current",
        "subject": {"reference": "Patient/p1"},
        "content": [{"attachment": {"contentType": "application/pdf", "data": data}}]},
        observation(1, 2)]))


def write_rejected(path: Path, n: int, good: bool) -> None:
    with path.open("wb") as f:
        for i in range(n):
            if good:
                f.write(orjson.dumps(observation(i, 0)) + b"\n")
            elif i % 3 == 0:
                f.write(b'{"resourceType": "Observation", "id": "x%d", "status": "fin\n' % i)
            elif i % 3 == 1:
                f.write(b'{"resourceType": "Observation", "status": "final"}\n')
            else:
                f.write(b'{"id": "y%d", "status": "final"}\n' % i)


def measured(args: list[str], cwd: Path) -> dict:
    """run() in a fresh process of its own, so ru_maxrss is this command's alone."""
    code = ("import json, os, subprocess, sys, time\n"
            "t = time.perf_counter()\n"
            "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.PIPE)\n"
            "_, status, ru = os.wait4(p.pid, 0)\n"
            "err = p.stderr.read().decode(errors='replace')[-600:]\n"
            "print(json.dumps({'seconds': time.perf_counter() - t, 'peak_mb': ru.ru_maxrss / 1024,"
            " 'rc': os.waitstatus_to_exitcode(status), 'stderr': err}))\n")
    p = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


BARE = ("import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[2])\n"
        "con.execute(\"SET memory_limit = '256MB'\")\n"
        "con.execute('CREATE TABLE t AS SELECT * FROM read_ndjson(?, columns={\"resourceType\": "
        "\"VARCHAR\", \"id\": \"VARCHAR\", \"subject\": \"JSON\", \"valueQuantity\": \"JSON\"}, "
        "maximum_object_size=1000000000)', [sys.argv[1]])\n")


def bmc_load(inputs: list[Path], db: Path, cwd: Path, extra: list[str] = ()) -> dict:
    return measured(["bmc", "load", *map(str, inputs), "--db", str(db), *extra], cwd)


def row(name: str, r: dict, base: dict | None = None, what: str = "peak_mb") -> None:
    fig = f"{r['peak_mb']:7.0f} MB" if what == "peak_mb" else f"{r['seconds']:7.1f} s "
    b = "" if base is None else (f"{base['peak_mb']:7.0f} MB" if what == "peak_mb"
                                 else f"{base['seconds']:7.1f} s ")
    target = f"<= {TARGET_MB} MB" if what == "peak_mb" else "well under 60 s"
    ok = (r["peak_mb"] <= TARGET_MB) if what == "peak_mb" else r["seconds"] < 30
    print(f"{name:46} {fig:>11} {b:>11} {target:>16} {'ok' if ok else 'MISSED':>7} "
          f"exit {r['rc']} {r['seconds']:.0f} s", flush=True)
    if r["rc"] not in (0, 3):
        print(f"    stderr: {r['stderr'].strip()[-400:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--large-mb", type=int, default=500)
    ap.add_argument("--resource-mb", type=int, default=200)
    ap.add_argument("--rejected", type=int, default=100_000)
    ap.add_argument("--only", default="files,large,resource,rejected")
    ap.add_argument("--memory-limit", default=None, help="passed to bmc load --memory-limit")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    steps = set(args.only.split(","))
    extra = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    tmp = Path(tempfile.mkdtemp(prefix="bmc-membench-"))
    print(f"{'step':46} {'figure':>11} {'baseline':>11} {'target':>16} {'':>7}")
    try:
        if "files" in steps:
            one = write_many(tmp / "many", args.files)
            base = bmc_load([one], tmp / "one.duckdb", tmp, extra)
            r = bmc_load([tmp / "many"], tmp / "many.duckdb", tmp, extra)
            row(f"{args.files:,} small files (base: one file)", r, base)
        if "large" in steps:
            big, changed = tmp / "large.ndjson", tmp / "other" / "large.ndjson"
            changed.parent.mkdir()
            n = write_large(big, args.large_mb, 11.2)
            write_large(changed, args.large_mb, 12.3)
            base = measured([sys.executable, "-c", BARE, str(big), str(tmp / "bare.duckdb")], tmp)
            r1 = bmc_load([big], tmp / "large.duckdb", tmp, extra)
            row(f"{args.large_mb} MB file, {n:,} resources (base: DuckDB)", r1, base)
            r2 = bmc_load([changed], tmp / "large.duckdb", tmp, extra)
            row(f"{args.large_mb} MB re-loaded changed, another path", r2, base)
            for f in (big, changed):
                f.unlink()
        if "resource" in steps:
            f = tmp / "big_resource.ndjson"
            write_big_resource(f, args.resource_mb)
            small = tmp / "small.ndjson"
            small.write_bytes(lines([patient(1), observation(1, 1), observation(1, 2)]))
            base = bmc_load([small], tmp / "small.duckdb", tmp, extra)
            r = bmc_load([f], tmp / "big.duckdb", tmp, extra)
            row(f"one {args.resource_mb} MB resource (base: without it)", r, base)
            import duckdb
            con = duckdb.connect(str(tmp / "big.duckdb"), read_only=True)
            print("    load_error:", con.execute("SELECT line, resource_type, resource_id, reason "
                                                  "FROM load_error").fetchall())
            print("    loaded:", con.execute("SELECT resource_type, status, count(*) FROM resource "
                                             "GROUP BY ALL ORDER BY 1").fetchall())
            con.close()
            f.unlink()
        if "rejected" in steps:
            bad, good = tmp / "bad.ndjson", tmp / "good.ndjson"
            write_rejected(bad, args.rejected, good=False)
            write_rejected(good, args.rejected, good=True)
            base = bmc_load([good], tmp / "good.duckdb", tmp, extra)
            r = bmc_load([bad], tmp / "bad.duckdb", tmp, extra)
            row(f"{args.rejected:,} rejected lines (base: valid)", r, base, what="seconds")
            row(f"{args.rejected:,} rejected lines, memory", r, base)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
