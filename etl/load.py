"""``load``: read FHIR inputs into the database in one transaction.

The path of the data: ``sources.discover`` finds files -> NDJSON lines / Bundle entries become
Arrow batches -> ``ingest`` parses each batch once in DuckDB and stages provenance rows and
declared-table rows -> ``versions`` settles which version of every resource is current ->
``references`` resolves what needs the whole load. A crash, Ctrl-C or ``strict`` rejection
rolls everything back: the database is exactly as it was before.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from . import references, versions
from .bundles import Record, looks_like_fhir, walk_document
from .errors import EtlError, InputError, LoadAborted, Location, SourceError, is_interruption
from .ingest import FileStats, Ingestor, diagnose, resource_types
from .sources import (
    CHUNK_BYTES,
    SourceFile,
    TruncatedInput,
    content_sha256,
    discover,
    head,
    iter_line_chunks,
    read_document,
    strip_bom,
    text_problem,
)
from .store import connect, ensure_schema, next_value, quote_ident

ProgressFn = Callable[[int, int, str], None]


@dataclass
class LoadOptions:
    validate: bool = False
    strict: bool = False
    keep_raw: bool = False
    # DuckDB's share of memory (`bmc load --memory-limit`); the process peaks near 2x, so the
    # default keeps the whole load under the README's 512 MB bound (see default_memory_limit)
    memory_limit: str | None = field(default_factory=lambda: default_memory_limit())
    threads: int | None = None
    chunk_bytes: int = CHUNK_BYTES
    validate_workers: int | None = None
    # False for ``bmc view``: a resource without an id is still evaluated (its rows go to the
    # view's table with no provenance row); ``bmc load`` needs ids and rejects it per record
    ids_required: bool = True


#: Peak RSS a load stays under (README, "Memory"); DuckDB gets half, Python and Arrow the rest
RSS_BOUND_MB = 512
#: Largest single resource (its JSON text) a load accepts; a larger one is a load_error row
#: naming this limit. DuckDB parses a resource in one piece: at a 256 MB memory limit a
#: 40 MB resource loads and a 50 MB one does not (issue 15).
MAX_RESOURCE_MB = 32


_MEMORY = re.compile(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


def default_memory_limit() -> str:
    """DuckDB's memory limit when none is given: half the RSS bound, less on a machine with
    under 2 GB of RAM (an eighth of it, at least 64 MB), so the load fits beside other work."""
    try:
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError, AttributeError):
        ram_mb = 0
    share = RSS_BOUND_MB // 2
    if ram_mb:
        share = max(64, min(share, ram_mb // 8))
    return f"{share}MB"


@dataclass
class LoadResult:
    """What a load did; the CLI prints it and chooses the exit code from it."""

    load_id: int
    files_read: int = 0
    files_unchanged: list[str] = field(default_factory=list)
    non_resource_files: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0
    by_type: dict[str, Counter] = field(default_factory=dict)  # type -> status -> n
    deletions: int = 0
    deletions_applied: int = 0
    rejected: int = 0
    rejected_sample: list[str] = field(default_factory=list)
    unresolved: dict[str, int] = field(default_factory=dict)
    export_errors: int = 0
    issues: dict[str, int] = field(default_factory=dict)  # load_issue rows by kind (kept data)
    skipped_entries: int = 0  # GET/HEAD entries of batch/transaction Bundles: not records

    @property
    def mb_per_s(self) -> float:
        return self.bytes_read / 1e6 / self.seconds if self.seconds else 0.0

    @property
    def loaded(self) -> int:
        return sum(c.get("current", 0) for c in self.by_type.values())


def _declared():
    from .declared import compiled_views
    return compiled_views()


class Loader:
    """One load run (use :func:`load`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, views, options: LoadOptions,
                 progress: ProgressFn | None):
        self.started_wall = time.time()
        self.con = con
        self.views = list(views)
        self.options = options
        self.progress = progress
        self.load_id = next_value(con, "load_run", "load_id")
        first = max(next_value(con, "resource", "_rid"), next_value(con, "deletion", "_rid"))
        self.first_rid = first
        self.ing = Ingestor(con, self.views, self.load_id, first,
                            keep_raw=options.keep_raw, strict=options.strict)
        self.result = LoadResult(self.load_id)
        self.next_file_id = next_value(con, "source_file", "file_id")
        self.bytes_done = 0
        self.bytes_total = 0
        self.validator = None
        self._file_rows: list[tuple] = []
        self._pending: dict[str, list[Record]] = {}  # small documents' records, batched
        self._pending_meta: dict[str, list[tuple[int, int | None, int]]] = {}
        self._pending_bytes = 0
        self._idless: dict[str, list[tuple[int, bytes]]] = {}  # ids_required=False: (_rid, text)

    # -- per file ----------------------------------------------------------------------------
    def run(self, files: Sequence[SourceFile]) -> None:
        self.bytes_total = sum(f.size for f in files)
        known = {(p, s, m) for p, s, m in self.con.execute(
            "SELECT path, size, mtime_ns FROM source_file").fetchall()}
        if self.options.validate:
            from .validate import Validator
            self.validator = Validator(self.options.validate_workers)
        try:
            for sf in files:
                st = sf.path.stat()
                if (str(sf.path), st.st_size, st.st_mtime_ns) in known:
                    self.result.files_unchanged.append(sf.display)
                    self._advance(sf.size, sf.display)
                    continue
                self._file(sf, st.st_mtime_ns)
            self._flush_pending()
            self._stage_without_id()
            self._finish_files()
        finally:
            if self.validator is not None:
                self.validator.close()

    def _advance(self, n: int, name: str) -> None:
        self.bytes_done += n
        if self.progress:
            self.progress(self.bytes_done, self.bytes_total, name)

    def _file(self, sf: SourceFile, mtime_ns: int) -> None:
        file_id = self.next_file_id
        self.next_file_id += 1
        stats = FileStats()
        self.ing.files[file_id] = (sf.display, stats)
        sha = hashlib.sha256()
        try:
            problem = text_problem(head(sf.path), sf.kind)
            if problem is not None:  # one message for the file, not "invalid JSON" per line
                non_resource = False
                sha = _Digest(content_sha256(sf.path))
                self._advance(sf.size, sf.display)
                self.ing.reject(stats, Location(sf.display), problem)
            elif sf.kind == "ndjson":
                non_resource = self._ndjson(sf, file_id, stats, sha)
            else:
                non_resource = self._json(sf, file_id, stats, sha)
        except TruncatedInput as e:
            non_resource = False
            self.ing.reject(stats, Location(sf.display), str(e))
        except OSError as e:  # unreadable or vanished: the whole load stops
            raise SourceError(f"{sf.display}: cannot read the file ({e.strerror or e})") from None
        if non_resource:
            stats.errors.clear()
            stats.rejected = 0
            self.result.non_resource_files.append(sf.display)
        self.ing.flush_errors(stats)
        self.result.files_read += 1
        self.result.bytes_read += sf.size
        self._file_rows.append((file_id, sf, mtime_ns, sha.hexdigest(), non_resource))

    def _finish_files(self) -> None:
        """source_file rows, written once every batch (and its rejections) is staged."""
        rows = []
        for file_id, sf, mtime_ns, sha, non_resource in self._file_rows:
            stats = self.ing.files[file_id][1]
            self.ing.flush_errors(stats)
            self.result.rejected += stats.rejected
            if sf.export_error:
                self.result.export_errors += stats.records
            rows.append([file_id, self.load_id, str(sf.path), sf.kind, sf.size, mtime_ns, sha,
                         stats.lines if sf.kind == "ndjson" else None, stats.blank_lines,
                         stats.records, stats.rejected, non_resource, sf.deleted, sf.export_error])
        self.ing.write_errors()
        if rows:  # one Arrow insert: executemany costs ~1 ms a row (10,000 files: 10 s)
            self.con.register("_files", pa.table(
                {f"c{i}": pa.array(c) for i, c in enumerate(zip(*rows, strict=True))}))
            try:
                self.con.execute("INSERT INTO source_file SELECT * FROM _files")
            finally:
                self.con.unregister("_files")

    # -- NDJSON ------------------------------------------------------------------------------
    def _ndjson(self, sf: SourceFile, file_id: int, stats: FileStats, sha) -> bool:
        guess: str | None = None
        saw_resource = False
        # decide whether this is a non-resource file (an export's log): no line is FHIR-like
        untyped_objects = untyped_fhir = other_bad = 0
        bundles: list[tuple[dict, int]] = []
        for chunk in iter_line_chunks(sf.path, self.options.chunk_bytes, sha,
                                      lambda n: self._advance(n, sf.display)):
            stats.blank_lines += chunk.blank_lines
            n = len(chunk.starts)
            stats.lines += n + chunk.blank_lines
            if n == 0:
                continue
            if guess is None:
                guess = _first_type(chunk.buf[chunk.starts[0]:chunk.ends[0]])
            rids = self.ing.take_rids(n)
            if chunk.blank_lines:  # whitespace between lines would be in a line's text
                buf, offsets = _lines_only(chunk)
            else:  # zero-copy: a line's text runs to the next line (its newline: see parse_header)
                buf = chunk.buf
                offsets = np.empty(n + 1, dtype=np.int64)
                offsets[:n] = chunk.starts
                offsets[n] = chunk.ends[-1]
            keep = self._validate_lines(sf, chunk, stats, rids) if self.validator is not None else None
            too_big = np.flatnonzero(chunk.ends - chunk.starts > MAX_RESOURCE_MB << 20)
            if len(too_big):  # DuckDB parses a resource in one piece: over the limit, rejected
                keep = np.ones(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
                keep[too_big] = False
                for i in too_big:
                    raw = chunk.buf[chunk.starts[i]:chunk.ends[i]]
                    rtype, res_id = _head_identity(raw)
                    self.ing.reject(stats, Location(sf.display, int(chunk.line_numbers[i]), None,
                                                    rtype, res_id), _too_big(len(raw)))
                    saw_resource = saw_resource or rtype is not None
            text = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))
            table = pa.table({
                "_rid": rids, "file_id": pa.array(np.full(n, file_id, dtype=np.int32)),
                "line": chunk.line_numbers,
                "entry": pa.nulls(n, pa.string()), "full_url": pa.nulls(n, pa.string()),
                "id_derived": pa.array(np.zeros(n, dtype=bool)), "text": text})
            if keep is not None:
                table = table.filter(pa.array(keep))
            self.ing.begin_batch(table)
            try:
                # bytes that are not UTF-8 parse to NULL like any invalid JSON (tested)
                self.ing.parse_header()
                types = dict(self.con.execute(
                    "SELECT r.resourceType, count(*) FROM _h WHERE r.id IS NOT NULL "
                    "AND r.resourceType IS NOT NULL GROUP BY 1").fetchall())
                odd = [t for t in types if t == "Bundle" or t not in resource_types()]
                bad = self.con.execute(
                    "SELECT _rid, line FROM _h WHERE r IS NULL OR r.resourceType IS NULL "
                    "OR r.id IS NULL OR list_contains(?::VARCHAR[], r.resourceType) ORDER BY _rid",
                    [odd]).fetchall()
                base = int(rids[0])
                for rid, line in bad:
                    i = rid - base
                    raw = chunk.buf[chunk.starts[i]:chunk.ends[i]]
                    reason, rtype, res_id = diagnose(raw)
                    if rtype == "Bundle" and reason in ("resource could not be read",
                                                        "resource without id"):
                        # walked like a JSON document: a Bulk deleted/ Bundle has no id
                        bundles.append((orjson.loads(raw), line))
                        continue
                    if reason == "resource without id" and not self.options.ids_required:
                        stats.records += 1  # bmc view: evaluated as given, in line order
                        self._idless.setdefault(rtype, []).append((rid, bytes(raw)))
                        saw_resource = True
                        continue
                    if reason == "missing resourceType":
                        untyped_objects += 1
                        untyped_fhir += looks_like_fhir(orjson.loads(raw))
                    else:
                        other_bad += 1
                    self.ing.reject(stats, Location(sf.display, line, None, rtype, res_id), reason)
                for rtype in types:
                    if rtype == "Bundle" or rtype not in resource_types():
                        continue
                    saw_resource = True
                    if sf.deleted:
                        self._deletions_from_header(rtype, file_id)
                    else:
                        self.ing.stage_type(rtype)
            finally:
                self.ing.end_batch()
            for doc, line in bundles:  # Bundles as NDJSON lines: walked like JSON documents
                saw_resource = True
                self._records(walk_document(doc, hash_ids=self.options.ids_required), sf,
                              file_id, stats, line)
            bundles.clear()
            if saw_resource or other_bad or untyped_fhir:  # never a non-resource file now:
                self.ing.flush_errors(stats)  # its rejections need not wait for its end
            del table, text  # release the (memory-mapped) line buffer before the next chunk
        return not saw_resource and other_bad == 0 and untyped_fhir == 0 and untyped_objects > 0

    def _validate_lines(self, sf: SourceFile, chunk, stats: FileStats, rids) -> None:
        """--validate: a resource that fails is kept and its messages go to load_issue (kind
        'validation'): a validator's false positive must not delete data. --strict rejects."""
        texts = [bytes(chunk.buf[s:e]) for s, e in zip(chunk.starts, chunk.ends, strict=True)]
        for i, (rtype, rid, messages) in self.validator.check(texts):
            loc = Location(sf.display, int(chunk.line_numbers[i]), None, rtype, rid)
            if self.options.strict:
                self.ing.reject(stats, loc, "invalid FHIR R4: " + "; ".join(messages))
            self.ing.validation_issues(int(rids[i]), loc, messages)

    def _deletions_from_header(self, rtype: str, file_id: int) -> None:
        cond = "r.resourceType = ? AND r.id IS NOT NULL"
        self.result.deletions += self.con.execute(
            f"SELECT count(*) FROM _h WHERE {cond}", [rtype]).fetchall()[0][0]
        self.con.execute(
            f"INSERT INTO deletion SELECT _rid, ?, ?, line, entry, r.resourceType, r.id, false "
            f"FROM _h WHERE {cond}", [self.load_id, file_id, rtype])

    # -- JSON documents ----------------------------------------------------------------------
    def _json(self, sf: SourceFile, file_id: int, stats: FileStats, sha) -> bool:
        try:
            data = read_document(sf.path)
        except TruncatedInput as e:
            raise TruncatedInput(f"truncated compressed file: {e}") from None
        sha.update(data)
        data = strip_bom(data)
        self._advance(sf.size, sf.display)
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            if looks_like_ndjson(data):  # NDJSON with a .json name
                return self._ndjson(SourceFile(sf.path, sf.display, "ndjson", sf.size, sf.deleted,
                                               sf.export_error), file_id, stats, None)
            why = str(e).split(":", 1)[0]
            if "depth" in why or "recursion" in why.lower():
                reason = "the document is nested too deeply to be read (over 1,000 levels of JSON)"
            elif b"\n" not in data and looks_like_ndjson(data.replace(b"\r", b"\n")):
                reason = text_problem(data[:4096], "ndjson") or "lines end with a lone CR"
            else:
                reason = f"invalid JSON ({why}, at character {e.pos})"
            self.ing.reject(stats, Location(sf.display), reason)
            return False
        if not looks_like_fhir(doc):
            return True  # no FHIR record at all (test cases, manifests given twice, ...)
        self._records(walk_document(doc, hash_ids=self.options.ids_required), sf, file_id,
                      stats, None)
        return False

    def _records(self, recs: Iterable[Record], sf: SourceFile, file_id: int,
                 stats: FileStats, line: int | None) -> None:
        groups: dict[str, list[Record]] = {}
        dels: list[tuple] = []
        known = resource_types()
        for rec in recs:
            loc = Location(sf.display, line, rec.entry, rec.resource_type, rec.resource_id)
            if rec.skip:
                self.result.skipped_entries += 1
            elif rec.problem:
                self.ing.reject(stats, loc, rec.problem)
            elif rec.method == "DELETE" or (sf.deleted and rec.resource_type != "Bundle"):
                (rid,) = self.ing.take_rids(1)
                dels.append((int(rid), self.load_id, file_id, line, rec.entry,
                             rec.resource_type, rec.resource_id, False))
            elif rec.resource_type not in known:
                self.ing.reject(stats, Location(sf.display, line, rec.entry, rec.resource_type[:40],
                                                rec.resource_id), "unknown resourceType")
            elif len(rec.text) > MAX_RESOURCE_MB << 20:
                self.ing.reject(stats, loc, _too_big(len(rec.text)))
            elif rec.resource_id is None:  # ids_required=False (bmc view) only
                (rid,) = self.ing.take_rids(1)
                stats.records += 1
                self._idless.setdefault(rec.resource_type, []).append((int(rid), rec.text))
            else:
                groups.setdefault(rec.resource_type, []).append(rec)
        if dels:
            self.con.executemany("INSERT INTO deletion VALUES (?, ?, ?, ?, ?, ?, ?, ?)", dels)
            self.result.deletions += len(dels)
        failed: dict[str, dict[int, list[str]]] = {}  # --validate: kept, listed in load_issue
        if self.validator is not None:
            for rtype, items in list(groups.items()):
                bad = dict((i, m) for i, (_, _, m) in self.validator.check([r.text for r in items]))
                for i in sorted(bad):
                    if self.options.strict:
                        r = items[i]
                        self.ing.reject(stats, Location(sf.display, line, r.entry, rtype,
                                                        r.resource_id),
                                        "invalid FHIR R4: " + "; ".join(bad[i]))
                failed[rtype] = bad
        for rtype, items in groups.items():
            self._pending.setdefault(rtype, []).extend(items)
            rids = self.ing.take_rids(len(items))  # now, so _rid keeps the load order
            for i, messages in failed.get(rtype, {}).items():
                self.ing.validation_issues(int(rids[i]), Location(
                    sf.display, line, items[i].entry, rtype, items[i].resource_id), messages)
            self._pending_meta.setdefault(rtype, []).extend(
                (file_id, line, int(rid)) for rid in rids)
            self._pending_bytes += sum(len(r.text) for r in items)
        if self._pending_bytes >= self.options.chunk_bytes:
            self._flush_pending()

    def _flush_pending(self) -> None:
        """Stage the batched records of small documents, one Arrow batch per type."""
        for rtype, items in self._pending.items():
            meta = self._pending_meta[rtype]
            table = pa.table({
                "_rid": pa.array([m[2] for m in meta], pa.int64()),
                "file_id": pa.array([m[0] for m in meta], pa.int32()),
                "line": pa.array([m[1] for m in meta], pa.int64()),
                "entry": pa.array([r.entry for r in items], pa.string()),
                "full_url": pa.array([r.full_url for r in items], pa.string()),
                "id_derived": pa.array([r.id_derived for r in items], pa.bool_()),
                "text": pa.array([r.text for r in items], pa.large_string()),
            })
            self.ing.begin_batch(table)
            try:
                self.ing.parse_header()
                self.ing.stage_type(rtype)
            finally:
                self.ing.end_batch()
        self._pending.clear()
        self._pending_meta.clear()
        self._pending_bytes = 0

    def _stage_without_id(self) -> None:
        """``bmc view``: rows of resources that have no id, straight into the view tables
        (they cannot have a provenance row, which is keyed by type and id)."""
        for rtype, items in self._idless.items():
            table = pa.table({"_rid": pa.array([r for r, _ in items], pa.int64()),
                              "text": pa.array([t for _, t in items], pa.large_string())})
            self.con.register("_idless", table)
            try:
                for v, structure in self.ing.plan(rtype).views:
                    src = f"(SELECT _rid, json_transform(text, {structure}) AS r FROM _idless)"
                    self.con.execute(f"INSERT INTO {quote_ident(v.name)} "
                                     f"{v.sql.replace('{source}', src)}")
            finally:
                self.con.unregister("_idless")
        self._idless.clear()

    def book_unreadable(self, unreadable: Sequence[tuple[str, str]]) -> None:
        """Folders and files the walk could not read: one load_error row each (exit 3)."""
        stats = FileStats()
        for display, reason in unreadable:
            self.ing.reject(stats, Location(display), reason)
        self.ing.flush_errors(stats)
        self.ing.write_errors()
        self.result.rejected += stats.rejected

    # -- after all files ---------------------------------------------------------------------
    def finish(self, started: float) -> LoadResult:
        con = self.con
        versions.resolve(con, self.load_id, self.views)
        references.rewrite(con, self.views)
        (self.result.deletions_applied,) = con.execute(
            "SELECT count(*) FROM deletion WHERE load_id = ? AND applied", [self.load_id]).fetchall()[0]
        self.result.unresolved = references.list_unresolved(
            con, self.views, since_rid=self.first_rid, full=bool(self.result.deletions_applied))
        self.result.issues = dict(con.execute(
            "SELECT kind, count(*) FROM load_issue WHERE load_id = ? GROUP BY 1 ORDER BY 1",
            [self.load_id]).fetchall())
        for rtype, status, n in con.execute(
                "SELECT resource_type, status, count(*) FROM resource WHERE load_id = ? "
                "GROUP BY ALL ORDER BY 1, 2", [self.load_id]).fetchall():
            self.result.by_type.setdefault(rtype, Counter())[status] = n
        self.result.rejected_sample = [
            str(Location(f, ln, e, t, i)) + f": {why}"
            for f, ln, e, t, i, why in con.execute(
                "SELECT file, line, entry, resource_type, resource_id, reason FROM load_error "
                "WHERE load_id = ? ORDER BY file, line, entry LIMIT 10", [self.load_id]).fetchall()]
        self.result.seconds = time.perf_counter() - started
        con.execute("INSERT INTO load_run VALUES (?, ?, now(), ?, ?, ?, ?, ?, ?)", [
            self.load_id, _ts(self.started_wall), json.dumps({
                "validate": self.options.validate, "strict": self.options.strict,
                "keep_raw": self.options.keep_raw}),
            self.result.files_read, len(self.result.files_unchanged), self.result.bytes_read,
            sum(sum(c.values()) for c in self.result.by_type.values()), self.result.rejected])
        return self.result



