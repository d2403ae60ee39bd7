"""``bmc``: the command line. A thin shell: parse arguments, call one library function, render.

Exit codes (also in README and ``--help``):
  0  success (for ``load``: everything loaded)
  1  failure; nothing was changed
  2  usage error (bad option, missing file)
  3  ``load`` only: loaded, but some records were rejected (see the load_error table)
"""
from __future__ import annotations

import contextlib
import errno
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from etl.errors import EtlError, SourceError, is_interruption, printable, valid_id

from .errors import CohortError, UsageError
from .parameters import PARAMETERS

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
INTERRUPTED = "interrupted; the command stopped"


class _BatchGroup(TyperGroup):
    """The ``bmc`` group: ``-v/--verbose`` and ``--summary FILE`` are taken wherever they
    stand (before or after the subcommand: batch scripts append them), and the summary is
    written whatever the exit code."""

    def main(self, args=None, *a, **kw):
        args = list(sys.argv[1:] if args is None else args)
        _state.update(verbose=False, summary=None, run=None)
        rest: list[str] = []
        it = iter(range(len(args)))
        for i in it:
            arg = args[i]
            if arg == "--":
                rest.extend(args[i:])
                break
            if arg in ("-v", "--verbose"):
                _state["verbose"] = True
            elif arg == "--summary" and i + 1 < len(args):
                _state["summary"] = Path(args[i + 1])
                next(it, None)
            elif arg.startswith("--summary="):
                _state["summary"] = Path(arg.split("=", 1)[1])
            else:
                rest.append(arg)
        command = next((a for a in rest if not a.startswith("-")), None)
        _state["run"] = {"command": command, "arguments": [printable(a) for a in rest],
                         "started": time.time(), "inputs": [], "counts": {}, "timings": {},
                         "error": None}
        try:
            return super().main(rest, *a, **kw)
        except SystemExit as e:
            _write_summary(e.code if isinstance(e.code, int) else EXIT_FAIL)
            raise
        except click.exceptions.Exit as e:  # standalone_mode=False
            _write_summary(e.exit_code)
            raise


app = typer.Typer(
    cls=_BatchGroup,
    help="bmc-cohort: FHIR R4 exports -> DuckDB (SQL-on-FHIR views) -> bone marrow "
         "carcinomatosis cohorts and outcomes.\n\nExit codes: 0 success, 1 failure (nothing "
         "changed), 2 usage error, 3 loaded with some records rejected.\n\n-v/--verbose and "
         "--summary FILE may also follow the subcommand.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


class _PlainConsole(Console):
    """stderr: text printed here never acts on the terminal. Control characters in a string
    (an escape sequence or a newline in a file name) are shown escaped, so nothing from the
    data can colour the terminal or forge a log line."""

    def print(self, *objects, **kw) -> None:
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kw)


# markup off: messages carry file names, ids and options, whose [brackets] must print as is
err = _PlainConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)
out = Console(highlight=False, soft_wrap=True)  # stdout is scripted: never wrap lines
_state: dict = {"verbose": False, "summary": None, "run": None}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"bmc-cohort {version('bmc-cohort')}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors "
                                                                "(also after the subcommand).")
                       ] = False,
    summary: Annotated[Path | None, typer.Option(
        "--summary", help="Also write the run's summary as JSON to this file (counts, "
                          "rejections by reason, timings, exit code, inputs with sha256), "
                          "for schedulers; also after the subcommand.")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    # both are taken out of the arguments by _BatchGroup before click sees them
    _state["verbose"] = _state["verbose"] or verbose


def _record(counts: dict | None = None, timings: dict | None = None,
            inputs: list | None = None, **extra) -> None:
    """Add what a command did to the run's summary (written by ``--summary FILE``)."""
    run = _state.get("run")
    if run is None:
        return
    run["counts"].update(counts or {})
    run["timings"].update(timings or {})
    run["inputs"].extend(p if isinstance(p, dict) else str(p) for p in inputs or [])
    run.update(extra)


def _write_summary(code: int | None) -> None:
    """Write ``--summary FILE`` (if asked): never fails the command it describes."""
    path, run = _state.get("summary"), _state.get("run")
    if path is None or run is None:
        return
    from .output import summary_document

    try:
        doc = summary_document(run, EXIT_OK if code is None else code, time.time())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as e:
        _error(f"--summary {printable(str(path))}: cannot write ({e.strerror or e})")


def _error(message: str) -> None:
    message = printable(message)
    run = _state.get("run")
    if run is not None:
        run["error"] = message
    err.print(Text.assemble(("error: ", "red"), message))


def _duckdb_message(e: Exception) -> tuple[str, int]:
    """A DuckDB error as one line and an exit code: Ctrl-C during a query, a full disk or a
    file size limit, a lock held by another process."""

    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if is_interruption(e):
        return INTERRUPTED, EXIT_FAIL
    if "lock" in first.lower():
        return (f"the database is in use by another process ({first}); try again when it "
                f"has finished"), EXIT_FAIL
    return f"database error: {first}", EXIT_FAIL


@contextlib.contextmanager
def _errors():
    """The one place library errors become a message and an exit code: unusable input or a
    bad option (SourceError, UsageError) exits 2, any other ETL or cohort error, a DuckDB
    error (disk full, a lock, Ctrl-C in a query) or a failed write exits 1 -- one line, no
    traceback unless --verbose."""
    import duckdb

    try:
        yield
    except (SourceError, UsageError) as e:
        _error(str(e))
        raise typer.Exit(EXIT_USAGE) from None
    except (EtlError, CohortError) as e:
        if _state["verbose"]:
            traceback.print_exc()
        _error(str(e))
        raise typer.Exit(EXIT_FAIL) from None
    except duckdb.Error as e:
        if _state["verbose"]:
            traceback.print_exc()
        message, code = _duckdb_message(e)
        _error(message)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        _error(INTERRUPTED)
        raise typer.Exit(EXIT_FAIL) from None
    except RuntimeError as e:  # DuckDB's 'Query interrupted' (Ctrl-C during a query)
        if not is_interruption(e):
            raise
        _error(INTERRUPTED)
        raise typer.Exit(EXIT_FAIL) from None
    except OSError as e:  # disk full, a file size limit (ulimit -f), a folder that vanished
        if _state["verbose"]:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        why = e.strerror or errno.errorcode.get(e.errno or 0) or str(e)
        _error(f"{where}cannot write or read ({why})")
        raise typer.Exit(EXIT_FAIL) from None


def _prepare_out(path: Path | None, *, folder: bool) -> None:
    """Before the work: make the folder ``--out`` names (or the one its file goes in), so a
    long run never ends in 'No such file or directory'; say so if it cannot be made."""
    if path is None:
        return
    target = path if folder else path.parent
    if not folder and path.is_dir():
        raise UsageError(f"--out {path}: is a folder; give a file name")
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"--out {path}: is a file; give a folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {path}: cannot create the folder {target} "
                         f"({e.strerror or e})") from None


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=err,
                    transient=True, disable=not err.is_terminal)


