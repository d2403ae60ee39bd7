"""Find FHIR inputs and read them as records with provenance.

Inputs are files, folders (walked recursively) and globs, mixed freely. What a file holds is
read from its content, never from its name: Bulk Data NDJSON (``.ndjson``, ``.jsonl``, either
gzipped), a JSON document (one resource, a Bundle of any type, nested Bundles) or a Bulk Data
export manifest. Files that hold no FHIR resource at all (``log.ndjson``, test-case files) are
reported and skipped.

NDJSON is the hot path: it is cut into lines with numpy and handed on as byte buffers plus line
offsets, so DuckDB (not Python) parses the JSON. JSON documents are parsed with orjson here,
because walking Bundle entries needs the structure anyway.
"""
from __future__ import annotations

import glob
import hashlib
import mmap
import os
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import orjson

from .errors import SourceError

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")
BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 32 << 20


@dataclass(frozen=True)
class SourceFile:
    """One input file and what the walk knows about it before reading it."""

    path: Path
    display: str
    kind: str  # "ndjson" | "json"
    size: int
    deleted: bool = False  # from a Bulk export's deleted/ folder or manifest deleted[]
    export_error: bool = False  # listed in a manifest's error[] / outcome[]


@dataclass
class Discovery:
    """What the walk found: files to read, manifests read, and files passed over (with why)."""

    files: list[SourceFile] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(NDJSON_SUFFIXES):
        return "ndjson"
    if name.endswith(JSON_SUFFIXES):
        return "json"
    return None


def _display(path: Path) -> str:
    """How messages name a file: relative to the working folder when inside it."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def iter_decompressed(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's content in pieces, gunzipped when it is gzip (by magic number). A gzip file
    that ends early yields what decompressed, then raises TruncatedInput."""
    if is_gzip(path):
        yield from _gunzip(path, chunk_bytes, None)
        return
    with open(path, "rb") as f:
        while data := f.read(chunk_bytes):
            yield data


def content_sha256(path: Path) -> str:
    """The fingerprint ``source_file.sha256`` records: sha256 of the decompressed content,
    BOM included (every reader feeds its hasher exactly these bytes)."""
    h = hashlib.sha256()
    for piece in iter_decompressed(path):
        h.update(piece)
    return h.hexdigest()


def read_document(path: Path) -> bytes:
    """The whole (decompressed) file, BOM included; see :func:`strip_bom`."""
    return b"".join(iter_decompressed(path))


def strip_bom(data: bytes) -> bytes:
    return data[len(BOM):] if data.startswith(BOM) else data


def _is_manifest(doc: object) -> bool:
    return (isinstance(doc, dict) and "resourceType" not in doc
            and isinstance(doc.get("output"), list) and "transactionTime" in doc)


def _manifest_files(path: Path, doc: dict, disc: Discovery) -> list[SourceFile]:
    """Files a Bulk Data manifest lists: output[], deleted[], and error[] or outcome[]."""
    base = path.parent
    out: list[SourceFile] = []
    groups = (("output", False, False), ("deleted", True, False),
              ("error", False, True), ("outcome", False, True))
    for key, deleted, is_error in groups:
        for item in doc.get(key) or []:
            url = item.get("url") if isinstance(item, dict) else None
            if not url:
                disc.skipped.append((_display(path), f"manifest {key}[] item without url"))
                continue
            parsed = urlparse(url)
            rel = parsed.path if parsed.scheme in ("http", "https", "file") else url
            candidates = [base / rel.lstrip("/"), base / Path(rel).name]
            if deleted:
                candidates.insert(1, base / "deleted" / Path(rel).name)
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise SourceError(
                    f"{_display(path)}: manifest {key}[] names {Path(rel).name}, "
                    f"which is not in {_display(base)}")
            out.append(SourceFile(found.resolve(), _display(found), _kind(found) or "ndjson",
                                  found.stat().st_size, deleted, is_error))
    return out


