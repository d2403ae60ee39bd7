"""The cohort and screen stages of ``queries/bmc/`` on Spark, over a Parquet lake.

The lake is a folder written by ``bmc export`` (or ``bmc load --engine spark``): one
sub-folder of Parquet per table and ``_export.json``. The stage files are the DuckDB ones,
unchanged: each is transpiled by :mod:`etl.spark.dialect` and run with its ``$name`` parameters
bound by Spark (``spark.sql(text, args=...)``). Each stage is materialised
(:func:`etl.spark.session.materialise`: a local checkpoint on ``local[...]``, a reliable
checkpoint or a persisted copy on a cluster, so a lost executor is recomputed rather than
failing the run) and registered as a temporary view named like the DuckDB table
(``bmc_lab``, ...), so later stages and SQL users read it the same way.

As DuckDB leaves the ``bmc_*`` tables in the database, a Spark run leaves them in the lake:
one Parquet folder per stage table plus ``bmc_parameter``, and ``_cohort.json`` saying which
parameters and which lake contents (a fingerprint of ``_export.json`` and ``queries/``) built
them. ``bmc evidence``, ``bmc check`` and ``bmc report`` read them instead of rebuilding
(:func:`lake_engine`). A lake that cannot be written to keeps the tables in the session only,
with a note. Only small results (cohort, funnel, screen, unit issues) come back to the driver
as pandas.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb

from etl.export import MANIFEST, SHARD_COLUMN
from etl.spark.dialect import DialectError, to_spark
from etl.spark.lakes import local_lake, spark_uri
from etl.spark.load import tidy
from etl.spark.session import error_message, materialise

from .definition import CohortResult, queries_digest, read_cohort
from .engine import SparkEngine, spark_args
from .errors import DatabaseError, QueryError
from .parameters import BY_NAME, resolve
from .reference import REFERENCE_FILES, load_reference
from .runner import REQUIRED_TABLES, RunInfo, bind_values, stages
from .screen import ScreenResult, read_screen

_SPARK_TYPES = {"DOUBLE": "double", "INTEGER": "int", "BOOLEAN": "boolean", "VARCHAR": "string"}


#: What each Spark application's temporary views currently hold, so that registering the
#: same lake again (every ``lake_engine`` call: evidence, check, report in one notebook or
#: test session) does not re-read ~35 Parquet footers: ``app id -> (folder, fingerprint)``
#: for the lake's own tables, ``app id -> (folder, _cohort.json text)`` for the stored
#: ``bmc_*`` tables. A stage run replaces ``bmc_*`` views, so it forgets the second.
_LAKE_VIEWS: dict[str, tuple[str, str]] = {}
_STORED_VIEWS: dict[str, tuple[str, str]] = {}


def _app(spark) -> str:
    return spark.sparkContext.applicationId


def register_export(spark, folder: str | Path) -> list[str]:
    """Register every table folder of a lake (and the ``bmc_*`` tables a Spark run stored
    there) as temporary views; returns their names. Views already registered from the same,
    unchanged lake in this application are kept."""
    root = local_lake(folder)
    if not (root / MANIFEST).is_file():
        raise DatabaseError(f"{folder}: not a Parquet export (no {MANIFEST}); with --engine "
                            f"spark, --db is a folder written by "
                            f"`bmc export --db FILE --out {folder}`")
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    names = [t["name"] for t in manifest["tables"]]
    missing = [t for t in REQUIRED_TABLES if t not in names]
    if missing:
        raise DatabaseError(f"{folder}: the export has no {', '.join(missing)}; export a "
                            f"loaded database with `bmc export --db FILE --out DIR`")
    key = str(root.resolve())
    current = (key, lake_fingerprint(root))
    if _LAKE_VIEWS.get(_app(spark)) != current:
        for name in names:
            df = spark.read.parquet(spark_uri(root / name))
            if SHARD_COLUMN in df.columns:
                df = df.drop(SHARD_COLUMN)
            df.createOrReplaceTempView(name)
        _LAKE_VIEWS[_app(spark)] = current
    built = stored_build(root)
    stored = [t for t in (built or {}).get("tables", []) if (root / t).is_dir()]
    text = (root / BUILD_MANIFEST).read_text(encoding="utf-8") if built else ""
    if stored and _STORED_VIEWS.get(_app(spark)) != (key, text):
        for table in stored:
            spark.read.parquet(spark_uri(root / table)).createOrReplaceTempView(table)
        _STORED_VIEWS[_app(spark)] = (key, text)
    return names + stored


#: Where a Spark run reads the FHIR tables from: a lake folder, or a mapping of declared
#: table name (``observation``, ``resource``, ...) to a catalog table name read with
#: ``spark.table`` (``"main.fhir.observation"``) or to a DataFrame.
Tables = str | Path | Mapping[str, Any]


def register_catalog(spark, tables: Mapping[str, Any]) -> list[str]:
    """Register tables that already live in the session's catalog (a Databricks schema, Hive
    tables, DataFrames) under the declared names the queries read, instead of a lake folder.

    ``tables`` maps a declared table name to a catalog name (``spark.table(name)``) or a
    DataFrame; at least the tables the cohort reads (:data:`cohort.runner.REQUIRED_TABLES`)
    must be there. Nothing is stored: the ``bmc_*`` tables live in the session only."""
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise DatabaseError(f"the table mapping has no {', '.join(missing)}; map every declared "
                            f"table the cohort reads to a catalog table (docs/spark.md)")
    for name, source in tables.items():
        try:
            df = spark.table(source) if isinstance(source, str) else source
        except Exception as e:  # AnalysisException: no such table
            raise DatabaseError(f"{name}: the catalog table {source!r} cannot be read "
                                f"({error_message(e)})") from None
        if SHARD_COLUMN in df.columns:
            df = df.drop(SHARD_COLUMN)
        df.createOrReplaceTempView(name)
    _LAKE_VIEWS.pop(_app(spark), None)  # the views no longer hold a lake's tables
    _STORED_VIEWS.pop(_app(spark), None)
    return list(tables)


def register_reference(spark) -> dict[str, int]:
    """The ``ref_*`` tables from ``queries/reference/`` (checked exactly as for DuckDB)."""
    con = duckdb.connect()
    try:
        counts = load_reference(con)
        for spec in REFERENCE_FILES:
            rows = con.execute(f"SELECT * FROM {spec.table}").fetchall()
            schema = ", ".join(f"`{c}` {_SPARK_TYPES[t]}" for c, t in spec.columns)
            spark.createDataFrame(rows, schema).createOrReplaceTempView(spec.table)
    finally:
        con.close()
    return counts


def _args(params: Mapping[str, Any], names: tuple[str, ...]):
    values = bind_values(params)
    return spark_args({name: values[name] for name in names})


def materialised_parts(spark_sql: str, prefix: str) -> list[tuple[str | None, str]]:
    """Split a Spark query so that each CTE it reads more than once is computed once.

    Spark inlines every deterministic CTE at each reference, so a stage whose ``joined`` CTE
    feeds four others computes the whole chain four times (``bmc_lab``: 2-3x slower). Each
    such CTE becomes a part of its own, ``(name, sql)``, run and materialised before the
    rest as the temporary view ``name`` (``<prefix>_<cte>``); references to it are renamed
    (keeping their alias). The CTEs read once stay in the parts that need them. The last
    part, ``(None, sql)``, is the query itself. A query without such CTEs is one part."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(spark_sql, read="spark")
    with_ = tree.args.get("with_")
    if with_ is None:
        return [(None, spark_sql)]
    ctes = list(with_.expressions)
    reads = {c.alias: sum(1 for t in tree.find_all(exp.Table) if t.name == c.alias and not t.db)
             for c in ctes}
    rename = {c.alias: f"{prefix}_{c.alias}" for c in ctes if reads[c.alias] > 1}
    if not rename:
        return [(None, spark_sql)]

    def renamed(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.db and node.name in rename:
            return exp.to_table(rename[node.name]).as_(node.alias_or_name)
        return node

    def with_kept(query: exp.Expression, kept: list[exp.CTE]) -> str:
        if kept:
            query.set("with_", exp.With(expressions=[k.copy() for k in kept]))
        return query.sql(dialect="spark")

    parts: list[tuple[str | None, str]] = []
    kept: list[exp.CTE] = []
    for cte in ctes:
        body = cte.this.copy().transform(renamed)
        if cte.alias in rename:
            parts.append((rename[cte.alias], with_kept(body, kept)))
        else:
            kept.append(exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(cte.alias))))
    main = tree.copy()
    main.set("with_", None)
    parts.append((None, with_kept(main.transform(renamed), kept)))
    return parts