def _db_file(value: Path | None) -> Path | None:
    """--db callback: an existing file that is not a DuckDB database (a CSV, a JSON export, a
    SQLite file) is a usage error (exit 2), before any input is read or DuckDB opens it."""
    from etl.store import NotADatabase, check_database_file

    if value is not None:
        try:
            check_database_file(value)
        except NotADatabase as e:
            _error(str(e))
            raise typer.Exit(EXIT_USAGE) from None
    return value


# -- load ---------------------------------------------------------------------------------------
@app.command()
def load(
    paths: Annotated[list[str], typer.Argument(help="FHIR files, folders or globs: Bundles, "
                                                     "NDJSON (.ndjson/.jsonl, .gz), manifests.")],
    db: Annotated[Path, typer.Option(callback=_db_file, help="DuckDB database file (created if missing); with "
                                          "--engine spark, the Parquet lake folder to write.")],
    validate: Annotated[bool, typer.Option(help="Validate every resource against FHIR R4 "
                                                "(fhir.resources R4B), on all cores.")] = False,
    strict: Annotated[bool, typer.Option(help="Reject the whole load on the first bad record.")] = False,
    keep_raw: Annotated[bool, typer.Option(help="Also keep each resource's JSON in resource_raw "
                                                "(slower, much larger).")] = False,
    engine: Annotated[str, typer.Option(help="duckdb (default: load into the database file) | "
                                             "spark (build the Parquet lake `bmc export` "
                                             "writes, straight from the files).")] = "duckdb",
    overwrite: Annotated[bool, typer.Option(help="--engine spark: replace the lake at --db "
                                                 "as a whole.")] = False,
    spark_master: Annotated[str, typer.Option(help="Spark master URL (--engine spark).")
                            ] = "local[*]",
    spark_conf: Annotated[list[str] | None, typer.Option(
        help="A Spark setting key=value (repeatable).")] = None,
    memory_limit: Annotated[str | None, typer.Option(
        help="DuckDB's memory for the load, e.g. 1GB (default: 256MB, less on a small "
             "machine; the whole process stays near twice this).")] = None,
) -> None:
    """Load FHIR exports into DB in one transaction (re-loading the same input changes nothing).

    With --engine spark, DB is a new Parquet lake folder (the layout of `bmc export`), written
    whole or not at all; every other command reads it with --engine spark.
    Exit codes: 0 all loaded, 1 failure (database unchanged), 2 usage error,
    3 loaded but some records rejected (listed in the load_error table).
    """
    from etl.load import LoadOptions
    from etl.load import load as run_load

    with _errors():
        _check_engine(engine)
        if engine == "spark":
            given = [flag for flag, on in (("--validate", validate), ("--strict", strict),
                                           ("--keep-raw", keep_raw),
                                           ("--memory-limit", memory_limit is not None)) if on]
            if given:
                raise UsageError(f"{', '.join(given)}: DuckDB loads only (not with --engine "
                                 f"spark)")
            from etl.spark.load import load_lake

            result = _on_spark(spark_master, spark_conf, lambda spark: load_lake(
                spark, paths, db, overwrite=overwrite,
                progress=lambda msg: err.print(f"load: {msg}", markup=False)), db)
        else:
            if overwrite:
                raise UsageError("--overwrite: Spark lakes only (a DuckDB load never replaces "
                                 "the database; re-loading the same input changes nothing)")
            with _progress() as bar:
                task = bar.add_task("loading", total=None)
                progress = _file_progress(bar, task)
                options = LoadOptions(validate=validate, strict=strict, keep_raw=keep_raw)
                if memory_limit is not None:
                    options.memory_limit = memory_limit
                result = run_load(db, paths, options, progress)
    _print_load(result)
    if engine != "spark":
        _record_load(db, result)
        _codes_hint(db)
    raise typer.Exit(EXIT_PARTIAL if result.rejected else EXIT_OK)


def _codes_hint(db: Path) -> None:
    """The last line of a load summary: a pointer to `bmc codes` when the data holds codes
    that look like a concept the definition needs but that no code list maps."""
    from .codes import code_inventory
    from .runner import open_database
    from .usercodes import collect

    try:
        con = open_database(db, read_only=True)
        try:
            hint = code_inventory(con, collect(db=db)).hint(db)
        finally:
            con.close()
    except CohortError as e:  # the load itself succeeded: say why there is no hint
        err.print(f"hint: `bmc codes --db {db}` could not run ({e})", markup=False)
        return
    if hint:
        err.print(hint, markup=False, soft_wrap=True)


def _file_progress(bar: Progress, task):
    """The load's progress: a bar on a terminal; one line per file on stderr otherwise (a
    batch job's log shows which file a long load is on)."""
    last: dict[str, str | None] = {"name": None}

    def progress(done: int, total: int, name: str) -> None:
        bar.update(task, completed=done, total=total, description=printable(Path(name).name[:30]))
        if not err.is_terminal and name != last["name"]:
            last["name"] = name
            err.print(f"load: {printable(name)} ({done / 1e6:.1f} of {total / 1e6:.1f} MB)")

    return progress


def _record_load(db: Path, r) -> None:
    """The load's figures for --summary: counts per type and status, rejections by reason
    (the reason up to its first parenthesis: positions differ), and the files read with the
    sha256 the loader computed."""
    if _state.get("summary") is None:
        return
    import duckdb

    by_reason: dict[str, int] = {}
    inputs: list[dict] = []
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        con = None
    if con is not None:
        try:
            for reason, n in con.execute(
                    "SELECT split_part(reason, ' (', 1), count(*) FROM load_error "
                    "WHERE load_id = ? GROUP BY 1 ORDER BY 1", [r.load_id]).fetchall():
                by_reason[reason] = n
            inputs = [{"path": printable(p), "bytes": size, "sha256": sha}
                      for p, size, sha in con.execute(
                          "SELECT path, size, sha256 FROM source_file WHERE load_id = ? "
                          "ORDER BY file_id", [r.load_id]).fetchall()]
        finally:
            con.close()
    _record(counts={"load_id": r.load_id, "loaded": r.loaded, "rejected": r.rejected,
                    "files_read": r.files_read, "files_unchanged": len(r.files_unchanged),
                    "non_resource_files": len(r.non_resource_files),
                    "deletions": r.deletions, "deletions_applied": r.deletions_applied,
                    "unresolved_references": sum(r.unresolved.values()),
                    "bytes_read": r.bytes_read,
                    "by_type": {t: dict(c) for t, c in sorted(r.by_type.items())}},
            timings={"load_seconds": round(r.seconds, 3)}, inputs=inputs,
            rejected_by_reason=by_reason)