def discover(inputs: Iterable[str | os.PathLike]) -> Discovery:
    """Expand files, folders and globs into the list of files to read, in a stable order.

    Folders are walked recursively in sorted order; a manifest found in a folder adds its
    flags (deleted / error) to the files it lists. Each file appears once.
    """
    disc = Discovery()
    seen: dict[Path, int] = {}

    def add(sf: SourceFile) -> None:
        if sf.path in seen:
            old = disc.files[seen[sf.path]]
            if sf.deleted or sf.export_error:  # a manifest adds flags to a walked file
                disc.files[seen[sf.path]] = SourceFile(
                    old.path, old.display, old.kind, old.size,
                    old.deleted or sf.deleted, old.export_error or sf.export_error)
            return
        seen[sf.path] = len(disc.files)
        disc.files.append(sf)

    def add_file(p: Path, explicit: bool, in_deleted_dir: bool) -> None:
        kind = _kind(p)
        if kind is None:
            if explicit:
                raise SourceError(f"{_display(p)}: not a .json, .ndjson or .jsonl file (optionally .gz)")
            disc.skipped.append((_display(p), "not a JSON/NDJSON file"))
            return
        rp = p.resolve()
        if kind == "json" and p.stat().st_size < 50 << 20:
            try:
                doc = orjson.loads(strip_bom(read_document(p)))
            except (orjson.JSONDecodeError, TruncatedInput):
                doc = None  # not a manifest; the loader reports what is wrong with it
            if _is_manifest(doc):
                disc.manifests.append(_display(p))
                for sf in _manifest_files(p, doc, disc):
                    add(sf)
                return
        add(SourceFile(rp, _display(p), kind, p.stat().st_size, in_deleted_dir))

    for raw in inputs:
        text = os.fspath(raw)
        if any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise SourceError(f"{text}: the pattern matches no file")
            paths = [Path(m) for m in matches]
        else:
            paths = [Path(text)]
        for p in paths:
            if p.is_dir():
                for root, dirs, files in os.walk(p):
                    dirs.sort()
                    in_deleted = Path(root).name == "deleted"
                    for name in sorted(files):
                        add_file(Path(root) / name, False, in_deleted)
            elif p.is_file():
                add_file(p, True, p.parent.name == "deleted")
            else:
                raise SourceError(f"{text}: no such file or folder")
    return disc


class TruncatedInput(Exception):
    """A compressed file ends early; the lines before the cut were read."""


@dataclass
class LineChunk:
    """A run of NDJSON lines: the bytes, where each line starts and ends, and its number."""

    buf: bytes
    starts: np.ndarray  # int64 byte offsets of each non-blank line
    ends: np.ndarray  # int64 end offsets (exclusive, without the newline)
    line_numbers: np.ndarray  # int64, 1-based
    blank_lines: int