def run_group_spark(spark, group: str, params: Mapping[str, Any],
                    folder: Path | None = None) -> RunInfo:
    """Every stage of ``group`` in order, each materialised as a temporary view (its CTEs
    read more than once first, see :func:`materialised_parts`)."""
    info = RunInfo()
    register_reference(spark)
    _STORED_VIEWS.pop(_app(spark), None)  # the bmc_* views are about to hold this run's rows
    for stage in stages(group, folder):
        missing = [p for p in stage.params if p not in params]
        if missing:
            raise QueryError(f"{stage.path.name}: parameter(s) {', '.join(missing)} not "
                             f"declared in cohort/parameters.py")
        try:
            text = to_spark(stage.sql)
        except DialectError as e:
            raise QueryError(f"{stage.path.name}: {e}") from None
        started = time.perf_counter()
        try:
            parts = materialised_parts(text, f"__{stage.table}")
            for name, part in parts:
                df = materialise(spark.sql(part, args=_args(params, stage.params)))
                if name is not None:
                    df.createOrReplaceTempView(name)
            for name, _ in parts[:-1]:
                spark.catalog.dropTempView(name)
        except Exception as e:  # pyspark's errors: AnalysisException, Py4JJavaError, ...
            raise QueryError(f"{stage.path.name} (building {stage.table} on Spark): "
                             f"{error_message(e)}") from None
        df.createOrReplaceTempView(stage.table)
        info.timings[stage.table] = time.perf_counter() - started
    return info


