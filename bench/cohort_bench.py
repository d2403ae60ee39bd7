"""Cohort and screen speed on a large synthetic Bulk export.

Generates N patients with ``cohort.synth.stream_bulk`` (the sample institution's mix of roles,
with its own roles.csv), loads them with ``etl.load.load``, then times, on the loaded file:

* ``build_cohort`` (every cohort stage of queries/bmc/, materialised as bmc_* tables),
* ``run_screen`` (reusing the cohort tables just built -- same parameters, data and queries --
  then the screen stages) -- together what ``bmc cohort`` followed by ``bmc screen`` costs,
  minus process start-up,

prints the slowest stages, and checks the result against the export's roles.csv (every
expected member found with its route and index date, no control in the cohort, every planted
tier-1/tier-2 case in its tier), so a fast but wrong run does not pass unnoticed.

    python bench/cohort_bench.py --patients 100000 [--dir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cohort.definition import build_cohort  # noqa: E402
from cohort.screen import run_screen  # noqa: E402
from cohort.synth import stream_bulk  # noqa: E402
from etl.load import load  # noqa: E402


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def verify(roles_csv: Path, cohort, screen) -> list[str]:
    """Disagreements with the export's intended roles (empty = all as designed)."""
    roles = list(csv.DictReader(roles_csv.open()))
    got = {r["patient_id"]: r for r in cohort.to_dict("records")}
    tiers = dict(zip(screen.patient_id, screen.tier, strict=True))
    problems = []
    for r in roles:
        pid = r["patient_id"]
        if r["expected_in_cohort"] == "1" and r["expected_route"] != "coded":
            if pid not in got:
                problems.append(f"missing {r['role']} {pid}")
            elif (got[pid]["route"], str(got[pid]["index_date"])[:10]) != \
                    (r["expected_route"], r["expected_index_date"]):
                problems.append(f"route/date {r['role']} {pid}")
        elif pid in got:
            problems.append(f"unexpected member {r['role']} {pid}")
        if r["expected_screen_tier"] in ("1", "2") and tiers.get(pid) != r["expected_screen_tier"]:
            problems.append(f"screen tier {r['expected_screen_tier']} not found {pid}")
        if tiers.get(pid) in ("1", "2") and r["expected_screen_tier"] != tiers[pid]:
            problems.append(f"unexpected tier {tiers[pid]} for {r['role']} {pid}")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the export and database")
    ap.add_argument("--reuse", action="store_true", help="reuse an export/database in --dir")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bmc-cohort-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    export, db = work / "export", work / "bench.duckdb"
    try:
        if not (args.reuse and db.exists()):
            if db.exists():
                db.unlink()
            summary, t_gen = timed(stream_bulk, export, args.patients)
            print(f"generate   {args.patients:>9,} patients  {summary.bytes_written / 1e6:8.0f} MB "
                  f" {sum(summary.resources.values()):>11,} resources  {t_gen:7.1f} s")
            result, t_load = timed(load, db, [export])
            print(f"load       {result.loaded:>9,} resources {result.bytes_read / 1e6:8.0f} MB  "
                  f"{t_load:7.1f} s ({result.mb_per_s:.0f} MB/s)")
        con = duckdb.connect(str(db))
        (n_obs,) = con.execute("SELECT count(*) FROM observation").fetchone()
        cohort, t_cohort = timed(build_cohort, con)
        screen, t_screen = timed(run_screen, con)
        print(f"cohort     {t_cohort:7.2f} s   cohort {cohort.counts['cohort']} of "
              f"{cohort.counts['patients']:,} patients ({n_obs:,} observation rows); routes "
              f"histology {cohort.counts['histology_only']}, smear {cohort.counts['smear_only']}, "
              f"both {cohort.counts['both']}")
        print(f"screen     {t_screen:7.2f} s   (cohort tables reused + screen stages) tier 1 "
              f"{screen.counts['1']}, tier 2 {screen.counts['2']}, excluded "
              f"{screen.counts['excluded']}")
        print(f"cohort + screen as the CLI runs them: {t_cohort + t_screen:.2f} s")
        slow = sorted({**cohort.timings, **screen.timings}.items(), key=lambda kv: -kv[1])[:5]
        print("slowest stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in slow))
        problems = verify(export / "roles.csv", cohort.cohort, screen.screen)
        print(f"check against roles.csv: {'all as designed' if not problems else problems[:10]}")
        con.close()
        if problems:
            sys.exit(1)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
