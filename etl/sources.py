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

import errno
import glob
import hashlib
import os
import stat
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
    # folders and files that exist but cannot be read: the loader books each as a load_error
    # row (exit 3), so nothing inside them is lost without a word
    unreadable: list[tuple[str, str]] = field(default_factory=list)


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


def _not_regular(path: Path) -> str | None:
    """Why ``path`` (a name a folder walk met) is not a file to read, or None if it is one.

    A dangling symlink, a symlink loop, a FIFO or a socket would otherwise crash the walk or
    block the load forever (a FIFO's reader waits for a writer)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "a symlink to nothing (dangling)" if path.is_symlink() else "vanished"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symlink loop"
        return f"cannot be examined ({e.strerror or e})"
    if stat.S_ISREG(st.st_mode):
        return None
    what = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
            "a socket" if stat.S_ISSOCK(st.st_mode) else
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
            "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file")
    return f"{what}, not a regular file"


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


def head(path: Path, n: int = 4096) -> bytes:
    """The first ``n`` bytes of the file's (decompressed) content."""
    with open(path, "rb") as f:
        raw = f.read(n if not is_gzip(path) else 64 << 10)
    if raw[:2] != b"\x1f\x8b":
        return raw[:n]
    try:
        return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(raw, n)
    except zlib.error:
        return b""


_WIDE = (  # (byte-order mark or the NULs around a leading ASCII byte, what the file is)
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian) text"), (b"\x00\x00\xfe\xff", "UTF-32 (big-endian) text"),
    (b"\xff\xfe", "UTF-16 (little-endian) text"), (b"\xfe\xff", "UTF-16 (big-endian) text"),
)


def text_problem(start: bytes, kind: str) -> str | None:
    """What the file is, when its text cannot be FHIR JSON as written; None when it can.

    FHIR JSON is UTF-8. A file saved as UTF-16 or UTF-32 (with or without a byte-order mark),
    or NDJSON whose lines end with a lone CR (classic Mac OS), would otherwise be reported as
    invalid JSON on every line; one message naming what the file is says what to fix.
    """
    for mark, what in _WIDE:
        if start.startswith(mark):
            return f"the file is {what}; FHIR JSON must be UTF-8 (re-save it as UTF-8)"
    four = start[:4]
    if len(four) == 4 and four[0] and not four[1] and not four[2] and not four[3]:
        return "the file is UTF-32 (little-endian) text; FHIR JSON must be UTF-8 (re-save it as UTF-8)"
    if len(four) == 4 and not four[0] and not four[1] and not four[2] and four[3]:
        return "the file is UTF-32 (big-endian) text; FHIR JSON must be UTF-8 (re-save it as UTF-8)"
    if len(four) >= 2 and four[0] and not four[1]:
        return "the file is UTF-16 (little-endian) text; FHIR JSON must be UTF-8 (re-save it as UTF-8)"
    if len(four) >= 2 and not four[0] and four[1]:
        return "the file is UTF-16 (big-endian) text; FHIR JSON must be UTF-8 (re-save it as UTF-8)"
    if kind == "ndjson" and b"\n" not in start and \
            sum(1 for part in start.split(b"\r") if part.strip()) > 1:
        return ("the file's lines end with a lone CR (classic Mac OS line endings); NDJSON lines "
                "end with LF or CRLF (convert the line endings)")
    return None


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
        why = _not_regular(p)
        if why is not None:
            if explicit:
                raise SourceError(f"{_display(p)}: {why}")
            disc.skipped.append((_display(p), why))
            return
        if not os.access(p, os.R_OK):
            disc.unreadable.append((_display(p), "the file cannot be read (permission denied)"))
            return
        rp = p.resolve()
        if kind == "json" and p.stat().st_size < 50 << 20:
            try:
                doc = orjson.loads(strip_bom(read_document(p)))
            except (orjson.JSONDecodeError, TruncatedInput, OSError):
                doc = None  # not a manifest; the loader reports what is wrong with it
            if _is_manifest(doc):
                disc.manifests.append(_display(p))
                for sf in _manifest_files(p, doc, disc):
                    add(sf)
                return
        add(SourceFile(rp, _display(p), kind, p.stat().st_size, in_deleted_dir))

    def unreadable_folder(e: OSError) -> None:  # os.walk skips these silently otherwise
        disc.unreadable.append((_display(Path(e.filename)),
                                f"the folder cannot be read ({e.strerror or e})"))

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
                for root, dirs, files in os.walk(p, onerror=unreadable_folder):
                    dirs.sort()
                    in_deleted = Path(root).name == "deleted"
                    for name in sorted(files):
                        add_file(Path(root) / name, False, in_deleted)
            elif p.is_file() or (p.exists() and not p.is_dir()):
                add_file(p, True, p.parent.name == "deleted")
            elif p.is_symlink():
                raise SourceError(f"{text}: {_not_regular(p)}")
            else:
                raise SourceError(f"{text}: no such file or folder")
    return disc


