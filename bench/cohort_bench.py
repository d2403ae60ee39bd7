"""Cohort and screen speed on a large synthetic Bulk export.

Generates N patients with ``cohort.synth.stream_bulk`` (the sample institution's mix of roles,
with its own roles.csv), loads them with ``etl.load.load``, then times, on the loaded file:

* the first build (``build_cohort`` with no bmc_* table in the database),
* the same build repeated on unchanged data (every stage reused),
* ``run_screen`` with the cohort up to date (the screen stages only), and repeated,
* a changed smear window (only the stages that read ``$smear_window_days`` rebuilt),

in CPU seconds of the whole process (DuckDB's threads included) against issue 15's targets at
100,000 patients (minus process start-up, which the CLI adds), prints the slowest stages, and checks the result against the export's roles.csv (every
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

#: Issue 15's targets in CPU seconds at 100,000 patients (cost is meant to grow linearly).
TARGETS = {"first build": 3.0, "repeat": 0.2, "smear window": 1.5, "screen": 0.5}


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def measured(fn, *args, **kw):
    """``fn``'s result and (CPU seconds of every thread of this process, wall seconds)."""
    c, w = time.process_time(), time.perf_counter()
    out = fn(*args, **kw)
    return out, (time.process_time() - c, time.perf_counter() - w)


def report(what: str, cost: tuple[float, float], target: float) -> None:
    cpu, wall = cost
    verdict = "meets" if cpu < target else "MISSES"
    print(f"{what:<28} {cpu:6.2f} s CPU ({wall:5.2f} s)  target < {target} s at 100k: {verdict}")


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
        (n_obs,) = con.execute("SELECT count(*) FROM observation").fetchall()[0]
        print(f"{n_obs:,} observation rows; CPU seconds (all threads), wall in brackets")
        for t in [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_name LIKE 'bmc\\_%' ESCAPE '\\'").fetchall()]:
            con.execute(f'DROP TABLE "{t}"')  # a first build starts from no bmc_* table
        cohort, first = measured(build_cohort, con, reuse=True)
        report("first build", first, TARGETS["first build"])
        _, repeat = measured(build_cohort, con, reuse=True)
        report("repeat, unchanged data", repeat, TARGETS["repeat"])
        screen, t_screen = measured(run_screen, con)
        report("screen (cohort up to date)", t_screen, TARGETS["screen"])
        _, screen_again = measured(run_screen, con)
        report("screen repeated", screen_again, TARGETS["repeat"])
        window, t_window = measured(build_cohort, con, {"smear_window_days": 7}, reuse=True)
        report("changed smear window (7 d)", t_window, TARGETS["smear window"])
        print("  rebuilt: " + ", ".join(f"{k} {v:.2f} s" for k, v in window.timings.items()))
        build_cohort(con, reuse=True)  # back to the defaults
        print(f"cohort {cohort.counts['cohort']} of {cohort.counts['patients']:,} patients; routes "
              f"histology {cohort.counts['histology_only']}, smear {cohort.counts['smear_only']}, "
              f"both {cohort.counts['both']}; screen tier 1 {screen.counts['1']}, tier 2 "
              f"{screen.counts['2']}, excluded {screen.counts['excluded']}")
        slow = sorted({**cohort.timings, **screen.timings}.items(), key=lambda kv: -kv[1])[:6]
        print("slowest stages of the first build (wall): "
              + ", ".join(f"{k} {v:.2f} s" for k, v in slow))
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