def _print_load(r) -> None:
    t = Table(title=f"load {r.load_id}", show_edge=False, title_justify="left")
    for col in ("resource type", "loaded", "superseded", "duplicate", "deleted", "rejected"):
        t.add_column(col, justify="right" if col != "resource type" else "left")
    for rtype, c in sorted(r.by_type.items()):
        t.add_row(rtype, *(str(c.get(k, 0)) for k in ("current", "superseded", "duplicate",
                                                       "deleted", "rejected")))
    err.print(t)
    err.print(f"files read {r.files_read}, unchanged since an earlier load {len(r.files_unchanged)}, "
              f"non-resource files skipped {len(r.non_resource_files)}"
              + (f" ({', '.join(Path(f).name for f in r.non_resource_files[:5])})"
                 if r.non_resource_files else ""))
    for name, why in r.skipped:  # not JSON, symlinks to nothing, FIFOs, ...: never silent
        err.print(f"  skipped: {name}: {why}")
    if r.skipped_entries:
        err.print(f"bundle entries skipped {r.skipped_entries} (GET/HEAD requests: reads, "
                  f"not records)")
    if r.deletions:
        err.print(f"deletions {r.deletions} ({r.deletions_applied} applied)")
    unres = sum(r.unresolved.values())
    err.print(f"rejected records {r.rejected}; unresolved references {unres}"
              + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(r.unresolved.items())) + ")"
                 if unres else ""))
    for line in r.rejected_sample:
        err.print(f"  rejected: {line}")
    if r.rejected > len(r.rejected_sample):
        err.print(f"  ... {r.rejected - len(r.rejected_sample)} more in table load_error")
    if r.issues:  # kept resources: bad values stored as NULL, --validate messages
        err.print(f"findings in loaded resources {sum(r.issues.values())} ("
                  + ", ".join(f"{k} {v}" for k, v in sorted(r.issues.items()))
                  + "); listed in table load_issue")
    rate = f"{r.mb_per_s:.0f}" if r.mb_per_s >= 10 else f"{r.mb_per_s:.2g}"
    err.print(f"{r.bytes_read / 1e6:.1f} MB in {r.seconds:.2f} s ({rate} MB/s)")


# -- tables -------------------------------------------------------------------------------------
@app.command()
def tables(
    markdown: Annotated[bool, typer.Option(help="Print Markdown column docs.")] = False,
) -> None:
    """List the declared tables (etl/views/*.json) and their columns."""
    from etl.declared import compiled_views, load_view_json

    with _errors():
        views = compiled_views()
        docs = load_view_json()
    if markdown:
        from etl.declared import render_markdown
        out.print(render_markdown(views), markup=False, soft_wrap=True)
        return
    for v in views:
        about = docs[v.name].get("description", "") if v.name else ""
        out.print(f"[bold]{v.name}[/bold] ({v.resource}): {about}")
        for c in v.columns:
            out.print(f"  {c.name:28} {c.duckdb_type:12} {c.description or ''}", markup=False)


@app.command()
def rebuild(
    db: Annotated[Path, typer.Option(callback=_db_file, help="DuckDB database file made by `bmc load`.")],
    allow_changed: Annotated[bool, typer.Option(help="Rebuild even if source files changed "
                                                     "or vanished since they were loaded.")] = False,
) -> None:
    """Rebuild every table from the source files recorded in DB, replaying its loads in order.

    Use it after changing a ViewDefinition. Exit codes: 0 rebuilt, 1 failure (unchanged).
    """
    from etl.rebuild import rebuild as run_rebuild

    with _errors():
        result = run_rebuild(db, allow_changed=allow_changed)
    for r in result.loads:
        _print_load(r)
    _record(counts={"loads_replayed": len(result.loads),
                    "resources": sum(r.loaded for r in result.loads),
                    "rejected": sum(r.rejected for r in result.loads),
                    "changed_files": len(result.changed_files),
                    "missing_files": len(result.missing_files),
                    "user_tables_kept": list(result.kept_tables)},
            timings={"load_seconds": round(sum(r.seconds for r in result.loads), 3)})
    for f in result.changed_files:
        err.print(Text.assemble(("changed since loaded: ", "yellow"), printable(str(f))))
    for f in result.missing_files:
        err.print(Text.assemble(("missing: ", "yellow"), printable(str(f))))
    for t in result.kept_tables:
        err.print(f"kept your table {t}")
    for v in result.dropped_views:
        err.print(Text.assemble(("view not kept (it reads a table the rebuild does not "
                                 "keep): ", "yellow"), printable(v)))


# -- export -------------------------------------------------------------------------------------
@app.command()
def export(
    db: Annotated[Path, typer.Option(callback=_db_file, help="DuckDB database file made by `bmc load`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the Parquet files "
                                                        "(missing or empty).")],
    overwrite: Annotated[bool, typer.Option(help="Replace the table folders in a non-empty "
                                                 "--out.")] = False,
) -> None:
    """Write every declared table (and the provenance tables) as Parquet for Spark, DuckDB or
    any lakehouse engine: one folder per table, hive-partitioned by patient_shard, UTC
    microsecond timestamps. Exit codes: 0 done, 1 failure (nothing written)."""
    from etl.export import export_parquet

    with _errors():
        written = export_parquet(db, out_dir, overwrite=overwrite)
    _record(counts={"tables": len(written), "rows": {t.name: t.rows for t in written}},
            inputs=[db], outputs=[str(out_dir)])
    for t in written:
        err.print(f"{t.name:<28} {t.rows:>10} rows{'  (by patient_shard)' if t.partitioned else ''}")
    err.print(f"exported {len(written)} tables to {out_dir}")


# -- view ---------------------------------------------------------------------------------------
@app.command()
def view(
    view_file: Annotated[Path, typer.Argument(help="A SQL-on-FHIR v2 ViewDefinition (JSON).")],
    paths: Annotated[list[str], typer.Argument(help="FHIR files, folders or globs.")],
    format: Annotated[str, typer.Option("--format", help="csv | json | ndjson")] = "csv",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
) -> None:
    """Evaluate one ViewDefinition over FHIR files, without a database file, and print the rows.

    Exit codes: 0 rows printed, 1 invalid view or unreadable input, 2 usage error.
    """
    from etl.adhoc import run_view_file

    if format not in ("csv", "json", "ndjson"):
        _error(f"--format must be csv, json or ndjson, not {format!r}")
        raise typer.Exit(EXIT_USAGE)
    if not view_file.is_file():
        _error(f"{view_file}: no such file")
        raise typer.Exit(EXIT_USAGE)
    with _errors():
        _prepare_out(out_file, folder=False)
        text = run_view_file(view_file, paths, format)
        _record(inputs=[view_file, *paths], outputs=[str(out_file)] if out_file else [])
        if out_file:
            out_file.write_text(text)
        else:
            sys.stdout.write(text)


