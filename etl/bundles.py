"""Walk JSON documents (single resources and Bundles of every type) into records.

A Bundle's entries become records with the entry's path (``entry[3]``, nested
``entry[3].entry[0]``), its ``fullUrl`` (for ``urn:uuid:`` references) and its request
(``DELETE`` entries remove resources). The Bundle itself is kept as a record of type Bundle
(without its entries), so per-type counts include it, as exporters count them.

Ids: a resource without an id (a transaction POST) gets a stable id derived from its
fullUrl -- the uuid itself for ``urn:uuid:<uuid>``, the last path segment of an absolute
``.../Type/id`` URL, else a hash of the fullUrl; with no fullUrl either, a hash of its content
(``bmc view`` asks for no content hash: a view shows the resource as given, id empty).

A document may also be a JSON array of resources (some tools write one): each item is walked
like a document of its own, with the entry path ``item[i]``. ``GET``/``HEAD`` entries of a
batch or transaction (searches and reads, no resource) are not records: they come out as
``skip`` records, counted and otherwise ignored.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

# Elements every FHIR resource may have (Resource and DomainResource), plus Bundle.entry: an
# object with one of these is a FHIR record (perhaps a broken one); an object with none (an
# export's log line, a test-case file) is not FHIR at all.
_FHIR_ELEMENTS = frozenset(("resourceType", "id", "meta", "implicitRules", "language", "text",
                            "contained", "extension", "modifierExtension", "entry"))
_NOT_RECORDS = frozenset(("GET", "HEAD"))  # request methods of entries that read, not write
_TOO_DEEP = "the resource is nested too deeply to be read"
_UUID_URN = re.compile(r"^urn:uuid:([0-9A-Fa-f-]{1,64})$")
_TYPE_ID_URL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$")


@dataclass(slots=True)
class Record:
    """One resource (or deletion) read from a JSON document, with where it came from."""

    text: bytes | None  # the resource as JSON (None for a DELETE entry)
    resource_type: str | None
    resource_id: str | None
    entry: str | None  # bundle entry path; None for a document that is itself the resource
    full_url: str | None = None
    method: str | None = None  # request.method of a transaction/batch entry
    problem: str | None = None  # why this record cannot be loaded, if it cannot
    id_derived: bool = False
    skip: str | None = None  # not a record at all (a GET entry): why


def looks_like_fhir(doc: object) -> bool:
    """Is this parsed JSON a FHIR record (maybe a broken one), or a list holding one?"""
    if isinstance(doc, dict):
        return not _FHIR_ELEMENTS.isdisjoint(doc)
    if isinstance(doc, list):
        return any(isinstance(x, dict) and not _FHIR_ELEMENTS.isdisjoint(x) for x in doc)
    return False


def derived_id(full_url: str | None, text: bytes) -> str:
    """The stable id given to a resource that has none (see module docstring)."""
    if full_url:
        m = _UUID_URN.match(full_url)
        if m:
            return m.group(1).lower()
        m = _TYPE_ID_URL.search(full_url)
        if m:
            return m.group(2)
        return "fu-" + hashlib.sha1(full_url.encode()).hexdigest()[:32]
    return "h-" + hashlib.sha1(text).hexdigest()[:32]


def _delete_target(url: str) -> tuple[str | None, str | None, str | None]:
    """(type, id, problem) of a DELETE entry's request.url."""
    if "?" in url:
        return url.split("?", 1)[0] or None, None, "conditional DELETE is not supported"
    m = _TYPE_ID_URL.search(url)
    if not m:
        return None, None, "DELETE entry whose request.url is not Type/id"
    return m.group(1), m.group(2), None


