"""DuckDB vs Spark local: building the Observation tables from the same NDJSON export.

Writes a synthetic Bulk export (``bench/load_bench.py``'s ``write_export``: N patients,
realistic ~1.2 KB lab Observations), then over its ``Observation.000.ndjson``:

* DuckDB views: bare ``read_json`` with the views' typed structure and the views' own SQL
  into the same two tables of a fresh database file (what Spark does too: read + SELECT);
* DuckDB ``bmc load``: ``etl.load.load`` into a fresh database file (the whole loader:
  provenance, versions, references; it fills ``observation`` and
  ``observation_reference_range``);
* Spark ``local[2]`` (``--master``): ``etl.spark.views.build_view`` for the same two views,
  each written to the ``noop`` sink (every row computed, nothing stored).

With ``--cohort N`` it also times the cohort on both engines over the same data: a
``stream_bulk`` export of N patients loaded by ``bmc load``, ``build_cohort`` on DuckDB, and
``cohort_spark`` (every stage of ``queries/bmc/``, nothing stored) on the ``bmc export`` lake
of that database.

Cold is the first run in this process (for Spark: right after the session started, JVM and
code generation cold); warm is the best of ``--repeat`` further runs. Prints seconds, MB/s of
the Observation file and the ratio DuckDB/Spark.

    python bench/spark_bench.py --patients 2000 [--cohort 1000] [--master local[2]]
                                [--repeat 2] [--keep]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

VIEWS = ("observation", "observation_reference_range")


def duckdb_run(obs: Path, work: Path, i: int) -> float:
    from etl.load import load

    db = work / f"duck{i}.duckdb"
    started = time.perf_counter()
    load(db, [obs])
    took = time.perf_counter() - started
    db.unlink()
    return took


def duckdb_views_run(views, obs: Path, work: Path, i: int) -> float:
    import duckdb

    from etl.ingest import structure_type_sql
    from etl.viewdef.macros import install_macros

    db = work / f"views{i}.duckdb"
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    install_macros(con)
    started = time.perf_counter()
    for view in views:
        typ = structure_type_sql(view.structure)
        source = (f"(SELECT 0::BIGINT AS _rid, r FROM read_json('{obs}', "
                  f"format='newline_delimited', records=false, columns={{'r': '{typ}'}}))")
        con.execute(f"CREATE TABLE {view.name} AS " + view.render(source))
    took = time.perf_counter() - started
    con.close()
    db.unlink()
    return took


def spark_run(spark, views, obs: Path) -> float:
    from etl.spark.views import build_view, view_settings

    started = time.perf_counter()
    with view_settings(spark):
        for view in views:
            build_view(spark, view, [obs]).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - started


def warm(times: list[float]) -> float:
    """The warm figure of a series: the best run after the first (cold) one."""
    return min(times[1:] or times)


def cohort_section(spark, n: int, work: Path, repeat: int) -> None:
    """The whole path on both engines over the same N-patient export: loading (DuckDB
    ``bmc load`` into a new file vs Spark ``load_lake`` into a new lake) and the cohort
    (``build_cohort`` vs ``cohort_spark`` over that lake, nothing stored)."""
    from cohort.definition import build_cohort
    from cohort.runner import open_database
    from cohort.spark_runner import cohort_spark
    from cohort.synth import stream_bulk
    from etl.load import load
    from etl.spark.load import load_lake

    export = work / "cohort_export"
    stream_bulk(export, n)
    mb = sum(f.stat().st_size for f in export.rglob("*.ndjson")) / 1e6

    def timed(fn) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    duck_load = [timed(lambda i=i: load(work / f"c{i}.duckdb", [export]))
                 for i in range(1 + repeat)]
    spark_load = [timed(lambda i=i: load_lake(spark, [export], work / f"lake{i}"))
                  for i in range(1 + repeat)]
    duck, sp, results = [], [], {}

    def on_duck() -> None:
        con = open_database(work / "c0.duckdb")
        try:
            results["duck"] = build_cohort(con)
        finally:
            con.close()

    def on_spark() -> None:
        results["spark"] = cohort_spark(spark, work / "lake0", store=False)

    for _ in range(1 + repeat):
        duck.append(timed(on_duck))
    for _ in range(1 + repeat):
        sp.append(timed(on_spark))
    same = results["spark"].counts == results["duck"].counts

    def line(name: str, times: list[float], size: float | None = None) -> str:
        best = warm(times)
        rate = (f"   {size / times[0]:7.1f} / {size / best:7.1f} MB/s cold/warm"
                if size else "")
        return f"  {name:<24} cold {times[0]:6.2f} s   warm {best:6.2f} s{rate}"

    print(f"whole path, {n} patients ({mb:.1f} MB NDJSON; cohort "
          f"{results['duck'].counts['cohort']}, "
          f"{'same' if same else 'DIFFERENT'} counts on both engines)")
    print(line("DuckDB bmc load", duck_load, mb))
    print(line("Spark load_lake", spark_load, mb))
    print(line("DuckDB build_cohort", duck))
    print(line("Spark cohort_spark", sp))
    print(f"  Spark / DuckDB   load cold {spark_load[0] / duck_load[0]:.0f}x warm "
          f"{warm(spark_load) / warm(duck_load):.0f}x;   "
          f"cohort cold {sp[0] / duck[0]:.0f}x warm "
          f"{warm(sp) / warm(duck):.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=2, help="warm runs (best is reported)")
    ap.add_argument("--cohort", type=int, default=0, metavar="N",
                    help="also time the cohort on both engines over an N-patient export")
    ap.add_argument("--keep", action="store_true", help="keep the export folder")
    args = ap.parse_args()

    from load_bench import write_export

    from etl.declared import compiled_views
    from etl.spark.session import spark_session

    work = Path(tempfile.mkdtemp(prefix="bmc-spark-bench-"))
    try:
        write_export(work / "export", args.patients)
        obs = work / "export" / "Observation.000.ndjson"
        mb = obs.stat().st_size / 1e6
        print(f"{args.patients} patients: Observation NDJSON {mb:.1f} MB")

        views = [v for v in compiled_views() if v.name in VIEWS]
        bare = [duckdb_views_run(views, obs, work, i) for i in range(1 + args.repeat)]
        duck = [duckdb_run(obs, work, i) for i in range(1 + args.repeat)]

        started = time.perf_counter()
        spark = spark_session(args.master, {"spark.sql.shuffle.partitions": "2"},
                              app_name="bmc-spark-bench")
        start_s = time.perf_counter() - started
        try:
            sp = [spark_run(spark, views, obs) for _ in range(1 + args.repeat)]
            if args.cohort:
                cohort_section(spark, args.cohort, work, args.repeat)
        finally:
            spark.stop()

        def line(name: str, cold: float, best: float) -> str:
            return (f"{name:<22} cold {cold:6.2f} s {mb / cold:8.1f} MB/s   "
                    f"warm {best:6.2f} s {mb / best:8.1f} MB/s")

        print(line("DuckDB views", bare[0], warm(bare)))
        print(line("DuckDB (bmc load)", duck[0], warm(duck)))
        print(line(f"Spark {args.master}", sp[0], warm(sp)))
        print(f"Spark session start   {start_s:6.2f} s (not in the figures above)")
        warm_sp = warm(sp)
        print(f"Spark time / DuckDB views time   cold {sp[0] / bare[0]:.1f}x   "
              f"warm {warm_sp / warm(bare):.1f}x")
        print(f"Spark time / bmc load time       cold {sp[0] / duck[0]:.1f}x   "
              f"warm {warm_sp / warm(duck):.1f}x")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