# -- synth --------------------------------------------------------------------------------------
@app.command()
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("sample_bundles"),
    patients: Annotated[int | None, typer.Option(help="Stream a Bulk NDJSON export of this many "
                                                       "patients instead of the committed sample.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, byte-identical output).")] = 2011,
) -> None:
    """Write the synthetic sample (the paper's 22 patients inside an institution) or a big export."""
    from cohort import synth as synth_mod

    with _errors():
        _prepare_out(out_dir, folder=True)
        summary: synth_mod.SampleSummary | synth_mod.BulkSummary
        if patients is None:
            summary = synth_mod.write_sample(out_dir, seed=seed)
        else:
            with _progress() as bar:
                task = bar.add_task("patients", total=patients)
                summary = synth_mod.stream_bulk(out_dir, patients, seed=seed,
                                                progress=lambda n: bar.update(task, completed=n))
    _record(outputs=[str(out_dir)])
    err.print(str(summary))


# -- demo ---------------------------------------------------------------------------------------
@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the database (demo.duckdb) "
                                                     "and the report (report/); an earlier "
                                                     "demo's there are replaced.")
                       ] = Path("bmc-demo"),
) -> None:
    """The main job on the bundled sample: load it into a new database, build the cohort, run
    the screen, write the outcomes report (found cohort beside the paper's 22) and summarise.
    Everything goes to ./bmc-demo/ (or --out); the last line on stderr is the report's path.

    Exit codes: 0 done, 1 failure.
    """
    from etl.load import load as run_load

    from .outcomes.run import report_summary, write_report
    from .paths import sample_bundles_dir
    from .screen import run_screen

    folder = out_dir.absolute()  # printed paths open from anywhere
    with _errors():
        _prepare_out(folder, folder=True)
    db = folder / "demo.duckdb"
    for old in (db, db.with_name(db.name + ".wal")):  # a new database, not a second load
        old.unlink(missing_ok=True)
    src = sample_bundles_dir() / "bundles"
    with _errors(), _progress() as bar:
        task = bar.add_task("loading sample", total=None)
        result = run_load(db, [src], progress=lambda d, t, n: bar.update(task, completed=d, total=t))
    _print_load(result)
    with _errors():
        err.print("demo: building the cohort and running the screen")
        con = _open(db)
        try:
            scr = run_screen(con)
        finally:
            con.close()
        _print_funnel(scr.cohort.funnel, scr.notes)
        rep, written = write_report(db, folder / "report",
                                    ids_file=sample_bundles_dir() / "roles.csv",
                                    progress=lambda msg: err.print(f"report: {msg}"))
    out.print(json.dumps({
        "database": str(db), "resources": result.loaded, "rejected": result.rejected,
        "cohort": scr.cohort.counts, "screen": scr.counts, **report_summary(rep),
        "report": str(written["html"]),
    }, indent=2))
    err.print(f"demo: the report, to open in a browser: {written['html']}")


# -- engines (the commands that read the tables) ------------------------------------------------
_ENGINE_HELP = ("duckdb (default; --db is a database file) | spark (--db is a Parquet lake "
                "folder written by `bmc export` or `bmc load --engine spark`; the bmc_* "
                "tables are stored there and reused while up to date).")


def _on_spark(master: str, conf: list[str] | None, job, lake: Path):
    """Run ``job(spark)`` in a Spark session started for this command and stopped after;
    the ``lake`` location is checked first (a URI lake is refused before a JVM starts)."""
    from etl.spark.lakes import local_lake
    from etl.spark.session import parse_conf, spark_run

    local_lake(lake)
    try:
        settings = parse_conf(conf)
    except ValueError as e:
        raise UsageError(str(e)) from None
    with spark_run(master, settings) as spark:
        return job(spark)


def _check_engine(engine: str) -> None:
    if engine not in ("duckdb", "spark"):
        raise UsageError(f"--engine must be duckdb or spark, not {engine!r}")


def _on_engine(engine: str, db: Path, master: str, conf: list[str] | None, on_duckdb, on_spark,
               stale=None):
    """``on_duckdb(con)`` on the database file, or ``on_spark(spark)`` in a Spark session.

    The database is opened read-only unless ``stale(con)`` says the ``bmc_*`` tables must be
    (re)built: then several reviewers, and a process holding the database open read-only, can
    work at once; only a job that must write opens it for writing."""
    _check_engine(engine)
    if engine == "spark":
        return _on_spark(master, conf, on_spark, db)
    con = _open(db, read_only=True)
    try:
        if stale is None or not stale(con):
            return on_duckdb(con)
    finally:
        con.close()
    con = _open(db)
    try:
        return on_duckdb(con)
    finally:
        con.close()