def _lines_only(chunk) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's lines packed end to end without line endings or blank lines, and their
    offsets: each resource's text (and so ``resource.content_hash``) is the line alone,
    wherever it sits in a file. A copy, so only for chunks with blank lines (which may hold
    spaces); DuckDB cannot trim instead (trim fails on a line that is not UTF-8)."""
    arr = np.frombuffer(chunk.buf, dtype=np.uint8)
    mark = np.zeros(len(arr) + 1, dtype=np.int8)
    mark[chunk.starts] = 1
    mark[chunk.ends] -= 1  # an empty line starts and ends at the same byte: 0, dropped
    packed = arr[np.cumsum(mark[:-1], dtype=np.int8).astype(bool)]
    offsets = np.zeros(len(chunk.starts) + 1, dtype=np.int64)
    np.cumsum(chunk.ends - chunk.starts, out=offsets[1:])
    return packed, offsets


class _Digest:
    """A finished digest where a hashlib object is expected (a file hashed elsewhere)."""

    def __init__(self, hexdigest: str):
        self._hex = hexdigest

    def hexdigest(self) -> str:
        return self._hex


def _ts(epoch: float):
    import datetime as _dt
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC)


def _too_big(size: int) -> str:
    return (f"resource of {size / (1 << 20):,.0f} MB is over the per-resource limit of "
            f"{MAX_RESOURCE_MB} MB (README: Memory); not loaded")


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')


def _head_identity(raw) -> tuple[str | None, str | None]:
    """resourceType and id of a resource too large to parse, from the top-level keys in its
    first 64 KB (FHIR JSON writes them first). Location() vets both before they are shown."""
    depth, key, found = 0, None, {}
    prev = None
    for m in _TOKEN.finditer(bytes(raw[:65536])):
        tok = m.group()
        if tok in (b"{", b"["):
            depth += 1
        elif tok in (b"}", b"]"):
            depth -= 1
        elif tok == b":":
            key = prev if depth == 1 else None
        elif tok.startswith(b'"') and key in (b'"resourceType"', b'"id"') and prev == b":":
            with contextlib.suppress(orjson.JSONDecodeError):
                found[key] = orjson.loads(tok)
            key = None
        prev = tok
        if len(found) == 2:
            break
    rtype = found.get(b'"resourceType"')
    return (rtype if rtype in resource_types() else None), found.get(b'"id"')


def _first_type(line: bytes) -> str | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    rt = doc.get("resourceType") if isinstance(doc, dict) else None
    return rt if isinstance(rt, str) else None


def looks_like_ndjson(data: bytes) -> bool:
    """Is this .json file really NDJSON (several lines, the first three JSON objects)?"""
    lines = [ln for ln in data.split(b"\n", 20)[:20] if ln.strip()]
    if len(lines) < 2:
        return False
    try:
        return all(isinstance(orjson.loads(ln), dict) for ln in lines[:3])
    except orjson.JSONDecodeError:
        return False


def load(db: str | Path | duckdb.DuckDBPyConnection, inputs: Iterable[str | Path], options: LoadOptions | None = None,
         progress: ProgressFn | None = None, views=None) -> LoadResult:
    """Load FHIR files, folders and globs into the DuckDB file ``db`` in one transaction.

    Raises :class:`~etl.errors.SourceError` for unusable inputs (nothing is changed),
    :class:`~etl.errors.LoadAborted` when a strict load meets a bad record or the load is
    interrupted (rolled back).
    """
    options = options or LoadOptions()
    started = time.perf_counter()
    if options.memory_limit is not None and not _MEMORY.fullmatch(options.memory_limit):
        raise SourceError(f"--memory-limit {options.memory_limit!r}: give a size such as 256MB "
                          f"or 1GB")
    if not isinstance(db, duckdb.DuckDBPyConnection):
        from .store import check_database_file
        check_database_file(db)  # before any input is read
    disc = discover(inputs)
    if not disc.files:
        if disc.unreadable:  # nothing readable at all: say what could not be read
            raise SourceError(f"{disc.unreadable[0][0]}: {disc.unreadable[0][1]}")
        raise SourceError("no .json/.ndjson/.jsonl files found in the inputs")
    if views is None:
        views = _declared()
    created = not isinstance(db, duckdb.DuckDBPyConnection) and not Path(db).exists()
    con = db if isinstance(db, duckdb.DuckDBPyConnection) else \
        connect(db, memory_limit=options.memory_limit, threads=options.threads)
    committed = False
    try:
        from .viewdef.macros import install_macros
        install_macros(con)
        con.execute("BEGIN TRANSACTION")
        try:
            ensure_schema(con, views)
            loader = Loader(con, views, options, progress)
            loader.result.skipped = disc.skipped
            loader.book_unreadable(disc.unreadable)
            loader.run(disc.files)
            result = loader.finish(started)
            con.execute("COMMIT")
            committed = True
            return result
        except InputError as e:
            con.execute("ROLLBACK")
            raise LoadAborted(f"--strict: {e}; nothing was loaded") from None
        except BaseException as e:
            with contextlib.suppress(duckdb.Error):  # a failed write (disk full, a file
                con.execute("ROLLBACK")  # size limit) may have ended the transaction already:
            if is_interruption(e):  # Ctrl-C, even when clean-up raised over it
                raise LoadAborted("interrupted; nothing was loaded, the database is "
                                  "unchanged") from None
            raise  # the error that stopped the load is the one to report
    finally:
        if con is not db:
            con.close()
            if created and not committed:  # a database this load created: none is left
                for path in (Path(db), Path(f"{db}.wal")):
                    path.unlink(missing_ok=True)


__all__ = ["EtlError", "LoadOptions", "LoadResult", "load"]