class TruncatedInput(Exception):
    """A compressed file ends early; the lines before the cut were read."""


_WHITESPACE = np.array([0x20, 0x09, 0x0D, 0x0A], dtype=np.uint8)  # JSON's insignificant whitespace


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
    # a line of only whitespace is a blank line, wherever it is: candidates are the lines that
    # start with a JSON whitespace byte (rare in NDJSON), each checked in full
    first_byte = arr[np.minimum(starts, max(len(arr) - 1, 0))] if len(arr) else starts
    for i in np.flatnonzero(nonblank & np.isin(first_byte, _WHITESPACE)):
        if not bytes(buf[starts[i]:ends[i]]).strip(b" \t\r\n"):
            nonblank[i] = False
    chunk = LineChunk(buf, starts[nonblank], ends[nonblank], numbers[nonblank],
                      int((~nonblank).sum()))
    return chunk, buf[consumed:], first_line + len(nl)


def iter_line_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES,
                     hasher=None, on_bytes=None) -> Iterator[LineChunk]:
    """Stream an NDJSON file (plain or gzip) as LineChunks of about ``chunk_bytes`` each.

    Plain files are read with ordinary reads, not memory-mapped: a file cut short while it is
    being read (a copy still running, a truncation) ends a memory map with SIGBUS, which kills
    the process with no message; a read just returns less. A plain file that ends before the
    size it had when reading started raises TruncatedInput after its complete lines.
    ``hasher`` is fed the (decompressed) bytes -- from a helper thread, since hashlib releases
    the GIL -- and ``on_bytes`` is called with raw bytes consumed (progress).
    """
    with _Feeder(hasher) as feed:
        if is_gzip(path):
            yield from _stream_chunks(path, _gunzip(path, chunk_bytes, on_bytes), chunk_bytes,
                                      feed, "truncated compressed file")
        else:
            yield from _stream_chunks(path, _plain(path, chunk_bytes, on_bytes), chunk_bytes,
                                      feed, "the file was cut short while being read")


def _plain(path: Path, chunk_bytes: int, on_bytes) -> Iterator[bytes]:
    """Pieces of a plain file; TruncatedInput if it ends before its size at the start."""
    with open(path, "rb") as f:
        expected = os.fstat(f.fileno()).st_size
        got = 0
        while data := f.read(chunk_bytes):
            got += len(data)
            if on_bytes is not None:
                on_bytes(len(data))
            yield data
    if got < expected:
        raise TruncatedInput(f"{got} of {expected} bytes")


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


def _stream_chunks(path: Path, pieces: Iterator[bytes], chunk_bytes: int, feed,
                   cut_message: str) -> Iterator[LineChunk]:
    tail = b""
    line_no = 1
    first = True
    pending: list[bytes] = []
    size = 0
    problem: TruncatedInput | None = None
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
        buf = tail + b"".join(pending) if pending else tail
        pending, size = [], 0
        if buf:
            chunk, tail, line_no = _split(buf, line_no, final and problem is None)
            if chunk is not None:
                yield chunk
        if final:
            if problem is not None:
                raise TruncatedInput(f"{cut_message}: nothing readable after "
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