# -- report -------------------------------------------------------------------------------------
@app.command()
def report(
    db: Annotated[Path, typer.Option(callback=_db_file, help="DuckDB database made by `bmc load` (the cohort "
                                          "tables are built with default parameters if "
                                          "`bmc cohort` has not run).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html, report.md, the "
                                                        "figures and one CSV per table.")],
    cutoff: Annotated[str | None, typer.Option(help="Data cut-off YYYY-MM-DD: follow-up ends "
                                                    "there (default: each patient's last "
                                                    "record).")] = None,
    ids: Annotated[Path | None, typer.Option(help="Patients to analyse beside the found cohort: "
                                                  "a CSV with patient_id (and paper_patient) or "
                                                  "one id per line (default: the sample's "
                                                  "sample_bundles/roles.csv, the paper's 22).")
                   ] = None,
    truth: Annotated[Path | None, typer.Option(
        help="CSV patient_id,label (1/0): the report's sensitivity section adds sensitivity "
             "and PPV of each variant of the definition.")] = None,
    sensitivity: Annotated[bool, typer.Option(
        "--sensitivity", help="Add the definition's sensitivity section (the cohort rebuilt "
                              "with one choice changed at a time; DuckDB only).")] = False,
    engine: Annotated[str, typer.Option(help=_ENGINE_HELP)] = "duckdb",
    spark_master: Annotated[str, typer.Option(help="Spark master URL (--engine spark).")
                            ] = "local[*]",
    spark_conf: Annotated[list[str] | None, typer.Option(
        help="A Spark setting key=value (repeatable).")] = None,
    codes: CodesOpt = None, config: ConfigOpt = None,
) -> None:
    """Reproduce the paper's analyses from DB and write the published-vs-reproduced report.

    With --codes or a project file (bmc.toml beside DB, or --config), the cohort tables are
    first brought up to date with them.

    Exit codes: 0 report written, 1 failure (no cohort table, unreadable database), 2 usage
    error (bad date, missing --ids file).
    """
    from datetime import date

    from .outcomes.run import write_report

    try:
        cut = date.fromisoformat(cutoff) if cutoff else None
    except ValueError:
        _error(f"--cutoff {cutoff!r}: expected a date YYYY-MM-DD")
        raise typer.Exit(EXIT_USAGE) from None
    def progress(msg: str) -> None:
        err.print(f"report: {msg}")

    if ids is None:  # the paper's 22 of the sample: on other data a note says they are absent
        from .paths import sample_bundles_dir

        default_ids = sample_bundles_dir() / "roles.csv"
        ids = default_ids if default_ids.is_file() else None
    with _errors():
        _prepare_out(out_dir, folder=True)
    with _errors():
        _check_engine(engine)
        uc = _user_codes(codes, config, db, engine)
        params = _params(None, uc) if uc.parameters else None
        if engine == "spark":
            from .outcomes.spark import write_report_spark

            _, written = _on_spark(spark_master, spark_conf, lambda spark: write_report_spark(
                spark, db, out_dir, ids_file=ids, cutoff=cut, params=params,
                progress=progress), db)
        else:
            if uc.has_rows or uc.parameters:
                from .definition import ensure_built

                con = _open(db)
                try:
                    ensure_built(con, params, codes=uc)
                finally:
                    con.close()
            _, written = write_report(db, out_dir, ids_file=ids, cutoff=cut, progress=progress,
                                      truth_file=truth, sensitivity=sensitivity)
    _record(counts={"files_written": len(written)}, inputs=[db] + ([ids] if ids else []),
            outputs=[str(written["html"])])
    err.print(f"report: {len(written)} files in {out_dir}")
    out.print(str(written["html"]))


# -- cohort, screen, evidence, check (cohort.definition / screen / evidence / check) ------------
_PARAM_HELP = ("Set a definition parameter, e.g. --param smear_window_days=7 (repeatable). "
               "Parameters: " + ", ".join(p.name for p in PARAMETERS)
               + " (cohort/parameters.py says why each default is what it is).")


def _check_format(fmt: str, out_file: Path | None, *, fhir: bool = False) -> None:
    from .output import FORMATS

    if fhir and fmt == "fhir":  # cohort and screen: the result as a FHIR resource
        _prepare_out(out_file, folder=False)
        return
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "parquet" and out_file is None:
        raise UsageError("--format parquet needs --out FILE")
    _prepare_out(out_file, folder=False)


#: --format table written to --out FILE: a file has no terminal to measure.
FILE_WIDTH = 200


def _table_width(out_file: Path | None) -> int:
    """Cells per line for --format table: 200 in a file; the terminal's width on a terminal;
    COLUMNS, else 80, in a pipe (what `less` and a log show without folding)."""
    import os
    import shutil

    if out_file is not None:
        return FILE_WIDTH
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    try:
        return max(int(os.environ.get("COLUMNS", "")), 20)
    except ValueError:
        return 80


def _emit_text(text: str, out_file: Path | None) -> None:
    if out_file:
        with _errors():
            out_file.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _emit(df, fmt: str, out_file: Path | None, title: str) -> None:
    """Data to --out or stdout in the chosen format; ``table`` laid out for the width."""
    from .output import text, to_table, write_parquet

    _record(counts={"rows": len(df)}, outputs=[str(out_file)] if out_file else [])
    if fmt == "parquet":
        with _errors():
            if out_file is None:  # the options check refuses this before any work is done
                raise UsageError("--format parquet needs --out FILE")
            write_parquet(df, out_file)
        return
    if fmt == "table":
        _emit_text(to_table(df, _table_width(out_file), title), out_file)
        return
    _emit_text(text(df, fmt), out_file)


def _print_funnel(funnel, notes: list[str]) -> None:
    """The funnel as plain aligned lines (stderr is often a log file, not a terminal)."""
    import pandas as pd

    def n(v) -> str:
        return "" if pd.isna(v) else str(int(v))

    err.print("attrition, per person (lost only = fails this rule and passes every other):",
              markup=False)
    err.print(f"  {'step':>4}  {'rule':22} {'patients':>8} {'removed':>8} {'lost only':>9} "
              f"{'coded BMC':>9}  description", markup=False)
    for r in funnel.itertuples():
        name = r.rule if r.kind == "rule" else f"route: {r.rule}"
        err.print(f"  {n(r.step):>4}  {name:22} {n(r.patients):>8} {n(r.excluded):>8} "
                  f"{n(r.lost_only_by_rule):>9} {n(r.lost_only_with_coded_dx):>9}  "
                  f"{r.description}", markup=False, soft_wrap=True)
    for note in notes:  # warnings say so themselves
        err.print(note if note.startswith("warning: ") else f"note: {note}", markup=False,
                  soft_wrap=True)


def _open(db: Path, *, read_only: bool = False):
    from .runner import check_loaded, open_database

    con = open_database(db, read_only=read_only)
    check_loaded(con, str(db))
    return con


# Options shared by the commands that read the tables (declared once).
DbOpt = Annotated[Path, typer.Option(callback=_db_file, help="DuckDB database filled by `bmc load` (with --engine "
                                          "spark: a Parquet lake folder).")]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", help=_PARAM_HELP)]
FormatOpt = Annotated[str, typer.Option("--format", help="table | csv | json | parquet | fhir "
                                                        "(cohort: a Group; screen: a List)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout "
                                                         "(required for parquet).")]
EngineOpt = Annotated[str, typer.Option(help=_ENGINE_HELP)]
MasterOpt = Annotated[str, typer.Option(help="Spark master URL (--engine spark).")]
ConfOpt = Annotated[list[str] | None, typer.Option(help="A Spark setting key=value (repeatable), "
                                                        "e.g. spark.executor.memory=8g.")]
CodesOpt = Annotated[list[Path] | None, typer.Option(
    "--codes", help="Your own codes: a CSV with the header of queries/reference/valuesets.csv, "
                    "lab_codes.csv, units.csv or code_systems.csv, or a folder of them "
                    "(repeatable). Recorded in bmc_build and bmc_user_code.")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", help="Project file (default: bmc.toml beside --db when present): code rows, "
                     "code files and [parameters]; --param overrides its parameters.")]