def cohort_spark(spark, export: Tables, params: Mapping[str, Any] | None = None, *,
                 store: bool = True, reuse: bool = False) -> CohortResult:
    """The cohort over a Parquet lake, on Spark; the same result object as on DuckDB.

    ``export`` is the lake folder, or a mapping of declared table -> catalog table or
    DataFrame (:func:`register_catalog`; then ``store`` and ``reuse`` do not apply: the
    ``bmc_*`` tables stay in the session). With ``store`` the ``bmc_*`` tables are written
    into the lake (see the module doc); with ``reuse`` tables stored there with the same
    parameters from the same lake and queries are read instead of rebuilt."""
    values = resolve(params)
    if isinstance(export, Mapping):
        register_catalog(spark, export)
        return read_cohort(SparkEngine(spark), values,
                           run_group_spark(spark, "cohort", values))
    register_export(spark, export)
    if reuse and lake_up_to_date(export, values, "cohort"):
        return read_cohort(SparkEngine(spark), values, RunInfo(notes=[
            "cohort tables reused (same parameters, lake files and queries)"]))
    info = run_group_spark(spark, "cohort", values)
    if store:
        info.notes.extend(store_tables(spark, export, values, ("cohort",)))
    return read_cohort(SparkEngine(spark), values, info)


def screen_spark(spark, export: Tables, params: Mapping[str, Any] | None = None, *,
                 store: bool = True, reuse: bool = False) -> ScreenResult:
    """The cohort, then the screen, over a Parquet lake or a table mapping on Spark
    (``export``, ``store``, ``reuse`` as for :func:`cohort_spark`; the cohort's tables are
    reused when up to date, as on DuckDB)."""
    values = resolve(params)
    if isinstance(export, Mapping):
        cohort = cohort_spark(spark, export, values)
        return read_screen(SparkEngine(spark), cohort,
                           run_group_spark(spark, "screen", cohort.params))
    if reuse and lake_up_to_date(export, values, "screen"):
        register_export(spark, export)
        cohort = read_cohort(SparkEngine(spark), values)
        info = RunInfo(notes=["screen tables reused (same parameters, lake files and queries)"])
    else:
        reused = lake_up_to_date(export, values, "cohort")
        cohort = cohort_spark(spark, export, values, store=False, reuse=True)
        info = run_group_spark(spark, "screen", cohort.params)
        if store:
            info.notes.extend(store_tables(spark, export, cohort.params, ("cohort", "screen"),
                                           ("screen",) if reused else None))
    return read_screen(SparkEngine(spark), cohort, info)


# -- the bmc_* tables kept in the lake -----------------------------------------------------------

#: Written beside ``_export.json`` when a Spark run stores its ``bmc_*`` tables.
BUILD_MANIFEST = "_cohort.json"
#: Stage tables are written by this many concurrent jobs, each table as at most this many
#: files (they are per-patient rule results: small next to the FHIR tables).
STORE_THREADS, STORE_FILES = 4, 8


def lake_fingerprint(folder: str | Path) -> str:
    """What stored ``bmc_*`` tables depend on besides the parameters: the lake's manifest and
    the name, size and modification time of every data file of the tables it lists
    (rewritten by every export or Spark load, even with equal row counts), and ``queries/``."""
    root = Path(folder)
    h = hashlib.sha256((root / MANIFEST).read_bytes())
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    for table in manifest["tables"]:
        for f in sorted((root / table["name"]).rglob("*.parquet")):
            st = f.stat()
            h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    queries_digest(h)
    return h.hexdigest()