def _split(buf: bytes, first_line: int, final: bool) -> tuple[LineChunk | None, bytes, int]:
    """Cut ``buf`` at newlines; return the chunk, the unfinished tail and the next line number."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    parts = []
    step = 8 << 20  # compare in cache-sized pieces: one huge boolean array is slow
    for lo in range(0, len(arr), step):
        parts.append(np.flatnonzero(arr[lo:lo + step] == 10) + lo)
    nl = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if final and (len(buf) and (len(nl) == 0 or nl[-1] != len(buf) - 1)):
        nl = np.append(nl, len(buf))  # last line without a trailing newline
    if len(nl) == 0:
        return None, buf, first_line
    consumed = int(nl[-1]) + 1
    starts = np.empty(len(nl), dtype=np.int64)
    starts[0] = 0
    starts[1:] = nl[:-1] + 1
    ends = nl.astype(np.int64)
    # strip a trailing \r (CRLF files) and find blank lines
    has_cr = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13)
    ends = ends - has_cr
    numbers = np.arange(first_line, first_line + len(nl), dtype=np.int64)
    lengths = ends - starts
    nonblank = lengths > 0
    if not nonblank.all():
        # whitespace-only lines count as blank too
        for i in np.flatnonzero(nonblank & (lengths < 8)):
            if not bytes(buf[starts[i]:ends[i]]).strip():
                nonblank[i] = False
    chunk = LineChunk(buf, starts[nonblank], ends[nonblank], numbers[nonblank],
                      int((~nonblank).sum()))
    return chunk, buf[consumed:], first_line + len(nl)


def iter_line_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES,
                     hasher=None, on_bytes=None) -> Iterator[LineChunk]:
    """Stream an NDJSON file (plain or gzip) as LineChunks of about ``chunk_bytes`` each.

    Plain files are memory-mapped, so the line buffers handed to DuckDB are zero-copy views of
    the page cache. ``hasher`` is fed the (decompressed) bytes -- from a helper thread, since
    hashlib releases the GIL -- and ``on_bytes`` is called with raw bytes consumed (progress).
    """
    with _Feeder(hasher) as feed:
        gz = is_gzip(path)
        if not gz and path.stat().st_size > 0:
            yield from _mapped_chunks(path, chunk_bytes, feed, on_bytes)
        elif gz:
            yield from _stream_chunks(path, chunk_bytes, feed, on_bytes)


def _mapped_chunks(path: Path, chunk_bytes: int, feed, on_bytes) -> Iterator[LineChunk]:
    # The map is not closed explicitly: Arrow buffers and the hashing thread may still hold
    # slices of it; it is unmapped when the last of them is garbage-collected.
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mm)
    size = len(mm)
    pos = len(BOM) if mm[:3] == BOM else 0
    if pos:
        feed(view[:pos])  # the fingerprint covers the BOM too (content_sha256)
    line_no = 1
    while pos < size:
        end = min(pos + chunk_bytes, size)
        if end < size:  # cut after the last newline inside the window
            nl = mm.rfind(b"\n", pos, end)
            end = nl + 1 if nl >= 0 else (mm.find(b"\n", end) + 1 or size)
        piece = view[pos:end]
        feed(piece)
        chunk, _, line_no = _split(piece, line_no, True)
        if on_bytes is not None:
            on_bytes(end - pos)
        if chunk is not None:
            yield chunk
        if hasattr(mm, "madvise"):  # done with these pages: keep RSS bounded on huge files
            lo = pos - pos % mmap.PAGESIZE
            mm.madvise(mmap.MADV_DONTNEED, lo, end - lo - (end - lo) % mmap.PAGESIZE)
        pos = end


def _gunzip(path: Path, chunk_bytes: int, on_bytes) -> Iterator[bytes]:
    """Decompressed pieces of a gzip file (multi-member too). A file that ends early yields
    everything that decompressed, then raises TruncatedInput."""
    with open(path, "rb") as raw:
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        started = False  # has the current member received any bytes?
        while data := raw.read(min(chunk_bytes, 4 << 20)):
            if on_bytes is not None:
                on_bytes(len(data))
            while data:
                started = True
                try:
                    out = d.decompress(data)
                except zlib.error as e:
                    raise TruncatedInput(f"corrupt compressed data ({e})") from None
                if out:
                    yield out
                data = b""
                if d.eof:  # next gzip member, if any
                    data = d.unused_data
                    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    started = False
        if started and not d.eof:
            raise TruncatedInput("the compressed stream ends early")


def _stream_chunks(path: Path, chunk_bytes: int, feed, on_bytes) -> Iterator[LineChunk]:
    tail = b""
    line_no = 1
    first = True
    pending: list[bytes] = []
    size = 0
    problem: TruncatedInput | None = None
    pieces = _gunzip(path, chunk_bytes, on_bytes)
    while True:
        try:
            piece = next(pieces)
        except StopIteration:
            piece = None
        except TruncatedInput as e:
            piece, problem = None, e
        if piece is not None:
            feed(piece)
            if first:
                if piece.startswith(BOM):
                    piece = piece[len(BOM):]
                first = False
            pending.append(piece)
            size += len(piece)
            if size < chunk_bytes:
                continue
        final = piece is None
        buf = tail + b"".join(pending)
        pending, size = [], 0
        if buf:
            chunk, tail, line_no = _split(buf, line_no, final and problem is None)
            if chunk is not None:
                yield chunk
        if final:
            if problem is not None:
                raise TruncatedInput(f"truncated compressed file: nothing readable after "
                                     f"line {line_no - 1} ({problem})")
            return


class _Feeder:
    """Feeds a hashlib object from one helper thread, in order, off the critical path."""

    def __init__(self, hasher):
        self.hasher = hasher
        self.pool = ThreadPoolExecutor(1) if hasher is not None else None

    def __call__(self, data) -> None:
        if self.pool is not None:
            self.pool.submit(self.hasher.update, data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