def _user_codes(codes: list[Path] | None, config: Path | None, db: Path, engine: str):
    """The user's codes and project file for this run (notes on stderr); Spark refuses rows."""
    from .usercodes import collect

    uc = collect(codes, db=db, config=config)
    if engine == "spark" and uc.has_rows:
        raise UsageError("--codes and code rows in bmc.toml work with --engine duckdb only "
                         "(the Spark runner reads the shipped queries/reference only); "
                         "add the rows to queries/reference/ or run on DuckDB")
    for note in uc.notes():
        err.print(note, markup=False, soft_wrap=True)
    return uc


def _params(param: list[str] | None, uc) -> dict:
    """Parameters: defaults, then the project file's [parameters], then --param."""
    from .parameters import parse_pairs

    return parse_pairs([f"{k}={v}" for k, v in uc.parameters.items()] + list(param or []))


def _run_definition(kind: str, db: Path, param: list[str] | None, format: str,
                    out_file: Path | None, engine: str, spark_master: str,
                    spark_conf: list[str] | None, codes: list[Path] | None = None,
                    config: Path | None = None, funnel_file: Path | None = None):
    """Parse and check the shared options, then build the cohort or run the screen."""
    from .definition import build_cohort
    from .screen import run_screen

    with _errors():
        _check_engine(engine)
        uc = _user_codes(codes, config, db, engine)
        params = _params(param, uc)
        _check_format(format, out_file, fhir=True)
        if (format == "fhir" or funnel_file is not None) and engine == "spark":
            raise UsageError("FHIR output (--format fhir, --funnel) needs --engine duckdb")
        _prepare_out(funnel_file, folder=False)

        def on_spark(spark):
            from .spark_runner import cohort_spark, screen_spark

            job = cohort_spark if kind == "cohort" else screen_spark
            return job(spark, db, params, reuse=True)

        if kind == "cohort":
            return _on_engine(engine, db, spark_master, spark_conf,
                              lambda con: build_cohort(con, params, codes=uc, reuse=True),
                              on_spark, _stale(params, uc))
        return _on_engine(engine, db, spark_master, spark_conf,
                          lambda con: _screen_duckdb(con, params, uc, run_screen), on_spark,
                          _stale(params, uc, "bmc_screen"))


def _stale(params: dict, uc, table: str = "bmc_cohort"):
    """``stale(con)``: True unless ``table`` was built with these parameters, codes and data
    (then the command only reads, and the database is opened read-only)."""
    from .definition import up_to_date
    from .parameters import resolve

    return lambda con: not up_to_date(con, resolve(params), table, uc)


def _screen_duckdb(con, params: dict, uc, run_screen):
    """The screen: read as it stands when ``bmc_screen`` is up to date with these parameters,
    codes and data (no write: works on a read-only database), else run."""
    from .definition import build_cohort, up_to_date
    from .engine import DuckDBEngine
    from .parameters import resolve
    from .runner import RunInfo
    from .screen import read_screen

    if up_to_date(con, resolve(params), "bmc_screen", uc):
        cohort = build_cohort(con, params, codes=uc, reuse=True)
        return read_screen(DuckDBEngine(con), cohort,
                           RunInfo(notes=["screen table reused (same parameters, data and "
                                          "queries)"]))
    return run_screen(con, params, uc)


@app.command()
def cohort(db: DbOpt, param: ParamOpt = None, format: FormatOpt = "table", out_file: OutOpt = None,
           engine: EngineOpt = "duckdb", spark_master: MasterOpt = "local[*]",
           spark_conf: ConfOpt = None, codes: CodesOpt = None, config: ConfigOpt = None,
           funnel_file: Annotated[Path | None, typer.Option(
               "--funnel", help="Also write the attrition funnel as a FHIR MeasureReport "
                                "(JSON) to this file.")] = None) -> None:
    """Find the BMC cohort: the cohort to stdout (or --out), the attrition funnel to stderr.

    The tables bmc_cohort, bmc_funnel, bmc_evidence, ... and bmc_parameter stay in DB.
    Exit codes: 0 done, 1 failure (missing or unloaded database), 2 usage error.
    """
    result = _run_definition("cohort", db, param, format, out_file, engine, spark_master,
                             spark_conf, codes, config, funnel_file)
    _print_funnel(result.funnel, result.notes)
    c = result.counts
    _record(counts=dict(c), timings=dict(result.timings), inputs=[db])
    err.print(f"cohort {c['cohort']} of {c['patients']} patients (histology only "
              f"{c['histology_only']}, smear only {c['smear_only']}, both {c['both']}; "
              f"without a coded marrow diagnosis {c['without_coded_marrow_dx']})")
    if format == "fhir" or funnel_file is not None:
        _emit_fhir(db, "cohort", result, format, out_file, funnel_file)
    if format != "fhir":
        _emit(result.cohort, format, out_file, "BMC cohort")


@app.command()
def screen(db: DbOpt, param: ParamOpt = None, format: FormatOpt = "table", out_file: OutOpt = None,
           engine: EngineOpt = "duckdb", spark_master: MasterOpt = "local[*]",
           spark_conf: ConfOpt = None, codes: CodesOpt = None, config: ConfigOpt = None) -> None:
    """Screen for unrecognised BMC: ranked patients with tier (1, 2, excluded) and reasons.

    Tier 1 meets the definition without a coded marrow diagnosis or marrow report; tier 2 has
    bone metastases and unexplained cytopenia of grade >= 2 and no nRBC result (get a smear).
    Exit codes: 0 done, 1 failure (missing or unloaded database), 2 usage error.
    """
    result = _run_definition("screen", db, param, format, out_file, engine, spark_master,
                             spark_conf, codes, config)
    _print_funnel(result.cohort.funnel, result.notes)
    c = result.counts
    _record(counts={f"tier {k}" if k != "excluded" else k: v for k, v in c.items()},
            timings=dict(result.timings), inputs=[db])
    err.print(f"screen: tier 1 {c['1']}, tier 2 {c['2']}, excluded {c['excluded']}")
    if format == "fhir":
        _emit_fhir(db, "screen", result, format, out_file, None)
    else:
        _emit(result.screen, format, out_file, "BMC screen")