def walk_document(doc: object, entry_prefix: str | None = None, *,
                  hash_ids: bool = True) -> Iterator[Record]:
    """Records of one parsed JSON document: a resource, a Bundle and all its entries, or each
    item of an array of resources. ``hash_ids=False``: a resource with neither id nor fullUrl
    keeps no id (``resource_id`` None) instead of a hash of its content."""
    if isinstance(doc, list):
        prefix = f"{entry_prefix}." if entry_prefix else ""
        for i, item in enumerate(doc):
            yield from walk_document(item, f"{prefix}item[{i}]", hash_ids=hash_ids)
        return
    if not isinstance(doc, dict):
        yield Record(None, None, None, entry_prefix, problem="not a JSON object")
        return
    yield from _walk(doc, entry_prefix, None, None, hash_ids)


def _dumps(res: dict) -> bytes | None:
    """The resource as compact JSON; None when it is nested too deeply to be written."""
    try:
        return orjson.dumps(res)
    except orjson.JSONEncodeError:  # orjson writes at most 255 levels of nesting
        pass
    try:  # the standard library goes as deep as the Python stack (NDJSON lines load too)
        return json.dumps(res, ensure_ascii=False, separators=(",", ":")).encode()
    except (RecursionError, ValueError):
        return None


def _walk(res: dict, entry: str | None, full_url: str | None,
          method: str | None = None, hash_ids: bool = True) -> Iterator[Record]:
    rtype = res.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        yield Record(None, None, None, entry, full_url, method, problem="missing resourceType")
        return
    rid = res.get("id")
    has_id = isinstance(rid, str) and bool(rid)
    if rtype != "Bundle":
        text = _dumps(res)
        if text is None:
            yield Record(None, rtype, rid if has_id else None, entry, full_url, method,
                         problem=_TOO_DEEP)
        elif has_id:
            yield Record(text, rtype, rid, entry, full_url, method)
        elif full_url or hash_ids:  # the derived id is written into the resource: every view sees it
            did = derived_id(full_url, text)
            yield Record(_dumps({**res, "id": did}), rtype, did, entry, full_url, method,
                         id_derived=True)
        else:
            yield Record(text, rtype, None, entry, full_url, method)
        return
    entries = res.get("entry") or []
    header = {k: v for k, v in res.items() if k != "entry"}
    htext = _dumps(header)
    whole = _dumps(res) if not has_id else b""
    if htext is None or whole is None:
        yield Record(None, "Bundle", rid if has_id else None, entry, full_url, method,
                     problem=_TOO_DEEP)
        return
    if not has_id:
        did = derived_id(full_url, whole)
        yield Record(_dumps({**header, "id": did}), "Bundle", did, entry, full_url,
                     method, id_derived=True)
    else:
        yield Record(htext, "Bundle", rid, entry, full_url, method)
    if not isinstance(entries, list):
        yield Record(None, "Bundle", None, entry, problem="Bundle.entry is not a list")
        return
    prefix = f"{entry}." if entry else ""
    for i, e in enumerate(entries):
        path = f"{prefix}entry[{i}]"
        if not isinstance(e, dict):
            yield Record(None, None, None, path, problem="bundle entry is not a JSON object")
            continue
        url_value, request_value = e.get("fullUrl"), e.get("request")
        furl = url_value if isinstance(url_value, str) else None
        request = request_value if isinstance(request_value, dict) else {}
        m = request.get("method")
        if m == "DELETE":
            del_type, del_id, problem = _delete_target(str(request.get("url") or ""))
            yield Record(None, del_type, del_id, path, furl, "DELETE", problem=problem)
            continue
        resource = e.get("resource")
        if resource is None:
            if isinstance(e.get("response"), dict):
                continue  # transaction-response / batch-response entries carry no resource
            if m in _NOT_RECORDS:
                yield Record(None, None, None, path, furl, m, skip=f"{m} entry (a read, not a record)")
                continue
            yield Record(None, None, None, path, furl, m, problem="bundle entry without resource")
            continue
        if not isinstance(resource, dict):
            yield Record(None, None, None, path, furl, m, problem="entry.resource is not a JSON object")
            continue
        yield from _walk(resource, path, furl, m, hash_ids)
