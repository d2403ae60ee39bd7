"""Per-patient FHIR transaction Bundles (``bundles/<patient uuid>.json``).

Contract with the ETL (see ``sample_bundles/README.md``):

* every entry has ``fullUrl = urn:uuid:<uuid>``; references inside the bundle are
  ``urn:uuid:<uuid>``;
* the Patient entry is ``PUT Patient/<uuid>`` and carries ``id``; other entries are
  ``POST <Type>`` without ``id`` (the id is the uuid of the fullUrl);
* a later version of a resource (``meta.versionId`` 2, e.g. a corrected lab result) is a second
  entry with the *same* fullUrl, ``PUT <Type>/<uuid>`` and ``id``; bdl-7 allows equal fullUrls
  with different ``meta.versionId``. Keep the highest version per (type, id).
"""
from __future__ import annotations

import orjson

from .record import Record, Ref


def _default(o: object) -> str:
    if isinstance(o, Ref):
        return f"urn:uuid:{o.uid}"
    raise TypeError(f"cannot serialise {type(o).__name__}")


def bundle_bytes(rec: Record) -> bytes:
    entries = []
    for e in rec.entries:
        res = e.resource
        rtype, uid = res["resourceType"], res["id"]
        if rtype == "Patient" or e.update:
            body, request = res, {"method": "PUT", "url": f"{rtype}/{uid}"}
        else:
            body = {k: v for k, v in res.items() if k != "id"}
            request = {"method": "POST", "url": rtype}
        entries.append({"fullUrl": f"urn:uuid:{uid}", "resource": body, "request": request})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return orjson.dumps(bundle, default=_default, option=orjson.OPT_APPEND_NEWLINE)