@app.command()
def evidence(
    patient_id: Annotated[str, typer.Argument(help="The Patient id (with or without 'Patient/').")],
    db: DbOpt,
    param: ParamOpt = None,
    format: FormatOpt = "table",
    out_file: OutOpt = None,
    engine: EngineOpt = "duckdb", spark_master: MasterOpt = "local[*]",
    spark_conf: ConfOpt = None, codes: CodesOpt = None, config: ConfigOpt = None,
) -> None:
    """The evidence ledger of one patient: each rule's outcome (stderr) and the resources
    behind it, with values, grades and source file and line (stdout).

    Exit codes: 0 done, 1 failure (unknown patient, missing or unloaded database), 2 usage error.
    """
    from .evidence import UnknownPatient, rule_outcomes
    from .evidence import evidence as run_evidence

    with _errors():
        _check_engine(engine)
        uc = _user_codes(codes, config, db, engine)
        params = _params(param, uc)
        _check_format(format, out_file)
        def on_spark(spark):
            from .spark_runner import evidence_spark  # the spark extra: imported only here

            return evidence_spark(spark, db, patient_id, params)

        try:
            result = _on_engine(engine, db, spark_master, spark_conf,
                                lambda con: run_evidence(con, patient_id, params, uc), on_spark,
                                _stale(params, uc, "bmc_screen"))  # the ledger reads the screen
        except UnknownPatient:
            if valid_id(patient_id.removeprefix("Patient/")):
                raise
            raise UnknownPatient("no Patient with the given id in this database (id not "
                                 "valid: a FHIR id is 1-64 letters, digits, '-' or '.')"
                                 ) from None
    _record(counts={"ledger_rows": len(result.ledger)}, inputs=[db])
    if format == "table":  # the verdict, rules and resources read top to bottom, on stdout
        import os

        from .evidence import ledger_text

        _record(outputs=[str(out_file)] if out_file else [])
        _emit_text(ledger_text(result, _table_width(out_file), os.getcwd()), out_file)
        return
    r = result.rules
    verdict = "in the cohort" if r["in_cohort"] else f"not in the cohort (fails: {r['failed_rules']})"
    err.print(f"{_patient(result.patient_id)}: {verdict}")
    for rule, outcome in rule_outcomes(r).items():
        err.print(f"  {rule:18} {outcome}")
    if result.cohort_row:
        row = result.cohort_row
        err.print(f"  index date {str(row['index_date'])[:10]}, route {row['route']}")
    _emit(result.ledger, format, out_file, f"evidence for {_patient(result.patient_id)}")


@app.command()
def check(
    db: DbOpt,
    truth: Annotated[Path, typer.Option(help="CSV with columns patient_id,label (1/0), or "
                                             "`review`: the adjudications made in `bmc "
                                             "review` (adds the screen's PPV).")],
    param: ParamOpt = None,
    format: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    engine: EngineOpt = "duckdb", spark_master: MasterOpt = "local[*]",
    spark_conf: ConfOpt = None, codes: CodesOpt = None, config: ConfigOpt = None,
) -> None:
    """Check the definition against known cases: sensitivity, PPV and the confusion counts
    (stdout); the disagreements with their failed rules (stderr).

    Exit codes: 0 done, 1 failure (missing or unloaded database), 2 usage error (bad truth file).
    """
    import pandas as pd

    from .check import REVIEW_TRUTH, check_reviews
    from .check import check as run_check

    by_review = str(truth) == REVIEW_TRUTH
    with _errors():
        _check_engine(engine)
        if by_review and engine == "spark":
            raise UsageError("--truth review reads the adjudications in a DuckDB file: "
                             "use --engine duckdb")
        uc = _user_codes(codes, config, db, engine)
        params = _params(param, uc)
        if format == "parquet":
            raise UsageError("check prints a summary; --format must be table, csv or json")
        _check_format(format, None)
        def on_spark(spark):
            from .spark_runner import check_spark  # the spark extra: imported only here

            return check_spark(spark, db, truth, params)

        result = _on_engine(engine, db, spark_master, spark_conf,
                            lambda con: check_reviews(con, params, uc) if by_review
                            else run_check(con, truth, params, uc), on_spark,
                            _stale(params, uc, "bmc_screen" if by_review else "bmc_cohort"))
    _record(counts=result.summary(), inputs=[db, truth])
    for row in result.disagreements.itertuples():
        err.print(f"{row.disagreement}: {_patient(row.patient_id)} (failed rules: "
                  f"{row.failed_rules or 'none'})")
    if result.unknown_ids:
        err.print(f"note: {len(result.unknown_ids)} labelled id(s) are not in the database")
    if result.unlabelled_in_cohort:
        err.print(f"note: {result.unlabelled_in_cohort} cohort patient(s) have no label")
    _emit(pd.DataFrame([result.summary()]), format, None, "check against known cases")