def _shown(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: BY_NAME[k].show(v) for k, v in values.items()}


def stored_build(folder: str | Path) -> dict | None:
    """``_cohort.json`` of the lake (None when no Spark run stored tables there)."""
    path = Path(folder) / BUILD_MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # unreadable: treated as not built, and rewritten by the next run


def _group_tables(groups: tuple[str, ...]) -> list[str]:
    return [s.table for g in groups for s in stages(g)]


def store_tables(spark, folder: str | Path, values: Mapping[str, Any],
                 groups: tuple[str, ...], new: tuple[str, ...] | None = None) -> list[str]:
    """Write the registered stage tables of the ``new`` groups (default: all ``groups``) and
    ``bmc_parameter`` into the lake, then ``_cohort.json`` listing the tables of ``groups``;
    re-register the views on the written files. Returns notes for the user (why nothing was
    stored, when the lake is read-only)."""
    root = local_lake(folder)
    if not os.access(root, os.W_OK):
        return [f"{folder} is not writable: the bmc_* tables were not stored in the lake "
                f"(they lived in this Spark session only)"]
    (root / BUILD_MANIFEST).unlink(missing_ok=True)  # stale until the new tables are in
    rows = [(k, BY_NAME[k].show(v), BY_NAME[k].why) for k, v in values.items()]
    spark.createDataFrame(rows, "name string, value string, why string") \
        .createOrReplaceTempView("bmc_parameter")
    tables = [*_group_tables(groups), "bmc_parameter"]

    def write(table: str) -> None:
        tmp = root / f".{table}.writing"
        shutil.rmtree(tmp, ignore_errors=True)
        spark.table(table).coalesce(STORE_FILES).write.parquet(spark_uri(tmp))
        tidy(tmp)

    written = [*_group_tables(new or groups), "bmc_parameter"]
    with ThreadPoolExecutor(STORE_THREADS) as pool:  # small jobs: scheduling is the cost
        list(pool.map(write, written))
    for table in written:
        target = root / table
        shutil.rmtree(target, ignore_errors=True)
        (root / f".{table}.writing").rename(target)
        spark.read.parquet(spark_uri(target)).createOrReplaceTempView(table)
    text = json.dumps({
        "format": "bmc-cohort spark tables 1",
        "fingerprint": lake_fingerprint(root),
        "parameters": _shown(values),
        "groups": list(groups),
        "tables": tables,
    }, indent=1) + "\n"
    (root / BUILD_MANIFEST).write_text(text, encoding="utf-8")
    _STORED_VIEWS[_app(spark)] = (str(root.resolve()), text)
    return []


def lake_up_to_date(folder: str | Path, values: Mapping[str, Any], group: str = "cohort"
                    ) -> bool:
    """True when the lake holds ``group``'s tables built with ``values`` from its current
    contents and the current ``queries/``."""
    built = stored_build(folder)
    return bool(built) and group in built.get("groups", []) \
        and built.get("parameters") == _shown(values) \
        and built.get("fingerprint") == lake_fingerprint(folder)


def lake_engine(spark, folder: str | Path, params: Mapping[str, Any] | None = None,
                group: str = "cohort") -> SparkEngine:
    """A :class:`~cohort.engine.SparkEngine` over the lake with the ``bmc_*`` tables of
    ``group`` built with ``params``: read from the lake when stored there up to date, else
    built now (and stored)."""
    job = cohort_spark if group == "cohort" else screen_spark
    job(spark, folder, params, reuse=True)
    return SparkEngine(spark)


def evidence_spark(spark, folder: str | Path, patient_id: str,
                   params: Mapping[str, Any] | None = None):
    """``bmc evidence`` on Spark: one patient's ledger from the lake's ``bmc_*`` tables (the
    screen's too: the ledger shows what put a patient on the screen, as on DuckDB)."""
    from .evidence import read_evidence

    return read_evidence(lake_engine(spark, folder, params, "screen"), patient_id)


def check_spark(spark, folder: str | Path, truth_csv: str | Path,
                params: Mapping[str, Any] | None = None):
    """``bmc check`` on Spark: the lake's cohort against the labels in ``truth_csv``."""
    from .check import check_built, read_truth

    labels = read_truth(truth_csv)
    return check_built(lake_engine(spark, folder, params), labels)
