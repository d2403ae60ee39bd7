"""``load_lake``: FHIR NDJSON to the Parquet lake of ``bmc export``, built by Spark.

For exports too large for one DuckDB process. The result is the folder ``bmc export`` writes
(one folder per table, hive-partitioned by ``patient_shard``, ``_export.json``), so
``bmc cohort --engine spark --db DIR`` reads it the same way; and it holds the same rows as
``bmc load`` followed by ``bmc export`` would, because each step of the DuckDB loader is
repeated here with the same rule:

* **inputs** are found by :func:`etl.sources.discover` (files, folders, globs, Bulk manifests
  with ``deleted[]`` and ``error[]``). NDJSON (plain or gzip, detected by magic number as the
  DuckDB loader does) is read by Spark; every input is reached through a symlink named
  ``<index>.ndjson[.gz]`` in the work folder, so the file a line came from is a number and
  Spark's codec (chosen by file name) matches the content;
* **line numbers** (1-based, blank lines counted): Spark's text source has none, so one cheap
  pass counts the lines of each file block (``_metadata.file_block_start``) and the second
  numbers each line from its block's base and ``monotonically_increasing_id`` (contiguous
  within a block, which one task reads in order). No Python touches a line on this path;
* **JSON documents and Bundles** (small next to Bulk NDJSON) are walked on the driver with
  :func:`etl.bundles.walk_document`, exactly the records the DuckDB loader makes (derived ids,
  entry paths, fullUrls, DELETE entries), and handed to Spark as rows. A Bundle written as an
  NDJSON line is collected and walked the same way;
* **rejections**: lines that are not a JSON object with a known ``resourceType`` and an ``id``
  get the DuckDB loader's reason from :func:`etl.ingest.diagnose` (run on the executors, on
  those lines only); resources whose ``required``-tagged columns are NULL in a declared view
  are rejected with the same text; ``load_error`` never holds content;
* **versions** (:mod:`etl.versions`): a window per ``(type, id)`` -- highest numeric versionId,
  then lastUpdated, then load order (``_rid``); a later deletion removes the winner;
* **references** (:mod:`etl.references`): ``urn:uuid:`` / fullUrl and conditional
  ``Type?identifier=system|value`` references resolved when exactly one current resource
  matches; ``#contained`` becomes ``Type/id#x``; the rest listed in ``unresolved_reference``.

``_rid`` is ``file index << 40 | line`` for NDJSON lines (load order, unique, no global
numbering pass) and ``file index << 40 | 1 << 39 | n`` for records walked on the driver; the
same value is in the declared tables and in ``resource``. ``resource.content_hash`` is Spark's
``xxhash64`` of the line (DuckDB's ``hash()`` is not available on Spark; the column only ever
compares resources of one engine).

The lake is written into a hidden sibling folder and renamed into place at the end: a failure
or Ctrl-C leaves ``out`` as it was.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from etl.bundles import Record, looks_like_fhir, walk_document
from etl.errors import EtlError, Location, SourceError
from etl.export import (
    MANIFEST,
    SHARD_COLUMN,
    ExportedTable,
    patient_key_column,
    select_list,
    shard_expression,
)
from etl.ingest import resource_types
from etl.load import LoadResult, looks_like_ndjson
from etl.sources import (
    SourceFile,
    TruncatedInput,
    discover,
    head,
    is_gzip,
    iter_decompressed,
    read_document,
    strip_bom,
    text_problem,
)
from etl.store import quote_ident

from .lakes import local_lake, spark_uri
from .session import error_message, materialise, setup_failure
from .views import read_schema, view_settings, view_sql

ProgressFn = Callable[[str], None]

LOAD_ID = 1  # a lake holds one load
THREADS = 4  # Spark jobs submitted at once (views, table writes)
FILE_SHIFT = 40  # _rid = file index << 40 | line (2^23 files, 2^39 lines per file)
DRIVER_BIT = 1 << 39  # records walked on the driver (JSON documents, Bundle lines)
PROVENANCE = ("resource", "source_file", "load_run", "load_error", "deletion",
              "unresolved_reference", "resource_full_url", "resource_identifier")
HEADER_SCHEMA = ("resourceType string, id string, "
                 "meta struct<versionId: string, lastUpdated: string>, identifier string")
_UNRESOLVED = "({c} LIKE 'urn:%' OR {c} LIKE '%?%')"
#: An NDJSON line that may hold a reference getReferenceKey() cannot settle alone (urn:,
#: conditional, contained). Lines without one need no reference pass at all.
REWRITE_HINT = r'"reference"\s*:\s*"(urn:|#|[^"]*\?)'


class LakeError(EtlError):
    """The lake cannot be written (output not empty, not a folder, ...)."""


@dataclass(frozen=True)
class RejectedRecord:
    """One ``load_error`` row: where, what, why -- never content."""

    file: str
    line: int | None
    entry: str | None
    resource_type: str | None
    resource_id: str | None
    reason: str

    def __str__(self) -> str:
        return f"{Location(self.file, self.line, self.entry, self.resource_type, self.resource_id)}" \
               f": {self.reason}"


@dataclass
class LakeSummary(LoadResult):
    """What :func:`load_lake` did: a :class:`etl.load.LoadResult` (``by_type`` status
    counters, ``rejected_sample`` lines, ``mb_per_s`` ...), so the same summary printer serves
    both engines (``files_unchanged`` stays empty: a lake is new); plus where the lake is,
    the first rejections as records and what was written."""

    load_id: int = LOAD_ID
    out: Path | None = None
    rejected_records: list[RejectedRecord] = field(default_factory=list)  # first 10
    tables: list[ExportedTable] = field(default_factory=list)


# -- the output folder --------------------------------------------------------------------------

def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise LakeError(f"{out}: exists and is not a folder; choose a new folder for the lake")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise LakeError(f"{out}: the folder is not empty; choose a new folder or pass "
                            f"--overwrite")
        if not (out / MANIFEST).is_file():
            raise LakeError(f"{out}: not a lake written by bmc (no {MANIFEST}); --overwrite "
                            f"only replaces a lake, choose a new folder")


def _swap_in(staging: Path, out: Path) -> None:
    """Put the finished lake at ``out`` with renames only (the old one, if any, goes last)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def tidy(folder: Path) -> None:
    """Drop Hadoop's ``_SUCCESS`` markers and ``.crc`` side files: the layout is export.py's."""
    for root, _, files in os.walk(folder):
        for name in files:
            if name == "_SUCCESS" or (name.startswith(".") and name.endswith(".crc")):
                os.unlink(os.path.join(root, name))


# -- inputs ------------------------------------------------------------------------------------