# -- review (cohort.review) ---------------------------------------------------------------------
@app.command()
def review(
    db: DbOpt,
    host: Annotated[str, typer.Option(help="Address to listen on. Loopback by default; any "
                                           "other address needs the token printed at start.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8765,
    export_file: Annotated[Path | None, typer.Option(
        "--export", help="Write the adjudications instead of serving: patient_id,label (the "
                         "latest verdict per patient; unsure left out), the truth file "
                         "`bmc check` reads; with --format fhir one Observation per "
                         "adjudication (NDJSON).")] = None,
    format: Annotated[str, typer.Option("--format", help="--export format: csv | fhir")
                      ] = "csv",
    static: Annotated[Path | None, typer.Option(
        "--static", help="Write the worklist and patient pages as static HTML (no form) into "
                         "this folder instead of serving.")] = None,
    include_cohort: Annotated[bool, typer.Option(
        "--cohort", help="--static: list the cohort's members too (the server has a "
                         "checkbox).")] = False,
    param: ParamOpt = None, codes: CodesOpt = None, config: ConfigOpt = None,
) -> None:
    """Review the screen's candidates in a browser: worklist, patient pages (rules, lab
    timeline, evidence ledger, coded diagnoses) and an adjudication form whose decisions go
    to the append-only table `review` (the server is the only writer while it runs).

    Exit codes: 0 done (or server stopped), 1 failure (no adjudications to export, missing or
    unloaded database, port in use), 2 usage error.
    """
    from .review import store

    with _errors():
        if export_file is not None and static is not None:
            raise UsageError("--export and --static: give one of them")
        if format not in ("csv", "fhir"):
            raise UsageError(f"--format must be csv or fhir, not {format!r}")
        if format == "fhir" and export_file is None:
            raise UsageError("--format applies to --export")
        uc = _user_codes(codes, config, db, "duckdb")
        params = _params(param, uc)
        _prepare_out(export_file, folder=False)
        _prepare_out(static, folder=True)
        if export_file is not None:
            con = _open(db, read_only=True)
            try:
                if format == "csv":
                    from .output import to_csv

                    table = store.labels_frame(con)
                    export_file.write_text(to_csv(table))
                else:
                    from .fhir_out import ndjson, review_observations

                    table = store.all_reviews(con)
                    export_file.write_text(ndjson(review_observations(table)))
            finally:
                con.close()
            what = "label(s)" if format == "csv" else "Observation(s)"
            err.print(f"review: {len(table)} {what} written to {export_file}")
            _record(counts={"exported": len(table)}, inputs=[db], outputs=[str(export_file)])
            return
        con = _open(db)
        try:
            from .screen import run_screen

            run_screen(con, params, uc)  # reuses the cohort tables when up to date
            if static is not None:
                from .review.site import write_static

                written = write_static(con, static, include_cohort=include_cohort)
                err.print(f"review: {len(written)} page(s) in {static}")
                out.print(str(written[0]))
                return
            from .review.serve import configure_logging, serve

            def announce(served) -> None:
                if served.token:
                    err.print(f"review: listening beyond loopback; every browser needs the "
                              f"token: {served.url}")
                else:
                    err.print(f"review: serving {served.url} (loopback only; Ctrl-C to stop)")

            configure_logging()
            try:
                serve(con, host, port, announce)
            except OSError as e:
                raise CohortError(f"--host {host} --port {port}: cannot listen "
                                  f"({e.strerror or e})") from None
        finally:
            con.close()


def _emit_fhir(db: Path, kind: str, result, fmt: str, out_file: Path | None,
               funnel_file: Path | None) -> None:
    """--format fhir (the cohort as a Group, the screen as a List) to --out or stdout, and
    --funnel FILE (the funnel as a MeasureReport), with the build and parameters that made
    them (cohort.fhir_out)."""
    import datetime as dt

    from . import fhir_out
    from .review.store import current_build

    with _errors():
        con = _open(db, read_only=True)
        try:
            build, params_json = current_build(con)
            period = fhir_out.data_period(con) if funnel_file is not None else None
        finally:
            con.close()
        params = json.loads(params_json)
        now = dt.datetime.now(dt.UTC)
        written = [str(f) for f in (out_file if fmt == "fhir" else None, funnel_file) if f]
        _record(outputs=written)
        if funnel_file is not None and period is not None:
            funnel_file.write_text(fhir_out.json_text(fhir_out.funnel_report(
                result.funnel, build, params, period, now)))
        if fmt != "fhir":
            return
        resource = (fhir_out.cohort_group(result.cohort, build, params) if kind == "cohort"
                    else fhir_out.screen_list(result.screen, build, params, now))
        text = fhir_out.json_text(resource)
        _record(counts={"rows": len(result.cohort if kind == "cohort" else result.screen)})
        if out_file:
            out_file.write_text(text)
        else:
            sys.stdout.write(text)


def _patient(patient_id: str) -> str:
    """``Patient/<id>`` for a message: the id only when it looks like a FHIR id."""
    return f"Patient/{patient_id}" if valid_id(patient_id) else "Patient (id not valid)"


# -- sensitivity (cohort.outcomes.sensitivity) ---------------------------------------------------
@app.command()
def sensitivity(
    db: DbOpt,
    format: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    out_file: OutOpt = None,
    truth: Annotated[Path | None, typer.Option(
        help="CSV with columns patient_id,label (1/0): adds tp, fp, fn, sensitivity and ppv "
             "per grid point.")] = None,
    param: ParamOpt = None,
    grid: Annotated[Path | None, typer.Option(
        help="Another grid: a CSV parameter,values,why with values separated by ';' "
             "(default cohort/data/sensitivity_grid.csv).")] = None,
) -> None:
    """Rerun the cohort over the grid of cohort/data/sensitivity_grid.csv (smear window,
    cytopenia grade, alternative-cause exclusion, coded condition, anaemia grade 4): cohort
    size, overlap with the default cohort, sensitivity/PPV with --truth, median OS.

    --param sets what the grid does not vary (and the default point). The database is only
    read: the stages run as temporary tables. Exit codes: 0 done, 1 failure (missing or
    unloaded database), 2 usage error (bad --format, --param or truth file).
    """
    from .check import read_truth
    from .outcomes.sensitivity import read_grid, run_sensitivity
    from .parameters import parse_pairs

    with _errors():
        if format not in ("table", "csv", "json"):
            raise UsageError(f"--format must be table, csv or json, not {format!r}")
        _check_format(format, out_file)
        base = parse_pairs(param or [])
        labels = read_truth(truth) if truth else None
        if grid is not None and not grid.is_file():
            raise UsageError(f"--grid {grid}: no such file")
        axes = read_grid(grid) if grid else None
        con = _open(db, read_only=True)
        try:
            with _progress() as bar:
                task = bar.add_task("grid points", total=None)
                result = run_sensitivity(con, truth=labels, base=base, axes=axes,
                                         progress=lambda done, total:
                                         bar.update(task, completed=done, total=total))
        finally:
            con.close()
    _record(counts={"grid_points": len(result.table), "stage_builds": result.stage_builds},
            timings={"sensitivity": result.seconds}, inputs=[db] + ([truth] if truth else []))
    err.print(f"sensitivity: {len(result.table)} grid points, {result.stage_builds} stage builds "
              f"({result.stage_builds_without_reuse} without reuse), {result.seconds:.1f} s")
    _emit(result.table, format, out_file, "sensitivity of the definition")


# -- codes --------------------------------------------------------------------------------------
@app.command()
def codes(
    db: Annotated[Path, typer.Option(help="DuckDB database filled by `bmc load`.")],
    format: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    out_file: OutOpt = None,
    codes: CodesOpt = None, config: ConfigOpt = None,
) -> None:
    """The codes in the data and what the definition makes of them: every (source, system,
    code, display) with counts and units, mapped (to which value set or lab analyte),
    candidate (unmapped, but its words or unit look like a concept a rule needs) or
    unmapped; units of mapped lab codes that units.csv cannot convert; displays that
    contradict the sourced display of their code. Summary on stderr.

    Exit codes: 0 done, 1 failure (missing or unloaded database), 2 usage error.
    """
    from .codes import code_inventory, for_reading

    with _errors():
        if format not in ("table", "csv", "json"):
            raise UsageError(f"--format must be table, csv or json, not {format!r}")
        uc = _user_codes(codes, config, db, "duckdb")
        con = _open(db, read_only=True)
        try:
            inv = code_inventory(con, uc)
        finally:
            con.close()
    t = inv.table
    counts = {s: int((t["status"] == s).sum()) for s in ("mapped", "candidate", "unmapped")}
    err.print(f"codes: {len(t)} codings (mapped {counts['mapped']}, candidate "
              f"{counts['candidate']}, unmapped {counts['unmapped']}); display conflicts "
              f"{int(t['display_conflict'].notna().sum())}; mapped lab codes with unconvertible "
              f"units {int(t['unconvertible_units'].notna().sum())}", markup=False)
    for line in inv.rule_warnings():
        err.print(line.removesuffix(": see `bmc codes`"), markup=False, soft_wrap=True)
    _emit(for_reading(t) if format == "table" else t, format, out_file, "codes in the data")


def main() -> None:
    """Console-script entry point (``bmc``)."""
    try:
        app()
    except KeyboardInterrupt:
        err.print(f"error: {INTERRUPTED}")
        sys.exit(EXIT_FAIL)


if __name__ == "__main__":
    main()
