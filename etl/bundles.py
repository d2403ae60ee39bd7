"""Walk JSON documents (single resources and Bundles of every type) into records.

A Bundle's entries become records with the entry's path (``entry[3]``, nested
``entry[3].entry[0]``), its ``fullUrl`` (for ``urn:uuid:`` references) and its request
(``DELETE`` entries remove resources). The Bundle itself is kept as a record of type Bundle
(without its entries), so per-type counts include it, as exporters count them.

Ids: a resource without an id (a transaction POST) gets a stable id derived from its
fullUrl -- the uuid itself for ``urn:uuid:<uuid>``, the last path segment of an absolute
``.../Type/id`` URL, else a hash of the fullUrl; with no fullUrl either, a hash of its content.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

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


def walk_document(doc: object, entry_prefix: str | None = None) -> Iterator[Record]:
    """Records of one parsed JSON document: a resource, or a Bundle and all its entries."""
    if not isinstance(doc, dict):
        yield Record(None, None, None, entry_prefix, problem="not a JSON object")
        return
    yield from _walk(doc, entry_prefix, None)


def _walk(res: dict, entry: str | None, full_url: str | None,
          method: str | None = None) -> Iterator[Record]:
    rtype = res.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        yield Record(None, None, None, entry, full_url, method, problem="missing resourceType")
        return
    if rtype != "Bundle":
        text = orjson.dumps(res)
        rid = res.get("id")
        if isinstance(rid, str) and rid:
            yield Record(text, rtype, rid, entry, full_url, method)
        else:  # the derived id is written into the resource so every view sees it
            did = derived_id(full_url, text)
            yield Record(orjson.dumps({**res, "id": did}), rtype, did, entry, full_url, method,
                         id_derived=True)
        return
    entries = res.get("entry") or []
    header = {k: v for k, v in res.items() if k != "entry"}
    htext = orjson.dumps(header)
    rid = res.get("id")
    if not (isinstance(rid, str) and rid):
        did = derived_id(full_url, orjson.dumps(res))
        yield Record(orjson.dumps({**header, "id": did}), "Bundle", did, entry, full_url,
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
        furl = e.get("fullUrl") if isinstance(e.get("fullUrl"), str) else None
        request = e.get("request") if isinstance(e.get("request"), dict) else {}
        m = request.get("method")
        if m == "DELETE":
            dtype, did, problem = _delete_target(str(request.get("url") or ""))
            yield Record(None, dtype, did, path, furl, "DELETE", problem=problem)
            continue
        resource = e.get("resource")
        if resource is None:
            if isinstance(e.get("response"), dict):
                continue  # transaction-response / batch-response entries carry no resource
            yield Record(None, None, None, path, furl, m, problem="bundle entry without resource")
            continue
        if not isinstance(resource, dict):
            yield Record(None, None, None, path, furl, m, problem="entry.resource is not a JSON object")
            continue
        yield from _walk(resource, path, furl, m)