@dataclass
class _File:
    index: int  # file_id - 1
    sf: SourceFile
    mtime_ns: int
    kind: str  # as read: ndjson | json
    spark_path: str | None = None  # the symlink Spark reads (NDJSON)
    sha256: str | None = None
    lines: int | None = None
    blank_lines: int = 0
    records: int = 0
    rejected: int = 0
    non_resource: bool = False
    untyped: int = 0  # lines without resourceType (a log file has only those)
    untyped_fhir: int = 0  # ... of which look like FHIR records (then it is no log file)
    other_bad: int = 0
    unreadable_text: bool = False  # UTF-16/32 or CR-only: one load_error row, not read
    saw_resource: bool = False

    @property
    def file_id(self) -> int:
        return self.index + 1


@dataclass
class _DriverRows:
    """Records walked on the driver, as rows for Spark, plus their rejections/deletions."""

    rows: list[tuple] = field(default_factory=list)  # (_rid, file_id, line, entry, full_url,
    #                                                    id_derived, value)
    deletions: list[tuple] = field(default_factory=list)
    errors: list[RejectedRecord] = field(default_factory=list)
    seq: dict[int, int] = field(default_factory=dict)
    skipped_entries: int = 0  # GET/HEAD entries: not records

    def rid(self, f: _File) -> int:
        n = self.seq.get(f.index, 0)
        self.seq[f.index] = n + 1
        return (f.index << FILE_SHIFT) | DRIVER_BIT | n


@contextlib.contextmanager
def _fixed_split(spark) -> Iterator[None]:
    """Pin how Spark cuts the input files for the reads inside the block.

    Lines are numbered from two actions over the same files (block starts, then the lines);
    by default the split size follows the cores registered *at each action*, which dynamic
    allocation changes mid-load, and a line whose block moved was lost in the join. With
    ``spark.sql.files.minPartitionNum`` fixed (the user's value, else the parallelism at the
    start) both actions cut every file the same way.
    """
    key = "spark.sql.files.minPartitionNum"
    old = spark.conf.get(key, None)
    if old is None:
        spark.conf.set(key, str(max(2, spark.sparkContext.defaultParallelism)))
    try:
        yield
    finally:
        if old is None:
            spark.conf.unset(key)


def fingerprint_and_lines(path: Path) -> tuple[str, int]:
    """``(content_sha256(path), lines)`` in one read; lines as Spark's text reader counts
    them (ended by LF, CR or CRLF; a last line without an ending counts), for the check that
    every line read is accounted for."""
    h = hashlib.sha256()
    ends = 0
    prev_cr = False
    last = b""
    for piece in iter_decompressed(path):
        if not piece:
            continue
        h.update(piece)
        crlf = piece.count(b"\r\n") + (1 if prev_cr and piece[:1] == b"\n" else 0)
        ends += piece.count(b"\n") + piece.count(b"\r") - crlf
        prev_cr = piece[-1:] == b"\r"
        last = piece[-1:]
    if last not in (b"", b"\n", b"\r"):
        ends += 1
    return h.hexdigest(), ends


def _walk_records(recs: Iterable[Record], f: _File, line: int | None, out: _DriverRows) -> None:
    """The DuckDB loader's ``_records`` on one document's records."""
    known = resource_types()
    for rec in recs:
        if rec.skip:
            out.skipped_entries += 1
        elif rec.problem:
            out.errors.append(RejectedRecord(f.sf.display, line, rec.entry, rec.resource_type,
                                             rec.resource_id, rec.problem))
            f.rejected += 1
        elif rec.method == "DELETE" or (f.sf.deleted and rec.resource_type != "Bundle"):
            out.deletions.append((out.rid(f), f.file_id, line, rec.entry, rec.resource_type,
                                  rec.resource_id))
        elif rec.resource_type not in known:
            out.errors.append(RejectedRecord(f.sf.display, line, rec.entry,
                                             rec.resource_type[:40], rec.resource_id,
                                             "unknown resourceType"))
            f.rejected += 1
        else:
            f.records += 1
            out.rows.append((out.rid(f), f.file_id, line, rec.entry, rec.full_url,
                             rec.id_derived, rec.text.decode("utf-8")))


def _read_document(f: _File, out: _DriverRows) -> None:
    """A JSON document, parsed and walked on the driver (what ``Loader._json`` does)."""
    try:
        data = read_document(f.sf.path)
    except TruncatedInput as e:
        out.errors.append(RejectedRecord(f.sf.display, None, None, None, None,
                                         f"truncated compressed file: {e}"))
        f.rejected += 1
        return
    f.sha256 = hashlib.sha256(data).hexdigest()
    data = strip_bom(data)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if looks_like_ndjson(data):
            f.kind = "ndjson"  # NDJSON with a .json name: read by Spark like the others
            return
        why = str(e).split(":", 1)[0]  # the same reasons as Loader._json
        if "depth" in why or "recursion" in why.lower():
            reason = "the document is nested too deeply to be read (over 1,000 levels of JSON)"
        elif b"\n" not in data and looks_like_ndjson(data.replace(b"\r", b"\n")):
            reason = text_problem(data[:4096], "ndjson") or "lines end with a lone CR"
        else:
            reason = f"invalid JSON ({why}, at character {e.pos})"
        out.errors.append(RejectedRecord(f.sf.display, None, None, None, None, reason))
        f.rejected += 1
        return
    if not looks_like_fhir(doc):
        f.non_resource = True
        return
    f.saw_resource = True
    _walk_records(walk_document(doc), f, None, out)


# -- the load ----------------------------------------------------------------------------------

