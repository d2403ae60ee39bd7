"""Growth with the number of patients (issue 15 §4): the whole job as a user runs it.

For each size N, ``bmc synth --patients N`` writes a Bulk NDJSON export (streamed patient by
patient), then ``bmc load``, ``bmc cohort``, ``bmc screen`` and ``bmc report`` run on it, each
as its own ``bmc`` process -- start-up, imports and output included, as a user pays them. Per
step the table gives:

* ``wall_s``: elapsed seconds;
* ``cpu_s``: user + system CPU seconds of the child and everything it waited for
  (``resource.getrusage(RUSAGE_CHILDREN)`` before/after);
* ``peak_rss_mb``: ``ru_maxrss`` of ``os.wait4``: the largest peak resident set of the child
  and of any descendant it waited for (the largest single process, not a sum), and
  ``tree_rss_mb``: the peak of the summed RSS of the child and all its live descendants, polled
  from ``/proc`` every 0.2 s (what counts for Spark, whose JVM runs beside the Python driver);
* ``size_mb``: after the step, the export (synth) or the database (the DuckDB file with its
  WAL, or the Parquet lake folder with ``--engine spark``): the cohort and screen add their
  ``bmc_*`` tables to it.

With several ``--sizes`` the growth table gives, for each step and metric, the ratio between
consecutive sizes and its exponent ``log(ratio) / log(patient ratio)``: 1.0 is linear, 0 is a
fixed cost, in between a fixed part plus a linear one.

Disk: the export is ~23 KB per patient (10,000: ~230 MB; 1,000,000: ~23 GB) and the database
adds about a third of that again; the work folder needs both (see docs/scale.md).

    python bench/scale_bench.py --patients 10000 [--keep] [--reuse DIR] [--spark]
    python bench/scale_bench.py --sizes 1000,10000,100000 [--dir DIR] [--json FILE]

``--reuse DIR``: DIR holds ``export-<N>/`` from an earlier ``--keep`` run; the export is not
generated again (a missing one is). ``--spark``: also the same steps with ``--engine spark``
(load builds a Parquet lake; the cohort, screen and report run on Spark local).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")
STEPS = ("synth", "load", "cohort", "screen", "report")
EXIT_REJECTED = 3  # bmc load: loaded, some records rejected (documented in README.md)


@dataclass
class Step:
    patients: int
    engine: str
    step: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    tree_rss_mb: float
    size_mb: float | None
    exit_code: int


def _children(pid: int) -> list[int]:
    """Direct children of pid, from /proc/<pid>/task/*/children (no psutil)."""
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids.extend(int(k) for k in f.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0


def _tree_rss(root: int) -> int:
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_bytes(pid)
        todo.extend(_children(pid))
    return total


def run_child(argv: list[str], log: Path) -> tuple[int, float, float, float, float]:
    """Run argv; return (exit code, wall s, CPU s, own peak RSS MB, process-tree peak RSS MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        peak = [0]
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                done.wait(0.2)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    own = usage.ru_maxrss / 1024  # KiB on Linux
    return proc.returncode, wall, cpu, own, max(peak[0] / 2**20, own)


def size_mb(path: Path) -> float:
    if path.is_file():
        extra = path.with_name(path.name + ".wal")
        return (path.stat().st_size + (extra.stat().st_size if extra.exists() else 0)) / 1e6
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _has_paper_patients(roles: Path) -> bool:
    with roles.open(encoding="utf-8") as f:
        return any(row.get("paper_patient", "").strip() for row in csv.DictReader(f))


def bench_size(n: int, work: Path, engines: list[str], reuse: Path | None) -> list[Step]:
    bmc = [sys.executable, "-m", "cohort.cli"] if shutil.which("bmc") is None else ["bmc"]
    export = (reuse or work) / f"export-{n}"
    rows: list[Step] = []

    def step(name: str, engine: str, argv: list[str], measured: Path | None,
             ok: tuple[int, ...] = (0,)) -> None:
        log = work / f"{name}-{engine}-{n}.log"
        code, wall, cpu, own, tree = run_child(bmc + argv, log)
        rows.append(Step(n, engine, name, round(wall, 2), round(cpu, 2), round(own, 1),
                         round(tree, 1), round(size_mb(measured), 1) if measured else None, code))
        print(f"  {n:>9,} {engine:<6} {name:<7} {wall:8.1f} s wall {cpu:8.1f} s CPU "
              f"{tree:7.0f} MB peak (exit {code})", file=sys.stderr, flush=True)
        if code not in ok:
            tail = log.read_text(errors="replace").splitlines()[-5:]
            raise SystemExit(f"bmc {argv[0]} failed (exit {code}); log {log}:\n" + "\n".join(tail))

    if not (export / "roles.csv").exists():
        step("synth", "-", ["synth", "--patients", str(n), "--out", str(export)], export)
    # the export's own paper patients as the report's second group (none below ~120 patients:
    # then the report's default list, whose ids are simply not in this database)
    ids = ["--ids", str(export / "roles.csv")] if _has_paper_patients(export / "roles.csv") else []
    for engine in engines:
        if engine == "duckdb":
            db = work / f"db-{n}.duckdb"
            for stale in (db, db.with_name(db.name + ".wal")):
                stale.unlink(missing_ok=True)
            flags = ["--db", str(db)]
        else:
            db = work / f"lake-{n}"
            shutil.rmtree(db, ignore_errors=True)
            flags = ["--db", str(db), "--engine", "spark"]
        step("load", engine, ["load", str(export), *flags], db, ok=(0, EXIT_REJECTED))
        step("cohort", engine, ["cohort", *flags, "--format", "csv",
                                "--out", str(work / f"cohort-{engine}-{n}.csv")], db)
        step("screen", engine, ["screen", *flags, "--format", "csv",
                                "--out", str(work / f"screen-{engine}-{n}.csv")], db)
        step("report", engine, ["report", *flags, *ids,
                                "--out", str(work / f"report-{engine}-{n}")], db)
    return rows


def _code_version() -> str:
    """The commit measured, and whether the working tree differed from it (figures depend on it)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" with uncommitted changes" if dirty.strip() else "")


def render(rows: list[Step]) -> str:
    head = ("patients", "engine", "step", "wall_s", "cpu_s", "peak_rss_mb", "tree_rss_mb",
            "size_mb")
    body = [(f"{r.patients:,}", r.engine, r.step, f"{r.wall_s:.1f}", f"{r.cpu_s:.1f}",
             f"{r.peak_rss_mb:.0f}", f"{r.tree_rss_mb:.0f}",
             "" if r.size_mb is None else f"{r.size_mb:,.1f}") for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in
                       enumerate(zip(head, widths, strict=True)))]
    lines += ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(b, widths, strict=True))) for b in body]
    return "\n".join(lines)


def growth(rows: list[Step]) -> str:
    """Ratios between consecutive sizes per (engine, step): exponent 1 linear, 0 fixed."""
    sizes = sorted({r.patients for r in rows})
    out = ["step            sizes                wall x (exp)    cpu x (exp)    rss x (exp)"]
    by = {(r.engine, r.step, r.patients): r for r in rows}
    for engine in dict.fromkeys(r.engine for r in rows):
        for name in STEPS:
            for a, b in itertools.pairwise(sizes):
                ra, rb = by.get((engine, name, a)), by.get((engine, name, b))
                if not ra or not rb:
                    continue
                k = math.log(b / a)
                cells = []
                for x, y in ((ra.wall_s, rb.wall_s), (ra.cpu_s, rb.cpu_s),
                             (ra.tree_rss_mb, rb.tree_rss_mb)):
                    ratio = y / x if x > 0 else float("nan")
                    cells.append(f"{ratio:6.1f} ({math.log(ratio) / k:4.2f})"
                                 if ratio > 0 else "   n/a       ")
                out.append(f"{engine + ' ' + name:<15} {a:>8,} -> {b:<9,} "
                           + "   ".join(cells))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, help="one size (default 10,000)")
    ap.add_argument("--sizes", help="comma-separated sizes, e.g. 1000,10000,100000")
    ap.add_argument("--spark", action="store_true", help="also run every step with --engine spark")
    ap.add_argument("--engine", choices=("duckdb", "spark"),
                    help="only this engine (default duckdb, plus spark with --spark)")
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (exports, databases)")
    ap.add_argument("--reuse", type=Path,
                    help="folder with export-<N>/ from an earlier --keep run: not generated again")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = ap.parse_args(argv)
    if args.patients and args.sizes:
        ap.error("give --patients or --sizes, not both")
    try:
        sizes = ([int(s.replace("_", "")) for s in args.sizes.split(",")] if args.sizes
                 else [args.patients or 10_000])
    except ValueError:
        ap.error(f"--sizes must be integers separated by commas, not {args.sizes!r}")
    if any(n < 1 for n in sizes):
        ap.error("sizes must be >= 1")
    if args.reuse and not args.reuse.is_dir():
        ap.error(f"--reuse {args.reuse}: no such folder")
    engines = ([args.engine] if args.engine else ["duckdb"] + (["spark"] if args.spark else []))
    work = args.dir or Path(tempfile.mkdtemp(prefix="bmc-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}; {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr, flush=True)
    rows: list[Step] = []
    code = _code_version()  # at the start: the checkout may change during a long run
    try:
        for n in sorted(sizes):
            rows += bench_size(n, work, engines, args.reuse)
    finally:
        if rows:
            print(render(rows))
            if len(sizes) > 1:
                print()
                print(growth(rows))
            if args.json:
                args.json.write_text(json.dumps({
                    "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
                    "code": code,
                    "load_average_end": os.getloadavg(), "steps": [asdict(r) for r in rows]},
                    indent=1))
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        elif args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
