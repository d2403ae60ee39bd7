"""One patient's record while it is being generated: ids, references, timestamps.

Resources are plain dicts built in a stable key order. References are :class:`Ref` objects that
the writers turn into text at serialisation time: ``Type/<uuid>`` in the Bulk export,
``urn:uuid:<uuid>`` inside a transaction Bundle. So one build serves both export shapes and the
two always hold the same keys.

Ids are uuid4-shaped values drawn from the patient's own seeded :class:`random.Random`, so a
patient's resources do not depend on which patients were generated before it (the stream and
the sample can generate patients independently and in any order).
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache, lru_cache

from . import codes as C


class Ref:
    """A reference to a resource of the same patient record (serialised by the writers)."""

    __slots__ = ("rtype", "uid")

    def __init__(self, rtype: str, uid: str) -> None:
        self.rtype = rtype
        self.uid = uid

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Ref({self.rtype}/{self.uid})"


def ref(r: Ref) -> dict:
    """A FHIR Reference element pointing at ``r``."""
    return {"reference": r}


@cache
def _last_sunday(year: int, month: int) -> date:
    d = date(year, month, 31 if month in (3, 10) else 30)
    return d - timedelta(days=(d.weekday() + 1) % 7)


@lru_cache(maxsize=65536)
def berlin_offset(d: date) -> str:
    """UTC offset of Europe/Berlin local time during the day ``d`` (after 03:00).

    EU rule: summer time from the last Sunday of March to the last Sunday of October (of
    September until 1995). Implemented here so output does not depend on the system tz database.
    """
    start = _last_sunday(d.year, 3)
    end = _last_sunday(d.year, 9 if d.year <= 1995 else 10)
    return "+02:00" if start <= d < end else "+01:00"


def ts(d: date, minute_of_day: int) -> str:
    """Local date-time with offset, e.g. ``2006-03-12T08:14:00+01:00``."""
    h, m = divmod(minute_of_day, 60)
    return f"{d.isoformat()}T{h:02d}:{m:02d}:00{berlin_offset(d)}"


def days(n: int) -> timedelta:
    return timedelta(days=n)


@dataclass
class Entry:
    resource: dict
    update: bool = False  # a later version of an already written resource (same id)


@dataclass
class Record:
    """Resources of one patient, in generation order (the Patient first)."""

    rng: random.Random
    patient_id: str = ""
    entries: list[Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.patient_id:
            self.patient_id = self.uuid()
        self.patient_ref = Ref("Patient", self.patient_id)
        self.subject = {"reference": self.patient_ref}

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    @contextmanager
    def stream(self, name: str) -> Iterator[random.Random]:
        """Draw from a random stream of this patient's own, named ``name``, inside the block.

        Resources added after a sample was published take their ids and values from such a
        stream (seeded by the patient id and ``name``), so the main stream, and with it every
        id and value generated before, stays where it was.
        """
        main = self.rng
        self.rng = random.Random(f"{self.patient_id}/{name}")
        try:
            yield self.rng
        finally:
            self.rng = main

    def new(self, rtype: str, uid: str | None = None) -> tuple[dict, Ref]:
        """Start a resource (``resourceType`` and ``id`` first) and append it to the record."""
        uid = uid or self.uuid()
        res = {"resourceType": rtype, "id": uid}
        self.entries.append(Entry(res))
        return res, Ref(rtype, uid)

    def add_version(self, res: dict) -> None:
        """Append ``res`` as a later version of a resource already in the record."""
        self.entries.append(Entry(res, update=True))

    # --- small, frequently used resources -------------------------------------------------
    def encounter(
        self, start: date, end: date | None = None, cls: str = "AMB", text: str = "Oncology visit",
        minute: int = 8 * 60, expired: bool = False,
    ) -> Ref:
        res, r = self.new("Encounter")
        res["status"] = "finished"
        res["class"] = C.ENC_CLASS[cls]
        res["type"] = [{"text": text}]
        res["subject"] = self.subject
        end = end or start
        end_minute = minute + 90 if end == start else 11 * 60
        res["period"] = {"start": ts(start, minute), "end": ts(end, end_minute)}
        if expired:
            res["hospitalization"] = {"dischargeDisposition": C.DISCHARGE_EXPIRED}
        return r