def load_lake(spark, paths: Sequence[str | Path], out: str | Path, *, overwrite: bool = False,
              progress: ProgressFn | None = None) -> LakeSummary:
    """Build the Parquet lake of ``bmc export`` at ``out`` from FHIR files with Spark.

    ``paths``: NDJSON files (``.ndjson``, ``.jsonl``, gzip), JSON documents and Bundles,
    folders (recursive, sorted), globs and Bulk Data exports with ``manifest.json``.
    ``out`` must be missing or empty, or (with ``overwrite``) a lake written before, which is
    replaced as a whole. Raises :class:`etl.errors.SourceError` for unusable inputs and
    :class:`LakeError` for an unusable ``out``; in both cases, and on any failure or Ctrl-C,
    nothing is written. ``progress`` gets one short line per step (no patient data).
    """
    started = time.perf_counter()
    started_wall = dt.datetime.now(dt.UTC)
    out = local_lake(out)
    _check_out(out, overwrite)
    disc = discover(paths)
    if not disc.files:
        if disc.unreadable:  # as etl.load.load
            raise SourceError(f"{disc.unreadable[0][0]}: {disc.unreadable[0][1]}")
        raise SourceError("no .json/.ndjson/.jsonl files found in the inputs")

    def say(msg: str) -> None:  # what happens, when: never a value from the data
        if progress is not None:
            progress(f"[{time.perf_counter() - started:6.1f} s] {msg}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        with view_settings(spark):
            build = _Build(spark, disc, staging, say, started, started_wall)
            try:
                summary = build.run()
            except EtlError:
                raise
            except Exception as e:  # a Spark job failed (e.g. a gzip file cut short)
                if not _is_spark_error(e):
                    raise
                raise LakeError(f"the Spark build failed ({build.name_inputs(_root_cause(e))}); "
                                f"nothing was written to {out}") from None
        tidy(staging)
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.out = out
    summary.seconds = time.perf_counter() - started
    say(f"lake written to {out} in {summary.seconds:.1f} s")
    return summary


def _is_spark_error(error: BaseException) -> bool:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return isinstance(error, Py4JJavaError | PySparkException)


def _root_cause(error: BaseException) -> str:
    """The innermost Java cause (``java.io.EOFException: Unexpected end of input stream`` for
    a gzip file cut short) and the file Spark names, without quoted values."""
    java = getattr(error, "java_exception", None)
    if java is None or setup_failure(error) is not None:
        return error_message(error)
    parts, cause = [], java
    while cause is not None:
        parts.append(str(cause.toString()))
        cause = cause.getCause()
    where = next((ln for p in parts for ln in p.splitlines() if "file" in ln.lower()
                  and ("reading" in ln.lower() or "path" in ln.lower())), None)
    text = parts[-1].splitlines()[0] if parts else error_message(error)
    if where and where not in text:
        text += "; " + where.strip()
    return error_message(RuntimeError(text)) + (
        "; a gzip file cut short or corrupt stops the Spark build (`bmc load` lists such "
        "files in load_error)" if "EOFException" in text or "ZipException" in text else "")


class _Build:
    """One lake build (use :func:`load_lake`)."""

    def __init__(self, spark, disc, staging: Path, say: ProgressFn, started: float,
                 started_wall: dt.datetime):
        from etl.declared import compiled_views

        self.spark = spark
        self.disc = disc
        self.staging = staging
        self.work = staging / "_work"
        self.say = say
        self.started = started
        self.started_wall = started_wall
        self.views = list(compiled_views())
        self.summary = LakeSummary(out=staging, skipped=list(disc.skipped))
        self.files: list[_File] = []
        self.driver = _DriverRows()
        self.errors: list[RejectedRecord] = self.driver.errors  # every load_error row (one
        #                                   list: records walked on the driver add theirs too)
        self.types = _duckdb_types(self.views)
        self.rewrite_hint = False  # set when an NDJSON line may need the reference pass
        self.bad_lines = None  # rejected NDJSON lines, classified on the executors
        self.required_rows = None  # resources a table cannot take (executors' rows)
        self.samples: list[RejectedRecord] = []  # the first executor rejections per file

    # -- steps ---------------------------------------------------------------------------
    def run(self) -> LakeSummary:
        from pyspark.sql import functions as F

        self.work.mkdir()
        for display, reason in self.disc.unreadable:  # as Loader.book_unreadable
            self.errors.append(RejectedRecord(display, None, None, None, None, reason))
        for i, sf in enumerate(self.disc.files):
            st = sf.path.stat()
            f = _File(i, sf, st.st_mtime_ns, sf.kind)
            problem = text_problem(head(sf.path), sf.kind)
            if problem is not None:  # UTF-16/32, CR-only: named once, as bmc load does
                f.unreadable_text = True
                f.rejected += 1
                self.errors.append(RejectedRecord(sf.display, None, None, None, None, problem))
            elif f.kind == "json":
                _read_document(f, self.driver)
            self.files.append(f)
        nd = [f for f in self.files if f.kind == "ndjson" and not f.unreadable_text]
        total = sum(f.sf.size for f in self.files)
        self.say(f"reading {len(self.files)} files ({total / 1e6:.1f} MB), "
                 f"{len(nd)} of them NDJSON")
        # the fingerprints (source_file.sha256) are read on the driver while Spark works
        with ThreadPoolExecutor(2) as pool:
            hashing = {f.index: pool.submit(fingerprint_and_lines, f.sf.path)
                       for f in self.files if f.sha256 is None}
            parsed = self._parsed(nd)
            self.say("declared views")
            with ThreadPoolExecutor(THREADS) as jobs:  # small jobs overlap their overheads
                built = list(jobs.map(lambda v: self._view_rows(v, parsed), self.views))
            view_rows = {v.name: rows for v, rows in zip(self.views, built, strict=True)}
            rejected = self._required(view_rows)
            self.say("versions")
            status, deletions = self._settle(parsed, rejected)
            counts = self._count(status, deletions)
            current_rows = self._current(view_rows, status, counts)
            identifiers = self._identifiers(parsed)
            current_rows = self._rewrite_references(current_rows, status, identifiers)
            changed = [n for n, rows in current_rows.items() if rows is not view_rows[n]]
            if changed:  # materialised once: the reference pass and the writes both read them
                with ThreadPoolExecutor(THREADS) as jobs:
                    done = list(jobs.map(lambda n: self._persist(current_rows[n]), changed))
                current_rows.update(zip(changed, done, strict=True))
            self.say("writing the lake")
            resource = status.select(
                "_rid", F.lit(LOAD_ID).alias("load_id"), "file_id", "line", "entry",
                F.col("rtype").alias("resource_type"), "id", "id_derived", "version_id",
                "last_updated", "content_hash", "full_url", "status")
            writes = [(v.name, current_rows[v.name]) for v in self.views] + [
                ("resource", resource), ("deletion", deletions),
                ("unresolved_reference", self._unresolved(current_rows, status)),
                ("resource_full_url", self._full_url_df(status)),
                ("resource_identifier", identifiers.join(
                    status.where("status <> 'rejected'").select("_rid"), "_rid", "left_semi"))]
            with ThreadPoolExecutor(THREADS) as jobs:
                tables = list(jobs.map(lambda w: self._write(*w), writes))
            self.summary.unresolved = {r["reason"]: r["count"] for r in self.spark.read.parquet(
                str(self.staging / "unresolved_reference")).groupBy("reason").count().collect()}
            driver_lines = {}
            for f in self.files:
                if f.index in hashing:
                    f.sha256, driver_lines[f.index] = hashing[f.index].result()
            self._check_lines_read(driver_lines)
        self._finish_files(counts)
        self._summarise_errors()
        tables += [
            self._write_small("source_file", self._source_file_rows()),
            self._write_small("load_run", self._load_run_rows()),
        ]
        tables.append(self._write("load_error", self._load_error_df()))
        order = [v.name for v in self.views] + list(PROVENANCE)
        tables.sort(key=lambda t: order.index(t.name))
        self._manifest(tables)
        shutil.rmtree(self.work, ignore_errors=True)
        self.summary.tables = tables
        return self.summary

    def _count(self, status, deletions) -> dict:
        """One job for what the summary and source_file need: resources per file, type and
        status; deletions per file and whether they applied."""
        from pyspark.sql import functions as F

        driver = F.col("_rid").bitwiseAND(F.lit(DRIVER_BIT)) != 0
        rows = status.groupBy("file_id", "rtype", "status", driver.alias("driver")).count()
        dels = deletions.groupBy("file_id", F.lit(None).cast("string").alias("rtype"),
                                 F.when(F.col("applied"), "applied").otherwise("not applied")
                                 .alias("status"),
                                 driver.alias("driver")).count()
        out = {"resources": [], "deletions": []}
        for r in rows.unionAll(dels).collect():
            kind = "deletions" if r["status"] in ("applied", "not applied") else "resources"
            out[kind].append(r)
        return out

    def name_inputs(self, text: str) -> str:
        """``text`` with the work folder's input links replaced by the files they stand for."""
        import re

        names = {f.index: f.sf.display for f in self.files}
        return re.sub(r"(?:file:)?/*\S*/_work/inputs/(\d+)\.ndjson(?:\.gz)?\.?",
                      lambda m: names.get(int(m.group(1)), m.group(0)), text)

    def _persist(self, df, *, exact: bool = False):
        """Materialise ``df`` (:func:`.session.materialise`): the view plans are large, and
        every later action would otherwise analyse them again (measured: a minute for one
        union of the reference columns of 10 views over 22 MB). ``exact``: rows a recompute
        could number differently (the lines), kept in two replicas off ``local``."""
        return materialise(df, exact=exact)

    # -- NDJSON lines ----------------------------------------------------------------------
    def _parsed(self, nd: list[_File]):
        """Every accepted record (NDJSON lines and driver records) with its header fields."""
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        spark = self.spark
        parts = []
        if nd:
            links = self.work / "inputs"
            links.mkdir()
            for f in nd:
                gz = is_gzip(f.sf.path)
                link = links / f"{f.index:07d}.ndjson{'.gz' if gz else ''}"
                link.symlink_to(f.sf.path)
                f.spark_path = spark_uri(link)
            split = _fixed_split(spark)
            split.__enter__()  # left below, once both actions have read the files
            raw = spark.read.text([f.spark_path for f in nd]).select(
                "value", F.col("_metadata.file_name").alias("fname"),
                F.col("_metadata.file_block_start").alias("blk"),
                F.monotonically_increasing_id().alias("mid"))
            raw = raw.withColumn("idx", F.split("fname", r"\.").getItem(0).cast("int"))
            blank = F.col("value").rlike(r"^\s*$")
            blocks = raw.groupBy("idx", "blk").agg(
                F.min("mid").alias("first"), F.count(F.lit(1)).alias("n"),
                F.sum(blank.cast("long")).alias("blank")).collect()
            base_rows, seen = [], {}
            by_index = {f.index: f for f in nd}
            for b in sorted(blocks, key=lambda r: (r["idx"], r["blk"])):
                f = by_index[b["idx"]]
                before = seen.get(f.index, 0)
                base_rows.append((b["idx"], b["blk"], b["first"], before))
                seen[f.index] = before + b["n"]
                f.blank_lines += b["blank"]
            for f in nd:
                f.lines = seen.get(f.index, 0)
            self.say("lines numbered")
            bases = spark.createDataFrame(
                base_rows, "idx int, blk long, first long, before long")
            lines = (raw.where(~blank).join(F.broadcast(bases), ["idx", "blk"])
                     .select("idx", (F.col("mid") - F.col("first") + F.col("before") + 1)
                             .alias("line"), "value"))
            lines = lines.withColumn("value", F.when(
                F.col("value").startswith("\ufeff"), F.expr("substring(value, 2)")
            ).otherwise(F.col("value")))
            h = lines.select(
                ((F.col("idx").cast("long") * F.lit(1 << FILE_SHIFT)) + F.col("line"))
                .alias("_rid"), (F.col("idx") + 1).alias("file_id"), "line", "value",
                F.from_json("value", HEADER_SCHEMA).alias("h"))
            known = sorted(resource_types())
            obj = F.ltrim("value").startswith("{") & F.col("h.resourceType").isNotNull()
            ok = obj & F.col("h.id").isNotNull()
            try:
                h = self._persist(h.withColumn(  # a Bundle without id (Bulk deleted/) is walked too
                    "kind", F.when(obj & (F.col("h.resourceType") == "Bundle"), F.lit("bundle"))
                    .when(ok & F.col("h.resourceType").isin(known), F.lit("ok"))
                    .otherwise(F.lit("bad"))), exact=True)
            finally:
                split.__exit__(None, None, None)
            self._check_lines_numbered(nd, h)
            self._odd_lines(h)
            good = h.where("kind = 'ok'").select(
                "_rid", "file_id", "line", F.lit(None).cast("string").alias("entry"),
                F.lit(None).cast("string").alias("full_url"), F.lit(False).alias("id_derived"),
                "value", "h")
            parts.append(good)
        if self.driver.rows:
            schema = T.StructType([
                T.StructField("_rid", T.LongType()), T.StructField("file_id", T.IntegerType()),
                T.StructField("line", T.LongType()), T.StructField("entry", T.StringType()),
                T.StructField("full_url", T.StringType()),
                T.StructField("id_derived", T.BooleanType()),
                T.StructField("value", T.StringType())])
            docs = spark.createDataFrame(self.driver.rows, schema)
            parts.append(docs.withColumn("h", F.from_json("value", HEADER_SCHEMA)))
        if not parts:
            schema = ("_rid long, file_id int, line long, entry string, full_url string, "
                      "id_derived boolean, value string, h struct<resourceType: string, "
                      "id: string, meta: struct<versionId: string, lastUpdated: string>, "
                      "identifier: string>")
            parts.append(spark.createDataFrame([], schema))
        allp = parts[0]
        for p in parts[1:]:
            allp = allp.unionByName(p)
        deleted = [f.file_id for f in self.files if f.sf.deleted]
        allp = allp.coalesce(self._partitions(allp))  # after h's checkpoint: ids are set
        return self._persist(allp.select(
            "_rid", "file_id", "line", "entry", "full_url", "id_derived", "value",
            F.col("h.resourceType").alias("rtype"), F.col("h.id").alias("id"),
            F.col("h.meta.versionId").alias("version_id"),
            F.col("h.meta.lastUpdated").alias("last_updated"),
            F.col("h.identifier").alias("identifier"),
            (F.col("file_id").isin(deleted) & (F.col("_rid").bitwiseAND(F.lit(DRIVER_BIT)) == 0))
            .alias("from_deleted")))

    def _check_lines_numbered(self, nd: list[_File], h) -> None:
        """Every non-blank line Spark counted reached the numbered records: a line lost
        between the two reads (a changed input split) fails the build, never the lake."""
        reached = {r["file_id"]: r["count"] for r in h.groupBy("file_id").count().collect()}
        for f in nd:
            want = (f.lines or 0) - f.blank_lines
            if reached.get(f.file_id, 0) != want:
                raise LakeError(
                    f"{f.sf.display}: Spark numbered {reached.get(f.file_id, 0):,} of "
                    f"{want:,} non-blank lines (the input split changed between two reads); "
                    f"nothing was written")

    def _check_lines_read(self, driver_lines: dict[int, int]) -> None:
        """Spark's line count of every NDJSON file equals the driver's own count of the same
        bytes (read for the fingerprint): loaded + rejected + blank = lines in the file."""
        for f in self.files:
            counted = driver_lines.get(f.index)
            if f.spark_path is not None and counted is not None and f.lines != counted:
                raise LakeError(
                    f"{f.sf.display}: Spark read {f.lines or 0:,} lines where the file has "
                    f"{counted:,}; nothing was written (was the file changed while it was "
                    f"read?)")

    def _partitions(self, df) -> int:
        """How many partitions the records need: one per 128 MB (Spark's file split), at
        least the default parallelism, never more than ``df`` has. A small export read from
        many files (and the driver rows) is otherwise spread over many tiny partitions, and
        every later job over every view pays a task per partition."""
        total = sum(f.sf.size for f in self.files)
        split = 128 << 20
        want = max(self.spark.sparkContext.defaultParallelism, -(-total // split))
        return max(1, min(df.rdd.getNumPartitions(), want))

    def _odd_lines(self, h) -> None:
        """Lines that are not plain resources. Rejected lines get the DuckDB loader's reason
        from ``diagnose`` on the executors (:mod:`.classify`); their text never comes to the
        driver, only per-file counts and the first rejections of each file for the summary
        (``load_error`` is written from the executors' rows). Bundles written as NDJSON lines
        are walked on the driver like JSON documents, streamed one partition at a time."""
        from pyspark.sql import functions as F

        from .classify import rejection_udf

        by_id = {f.file_id: f for f in self.files}
        for r in h.where("kind <> 'bad'").groupBy("file_id").agg(
                F.max(F.col("value").rlike(REWRITE_HINT).cast("int")).alias("hint")).collect():
            by_id[r["file_id"]].saw_resource = True
            self.rewrite_hint = self.rewrite_hint or r["hint"] == 1
        bundles = h.where("kind = 'bundle'").select("file_id", "line", "value")
        for r in bundles.orderBy("file_id", "line").toLocalIterator():
            _walk_records(walk_document(orjson.loads(r["value"])), by_id[r["file_id"]],
                          r["line"], self.driver)
        bad = h.where("kind = 'bad'").select(
            "file_id", "line", rejection_udf()("value").alias("d")).select(
            "file_id", "line", F.lit(None).cast("string").alias("entry"),
            "d.resource_type", "d.resource_id", "d.reason", "d.untyped", "d.untyped_fhir")
        self.bad_lines = self._persist(bad, exact=False)
        for r in self.bad_lines.groupBy("file_id").agg(
                F.count(F.lit(1)).alias("n"), F.sum(F.col("untyped").cast("int")).alias("u"),
                F.sum(F.col("untyped_fhir").cast("int")).alias("uf")).collect():
            f = by_id[r["file_id"]]
            f.rejected += r["n"]
            f.untyped += r["u"]
            f.untyped_fhir += r["uf"]
            f.other_bad += r["n"] - r["u"]
        self.samples += self._first_errors(self.bad_lines)

    def _first_errors(self, rows) -> list[RejectedRecord]:
        """The first rejections of each file (by line, entry) as records: what the summary
        shows (its first 10 overall are among them), bounded by files x 10."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        names = {f.file_id: f.sf.display for f in self.files}
        order = Window.partitionBy("file_id").orderBy(F.col("line").asc_nulls_first(),
                                                      F.col("entry").asc_nulls_first())
        first = rows.withColumn("n", F.row_number().over(order)).where("n <= 10")
        return [RejectedRecord(names[r["file_id"]], r["line"], r["entry"], r["resource_type"],
                               r["resource_id"], r["reason"]) for r in first.collect()]

    # -- views, rejections, versions -------------------------------------------------------
    def _view_rows(self, view, parsed):
        from pyspark.sql import functions as F

        src = parsed.where((F.col("rtype") == view.resource) & ~F.col("from_deleted")).select(
            "_rid", F.from_json("value", read_schema(view)).alias("r"))
        name = f"_bmc_lake_{view.name}_{uuid.uuid4().hex[:8]}"
        src.createOrReplaceTempView(name)
        rows = self.spark.sql(view_sql(view, name))
        out = self._persist(rows.select("_rid", *[f"`{c.name}`" for c in view.columns]))
        self.say(f"view {view.name} built")
        return out

    def _required(self, view_rows):
        """``(_rid, why)`` of resources a table cannot take (``Ingestor._check_required``:
        the first table in declaration order names the reason), a DataFrame (they may be
        many: they stay on the executors), or None when no table has a required column."""
        from pyspark.sql import functions as F

        parts, reasons = [], []
        for v in self.views:
            cols = [c.name for c in v.columns if any(n == "required" for n, _ in c.tags)]
            if not cols:
                continue
            cond = F.lit(False)
            for c in cols:
                cond = cond | F.col(f"`{c}`").isNull()
            parts.append(view_rows[v.name].where(cond).select(
                "_rid", F.lit(len(reasons) + 1).alias("k")))
            reasons.append(f"table {v.name} needs {', '.join(cols)}; the resource has none "
                           f"(e.g. no subject)")
        if not parts:
            return None
        both = parts[0]
        for p in parts[1:]:
            both = both.unionByName(p)
        texts = F.array(*[F.lit(r) for r in reasons])
        return both.groupBy("_rid").agg(F.min("k").alias("k")).select(
            "_rid", F.element_at(texts, F.col("k")).alias("why"))

    def _settle(self, parsed, rejected):
        """``resource`` with its status, and ``deletion`` with ``applied`` (etl.versions)."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        spark = self.spark
        dels = parsed.where("from_deleted").select(
            "_rid", F.lit(LOAD_ID).alias("load_id"), "file_id", "line", "entry",
            F.col("rtype").alias("resource_type"), "id")
        if self.driver.deletions:
            dels = dels.unionByName(spark.createDataFrame(
                [(r, LOAD_ID, fid, ln, e, t, i) for r, fid, ln, e, t, i in self.driver.deletions],
                "_rid long, load_id int, file_id int, line long, entry string, "
                "resource_type string, id string"))
        has_deletions = bool(self.driver.deletions) or any(f.sf.deleted for f in self.files)
        if has_deletions:
            dels = self._persist(dels)
        res = parsed.where(~F.col("from_deleted")).select(
            "_rid", "file_id", "line", "entry", "rtype", "id", "id_derived", "version_id",
            "last_updated", F.xxhash64("value").cast("decimal(20,0)").alias("content_hash"),
            "full_url")
        if rejected is not None:
            res = res.join(rejected, "_rid", "left")
        else:
            res = res.withColumn("why", F.lit(None).cast("string"))
        order = Window.partitionBy("rtype", "id", F.col("why").isNull()).orderBy(
            F.expr("try_cast(version_id AS BIGINT)").desc_nulls_last(),
            F.expr("try_cast(last_updated AS TIMESTAMP)").desc_nulls_last(),
            F.col("_rid").desc())
        last_del = (dels.where("id IS NOT NULL").groupBy("resource_type", "id")
                    .agg(F.max("_rid").alias("del_rid"))
                    .withColumnRenamed("resource_type", "rtype"))
        same = F.struct("content_hash", "version_id", "last_updated")
        ranked = res.withColumn("rn", F.row_number().over(order)).withColumn(
            "same_as_winner", same.eqNullSafe(F.first(same).over(order))).join(
            last_del, ["rtype", "id"], "left")
        status = ranked.select(  # identical copies of the winner: duplicates (etl.versions)
            "*", F.when(F.col("why").isNotNull(), F.lit("rejected"))
            .when((F.col("rn") > 1) & F.col("same_as_winner"), F.lit("duplicate"))
            .when(F.col("rn") > 1, F.lit("superseded"))
            .when(F.col("del_rid").isNotNull() & (F.col("del_rid") > F.col("_rid")),
                  F.lit("deleted"))
            .otherwise(F.lit("current")).alias("status")).drop("rn", "del_rid", "same_as_winner")
        status = self._persist(status)
        if rejected is not None:  # load_error rows, written from the executors
            self.required_rows = status.where("why IS NOT NULL").select(
                "file_id", "line", "entry", F.col("rtype").alias("resource_type"),
                F.col("id").alias("resource_id"), F.col("why").alias("reason"))
            self.samples += self._first_errors(self.required_rows)
        if not has_deletions:
            return status, dels.withColumn("applied", F.lit(False))
        gone = (status.where("status = 'deleted'").select(
            F.col("rtype").alias("resource_type"), "id", F.col("_rid").alias("winner")))
        deletions = dels.join(gone, ["resource_type", "id"], "left").select(
            *dels.columns, (F.col("winner").isNotNull() & (F.col("winner") < F.col("_rid")))
            .alias("applied"))
        return status, self._persist(deletions)

    def _current(self, view_rows, status, counts):
        """Each view's rows of current resources only."""
        from pyspark.sql import functions as F

        if all(r["status"] == "current" for r in counts["resources"]):
            return dict(view_rows)
        lost = self._persist(status.where("status <> 'current'").select("_rid"))
        return {name: rows.join(F.broadcast(lost), "_rid", "left_anti")
                for name, rows in view_rows.items()}

    # -- references --------------------------------------------------------------------------
    def _identifiers(self, parsed):
        """``resource_identifier``: (_rid, system, value) of every resource's identifiers."""
        from pyspark.sql import functions as F

        one = "struct<system: string, value: string>"
        ids = parsed.where("identifier IS NOT NULL AND NOT from_deleted").select(
            "_rid", F.when(F.ltrim("identifier").startswith("["),
                           F.from_json("identifier", f"array<{one}>"))
            .otherwise(F.array(F.from_json("identifier", one))).alias("ids"))
        return (ids.select("_rid", F.explode("ids").alias("i")).select(
            "_rid", F.col("i.system").alias("system"), F.col("i.value").alias("value"))
            .where("value IS NOT NULL"))

    def _ref_columns(self, view):
        return [c for c in view.columns if c.is_reference_key]

    def _ref_pairs(self, view, rows):
        """``(column_name, _rid, reference)`` for every non-NULL reference of ``view``'s
        reference columns, in one pass over its rows (not one pass per column), or None."""
        from pyspark.sql import functions as F

        parts = []
        for c in self._ref_columns(view):
            col = quote_ident(c.name).replace('"', "`")
            pair = f"named_struct('c', '{c.name}', 'r', {{x}})"
            if c.collection:
                parts.append(f"transform(coalesce(CAST({col} AS array<string>), "
                             f"CAST(array() AS array<string>)), x -> {pair.format(x='x')})")
            else:
                parts.append(f"array({pair.format(x=f'CAST({col} AS string)')})")
        if not parts:
            return None
        pairs = rows.selectExpr("_rid", f"inline(concat({', '.join(parts)}))")
        return pairs.where("r IS NOT NULL").select(
            F.col("c").alias("column_name"), "_rid", F.col("r").alias("reference"))

    def _rewrite_references(self, rows, status, identifiers):
        """What ``getReferenceKey()`` could not resolve from the text alone
        (etl.references.rewrite): urn:uuid / fullUrl, conditional, ``#contained``."""
        from pyspark.sql import functions as F

        if not self.rewrite_hint and not self.driver.rows:
            return rows
        looks = _UNRESOLVED.format(c="ref") + " OR ref LIKE '#%'"
        cands = None
        for v in self.views:
            pairs = self._ref_pairs(v, rows[v.name])
            if pairs is None:
                continue
            refs = pairs.select(F.col("reference").alias("ref")).where(looks)
            cands = refs if cands is None else cands.unionByName(refs)
        if cands is None:
            return rows
        found = self._persist(cands.distinct())
        n = found.count()
        if not n:
            return rows
        self.say(f"resolving {n} distinct references")
        mapping = self._persist(self._resolve(found, status, identifiers))
        out = {}
        for v in self.views:
            cols = self._ref_columns(v)
            if not cols:
                out[v.name] = rows[v.name]
                continue
            # each row gets a map of its own resolvable references only (a join on the
            # executors, never one map of every reference of the load)
            pairs = self._ref_pairs(v, rows[v.name])
            per_row = (pairs.join(mapping, pairs.reference == mapping.ref)
                       .groupBy("_rid").agg(F.map_from_entries(F.collect_set(
                           F.struct("ref", "key"))).alias("m")))
            df = rows[v.name].join(per_row, "_rid", "left")
            for c in cols:
                name = quote_ident(c.name).replace('"', "`")
                types = ", ".join("'" + t + "'" for t in c.reference_types)
                new = ("CASE WHEN try_element_at(m, {x}) IS NOT NULL THEN try_element_at(m, {x}) "
                       "WHEN {x} LIKE '#%' THEN concat(resource_key, {x}) ELSE {x} END")
                keep = ("TRUE" if not types else
                        f"({{n}} IS NULL OR {_UNRESOLVED.format(c='{n}')} OR {{n}} LIKE '%#%' "
                        f"OR split_part({{n}}, '/', 1) IN ({types}))")
                if c.collection:
                    expr = (f"filter(transform({name}, x -> {new.format(x='x')}), "
                            f"n -> {keep.format(n='n')})")
                else:
                    n_sql = new.format(x=name)
                    expr = f"CASE WHEN {keep.format(n=f'({n_sql})')} THEN {n_sql} END"
                df = df.withColumn(c.name, F.expr(expr))
            out[v.name] = df.drop("m")
        return out

    def _resolve(self, refs, status, identifiers):
        """``(ref, key)``: ref -> ``Type/id`` where exactly one current resource matches
        (``_MAP``), for the distinct references ``refs`` (a one-column DataFrame ``ref``);
        all on the executors: urn:/fullUrl references join ``full_url``, conditional ones
        (``Type?identifier=system|value``) are parsed in SQL and join the identifiers."""
        from pyspark.sql import functions as F

        current = status.where("status = 'current'").select(
            "_rid", "rtype", F.concat_ws("/", "rtype", "id").alias("key"), "full_url")

        def unique(df):
            return (df.groupBy("ref").agg(F.countDistinct("key").alias("n"),
                                          F.first("key").alias("key"))
                    .where("n = 1").select("ref", "key"))

        urls = refs.where("ref LIKE 'urn:%' OR ref NOT LIKE '%?%'")
        by_url = unique(current.join(urls, current.full_url == urls.ref))
        ident = F.regexp_replace(F.regexp_extract(
            "ref", r"\?(?:[^&]*&)*?identifier=([^&]*)", 1), "%7[Cc]", "|")
        conds = refs.where("ref LIKE '%?%' AND ref LIKE '%identifier=%'").select(
            "ref", F.split_part("ref", F.lit("?"), F.lit(1)).alias("t"), ident.alias("ident"))
        has_system = F.instr("ident", "|") > 0
        c = conds.select(
            "ref", F.when(F.col("t").rlike("^[A-Za-z]+$"), F.col("t")).alias("ctype"),
            F.when(has_system, F.substring_index("ident", "|", 1)).alias("csystem"),
            F.when(has_system, F.expr("substring(ident, instr(ident, '|') + 1)"))
            .otherwise(F.col("ident")).alias("cvalue"))
        j = (c.join(identifiers, (identifiers.value == c.cvalue)
                    & (c.csystem.isNull() | (c.csystem == "")
                       | (identifiers.system == c.csystem)))
             .join(current, "_rid").where("rtype = ctype"))
        by_identifier = unique(j)
        return by_identifier.unionByName(by_url.join(by_identifier.select("ref"), "ref",
                                                     "left_anti"))

    def _unresolved(self, rows, status):
        """``unresolved_reference`` (``references.list_unresolved`` on a new database)."""
        from pyspark.sql import functions as F

        parts = []
        for v in self.views:
            pairs = self._ref_pairs(v, rows[v.name])
            if pairs is not None:
                parts.append(pairs.select(F.lit(v.name).alias("table_name"), "column_name",
                                          "_rid", "reference"))
        schema = "table_name string, column_name string, _rid long, reference string"
        refs = self.spark.createDataFrame([], schema)
        for p in parts:
            refs = refs.unionByName(p)
        refs = refs.where("reference IS NOT NULL").distinct()
        keys = status.where("status = 'current'").select(
            F.concat_ws("/", "rtype", "id").alias("reference")).distinct()
        looks = _UNRESOLVED.format(c="reference")
        unres = refs.where(looks).withColumn("reason", F.lit("unresolvable"))
        missing = (refs.where(f"NOT ({looks}) AND reference NOT LIKE '%#%'")
                   .join(keys, "reference", "left_anti")
                   .withColumn("reason", F.lit("target not loaded")))
        return unres.unionByName(missing).select(
            "table_name", "column_name", "_rid", "reference", "reason")

    # -- provenance rows on the driver ----------------------------------------------------
    def _finish_files(self, counts) -> None:
        by_id = {f.file_id: f for f in self.files}
        for r in counts["resources"]:
            self.summary.by_type.setdefault(r["rtype"], Counter())[r["status"]] += r["count"]
            f = by_id[r["file_id"]]
            if r["status"] == "rejected":  # a table's required column: counted, not loaded
                f.rejected += r["count"]
                if r["driver"]:  # driver records were counted as loaded while walked
                    f.records -= r["count"]
            elif not r["driver"]:  # NDJSON lines
                f.records += r["count"]
        for r in counts["deletions"]:
            self.summary.deletions += r["count"]
            if r["status"] == "applied":
                self.summary.deletions_applied += r["count"]
            if not r["driver"]:
                by_id[r["file_id"]].saw_resource = True
        for f in self.files:
            if f.kind == "ndjson" and not f.saw_resource and f.other_bad == 0 and \
                    f.untyped_fhir == 0 and f.untyped > 0:
                f.non_resource = True
            if f.non_resource:
                f.rejected = 0
                self.errors = [e for e in self.errors if e.file != f.sf.display]
                self.summary.non_resource_files.append(f.sf.display)
            self.summary.files_read += 1
            self.summary.bytes_read += f.sf.size
            self.summary.rejected += f.rejected
            if f.sf.export_error:
                self.summary.export_errors += f.records
        self.summary.rejected += len(self.disc.unreadable)
        self.summary.skipped_entries = self.driver.skipped_entries

    def _summarise_errors(self) -> None:
        """The summary's first 10 rejections: from the driver's (documents, Bundles,
        unreadable files) and the first of each file found on the executors."""
        gone = set(self.summary.non_resource_files)
        errs = sorted([e for e in [*self.errors, *self.samples] if e.file not in gone],
                      key=lambda e: (e.file, e.line if e.line is not None else -1,
                                     e.entry or ""))
        self.summary.rejected_records = errs[:10]
        self.summary.rejected_sample = [str(e) for e in errs[:10]]

    def _load_error_df(self):
        """``load_error``: the driver's rows and the executors' (rejected lines, required
        columns), without the files found to be no FHIR at all (as ``bmc load``)."""
        from pyspark.sql import functions as F

        schema = ("load_id int, file string, line long, entry string, resource_type string, "
                  "resource_id string, reason string")
        out = self.spark.createDataFrame(self._load_error_rows(), schema)
        names = self.spark.createDataFrame(
            [(f.file_id, f.sf.display) for f in self.files if not f.non_resource],
            "file_id int, file string")
        for rows in (self.bad_lines, self.required_rows):
            if rows is not None:
                out = out.unionByName(rows.join(F.broadcast(names), "file_id").select(
                    F.lit(LOAD_ID).alias("load_id"), "file", "line", "entry",
                    "resource_type", "resource_id", "reason"))
        return out

    def _source_file_rows(self) -> list[tuple]:
        return [(f.file_id, LOAD_ID, str(f.sf.path), f.kind, f.sf.size, f.mtime_ns, f.sha256,
                 f.lines if f.kind == "ndjson" else None, f.blank_lines, f.records, f.rejected,
                 f.non_resource, f.sf.deleted, f.sf.export_error) for f in self.files]

    def _load_run_rows(self) -> list[tuple]:
        s = self.summary
        return [(LOAD_ID, self.started_wall, dt.datetime.now(dt.UTC), json.dumps(
            {"validate": False, "strict": False, "keep_raw": False, "engine": "spark"}),
            s.files_read, 0, s.bytes_read, sum(sum(c.values()) for c in s.by_type.values()),
            s.rejected)]

    def _load_error_rows(self) -> list[tuple]:
        return [(LOAD_ID, e.file, e.line, e.entry, e.resource_type, e.resource_id, e.reason)
                for e in self.errors]

    def _full_url_df(self, status):
        return status.where("full_url IS NOT NULL AND status <> 'rejected'").select(
            "_rid", "full_url")

    # -- writing ------------------------------------------------------------------------------
    def _write(self, table: str, df) -> ExportedTable:
        """One table folder as export.py lays it out, columns cast to its exported types.
        Rows are counted from the written files' footers (no second pass over the data)."""
        from pyspark.sql import functions as F

        cols = self.types[table]
        df = df.select(*[F.col(f"`{n}`").cast(_spark_type(t)).alias(n) for n, t in cols])
        target = self.staging / table
        key = patient_key_column(table, [n for n, _ in cols])
        if key is not None:
            shard = shard_expression(f"coalesce(`{key}`, '')")
            df.withColumn(SHARD_COLUMN, F.expr(shard)).write \
                .partitionBy(SHARD_COLUMN).option("compression", "zstd").parquet(str(target))
            rows = _parquet_rows(target)
            if rows:
                self.say(f"written {table}")
                return ExportedTable(table, rows, True, tuple(cols))
            shutil.rmtree(target)  # no rows: one unpartitioned file keeps the schema
        df.coalesce(1).write.option("compression", "zstd").parquet(str(target))
        out = ExportedTable(table, _parquet_rows(target), False, tuple(cols))
        self.say(f"written {table}")
        return out

    def _write_small(self, table: str, rows: list[tuple]) -> ExportedTable:
        """A provenance table made on the driver (one row per file, the load, its errors):
        written with pyarrow as the one unpartitioned file Spark's ``coalesce(1)`` write would
        make, same Parquet types, without a Spark job."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = self.types[table]
        schema = pa.schema([(n, _arrow_type(t)) for n, t in cols])
        data = pa.Table.from_pylist([dict(zip((n for n, _ in cols), r, strict=True))
                                     for r in rows], schema=schema)
        target = self.staging / table
        target.mkdir()
        pq.write_table(data, target / f"part-00000-{uuid.uuid4()}-c000.zstd.parquet",
                       compression="zstd")
        self.say(f"written {table}")
        return ExportedTable(table, data.num_rows, False, tuple(cols))

    def _manifest(self, tables: list[ExportedTable]) -> None:
        (self.staging / MANIFEST).write_text(json.dumps({
            "format": "bmc-cohort parquet export 1",
            "shard_column": SHARD_COLUMN,
            "tables": [{"name": t.name, "rows": t.rows, "partitioned": t.partitioned,
                        "columns": [list(c) for c in t.columns]} for t in tables],
        }, indent=1) + "\n", encoding="utf-8")


# -- types -------------------------------------------------------------------------------------

def _duckdb_types(views) -> dict[str, list[tuple[str, str]]]:
    """Each table's columns and types exactly as ``bmc export`` writes them (read from an
    empty in-memory DuckDB with the loader's schema, through export.py's select list)."""
    import duckdb

    from etl.store import ensure_schema

    con = duckdb.connect()
    try:
        ensure_schema(con, views)
        out = {}
        for table in [v.name for v in views] + list(PROVENANCE):
            cols = [(r[0], r[1]) for r in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [table]).fetchall()]
            described = con.execute(
                f"DESCRIBE SELECT {select_list(cols)} FROM {quote_ident(table)}").fetchall()
            out[table] = [(r[0], r[1]) for r in described]
        return out
    finally:
        con.close()


_SIMPLE = {"VARCHAR": "string", "BIGINT": "bigint", "INTEGER": "int", "DOUBLE": "double",
           "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP WITH TIME ZONE": "timestamp",
           "SMALLINT": "smallint", "FLOAT": "float"}


def _spark_type(duck: str) -> str:
    """A Spark SQL type for an exported DuckDB type (the ones the lake uses)."""
    t = duck.upper()
    if t.endswith("[]"):
        return f"array<{_spark_type(duck[:-2])}>"
    if t.startswith("DECIMAL"):
        return t.lower()
    if t in _SIMPLE:
        return _SIMPLE[t]
    raise ValueError(f"no Spark type for the DuckDB type {duck}")


def _arrow_type(duck: str):
    """The Arrow type Spark writes for an exported DuckDB type (the provenance tables')."""
    import pyarrow as pa

    simple = {"string": pa.string(), "bigint": pa.int64(), "int": pa.int32(),
              "boolean": pa.bool_(), "double": pa.float64(),
              "timestamp": pa.timestamp("us", tz="UTC")}
    return simple[_spark_type(duck)]


def _parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in folder.rglob("*.parquet"))



__all__ = ["LakeError", "LakeSummary", "RejectedRecord", "load_lake", "tidy"]
