"""Results as FHIR R4 resources: the cohort as a Group, the screen as a List, the attrition
funnel as a MeasureReport and each adjudication as an Observation.

Pure functions from the result frames to plain dicts (JSON-ready, validated in the tests
with ``fhir.resources.R4B``). Patient references are the keys as loaded (``Patient/<id>``),
so a server holding the same export resolves them, and the Group can drive a Bulk Data
``Group/[id]/$export`` of the cohort's full records.

Why an **Observation** per adjudication (not a ClinicalImpression): Observation is normative
in R4 and read by every FHIR store, SQL-on-FHIR view and Bulk Data client (``bmc load`` puts
it in the ``observation`` table); ClinicalImpression is maturity 0 in R4 and was reshaped in
R5. An adjudication is one coded finding about one patient at one time -- exactly an
Observation: ``valueCodeableConcept`` from the condition verification-status code system
(confirmed / refuted / unconfirmed), ``performer`` the reviewer, ``note`` the note,
``effectiveDateTime`` when it was made; the definition build it was made on is an extension.

The extension and code-system URLs under :data:`BASE` belong to this tool; they are not
published profiles.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

BASE = "https://bmc-cohort.example.org/fhir"
EXT_BUILD = f"{BASE}/StructureDefinition/definition-build"
EXT_PARAMETER = f"{BASE}/StructureDefinition/definition-parameter"
EXT_ROUTE = f"{BASE}/StructureDefinition/cohort-route"
EXT_REASONS = f"{BASE}/StructureDefinition/screen-reasons"
EXT_REMOVED = f"{BASE}/StructureDefinition/funnel-removed"
CS_TIER = f"{BASE}/CodeSystem/screen-tier"
CS_FUNNEL = f"{BASE}/CodeSystem/funnel-step"
CS_REVIEW = f"{BASE}/CodeSystem/review"
MEASURE = f"{BASE}/Measure/bmc-cohort"
VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
LIST_ORDER = "http://terminology.hl7.org/CodeSystem/list-order"
#: review verdict -> (condition-ver-status code, display)
VERDICT_CODES = {"confirmed": ("confirmed", "Confirmed"), "not_bmc": ("refuted", "Refuted"),
                 "unsure": ("unconfirmed", "Unconfirmed")}
DEFINITION = ("bone marrow carcinomatosis in breast cancer: marrow involvement by histology or "
              "cytology, or a leukoerythroblastic smear with cytopenia of CTCAE grade >= 1 "
              "(Anticancer Research 31:4025-4030, 2011)")


def _day(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date().isoformat()


def _instant(value: dt.datetime) -> str:
    """An instant with its offset (FHIR requires one), to the second."""
    return pd.Timestamp(value).to_pydatetime().isoformat(timespec="seconds")


def _id(kind: str, *parts: str) -> str:
    """A stable FHIR id from what the resource was built from (at most 64 characters)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    return f"bmc-{kind}-{digest}"


def _definition_extensions(build: str | None, parameters: Mapping[str, str]) -> list[dict]:
    ext: list[dict[str, Any]] = [{"url": EXT_BUILD, "valueString": build}] if build else []
    ext += [{"url": EXT_PARAMETER, "extension": [{"url": "name", "valueString": k},
                                                 {"url": "value", "valueString": str(v)}]}
            for k, v in sorted(parameters.items())]
    return ext


def _patient(patient_id: str) -> dict:
    return {"reference": f"Patient/{patient_id}"}


def cohort_group(cohort: pd.DataFrame, build: str | None, parameters: Mapping[str, str]) -> dict:
    """The cohort as a Group (person, actual): one member per patient, ``period.start`` the
    index date, the route as an extension; the definition, its parameters and the build in
    ``characteristic`` and extensions."""
    members = []
    for r in cohort.itertuples(index=False):
        member: dict[str, Any] = {"entity": _patient(r.patient_id)}
        start = _day(r.index_date)
        if start:
            member["period"] = {"start": start}
        if isinstance(r.route, str):
            member["extension"] = [{"url": EXT_ROUTE, "valueCode": r.route}]
        members.append(member)
    group: dict[str, Any] = {
        "resourceType": "Group",
        "id": _id("cohort", build or "", json.dumps(dict(parameters), sort_keys=True)),
        "extension": _definition_extensions(build, parameters),
        "type": "person", "actual": True,
        "name": "BMC cohort",
        "quantity": len(members),
        "characteristic": [{"code": {"text": DEFINITION}, "valueBoolean": True,
                            "exclude": False}],
    }
    if members:
        group["member"] = members
    return group


def screen_list(screen: pd.DataFrame, build: str | None, parameters: Mapping[str, str],
                now: dt.datetime) -> dict:
    """The screen as a List (current, working), ordered by priority: one entry per screened
    patient referencing the Patient, the tier in ``entry.flag``, the reasons an extension."""
    entries = []
    for r in screen.itertuples(index=False):
        tier = str(r.tier)
        entry: dict[str, Any] = {
            "flag": {"coding": [{"system": CS_TIER, "code": tier,
                                 "display": f"tier {tier}" if tier != "excluded" else
                                 "excluded"}]},
            "item": _patient(r.patient_id)}
        if isinstance(r.reasons, str) and r.reasons:
            entry["extension"] = [{"url": EXT_REASONS, "valueString": r.reasons}]
        entries.append(entry)
    resource: dict[str, Any] = {
        "resourceType": "List",
        "id": _id("screen", build or "", json.dumps(dict(parameters), sort_keys=True)),
        "extension": _definition_extensions(build, parameters),
        "status": "current", "mode": "working",
        "title": "BMC screen: candidates for unrecognised bone marrow carcinomatosis",
        "date": _instant(now),
        "orderedBy": {"coding": [{"system": LIST_ORDER, "code": "priority",
                                  "display": "Sorted by Priority"}]},
    }
    if entries:
        resource["entry"] = entries
    else:
        resource["emptyReason"] = {"text": "no patient screened"}
    return resource


def funnel_report(funnel: pd.DataFrame, build: str | None, parameters: Mapping[str, str],
                  period: tuple[str, str], now: dt.datetime) -> dict:
    """The attrition funnel as a MeasureReport (summary, complete): one population per step
    (the rules, then the routes), ``count`` the patients left, the patients removed at the
    step as an extension."""
    populations = []
    for r in funnel.itertuples(index=False):
        code = r.rule if r.kind == "rule" else f"route: {r.rule}"
        pop: dict[str, Any] = {"code": {"coding": [{"system": CS_FUNNEL, "code": code}],
                                        "text": str(r.description)},
                               "count": int(r.patients)}
        removed = r.excluded
        if removed is not None and not (isinstance(removed, float) and math.isnan(removed)) \
                and not pd.isna(removed):
            pop["extension"] = [{"url": EXT_REMOVED, "valueInteger": int(removed)}]
        populations.append(pop)
    return {
        "resourceType": "MeasureReport",
        "id": _id("funnel", build or "", json.dumps(dict(parameters), sort_keys=True)),
        "extension": _definition_extensions(build, parameters),
        "status": "complete", "type": "summary", "measure": MEASURE,
        "date": _instant(now),
        "period": {"start": period[0], "end": period[1]},
        "group": [{"code": {"text": "attrition funnel of the BMC cohort definition"},
                   "population": populations}],
    }


def review_observations(reviews: pd.DataFrame) -> list[dict]:
    """One Observation per adjudication (``review`` rows, oldest first)."""
    out = []
    for r in reviews.itertuples(index=False):
        code, display = VERDICT_CODES[r.verdict]
        obs: dict[str, Any] = {
            "resourceType": "Observation", "id": r.review_id,
            "status": "final",
            "code": {"coding": [{"system": CS_REVIEW, "code": "bmc-adjudication",
                                 "display": "Bone marrow carcinomatosis: chart review "
                                            "adjudication"}],
                     "text": "BMC chart review adjudication"},
            "subject": _patient(r.patient_id),
            "effectiveDateTime": _instant(r.reviewed_at),
            "issued": _instant(r.reviewed_at),
            "performer": [{"display": r.reviewer}],
            "valueCodeableConcept": {"coding": [{"system": VER_STATUS, "code": code,
                                                 "display": display}]},
        }
        if isinstance(r.definition_build, str) and r.definition_build:
            obs["extension"] = [{"url": EXT_BUILD, "valueString": r.definition_build}]
        if isinstance(r.note, str) and r.note:
            obs["note"] = [{"text": r.note}]
        out.append(obs)
    return out


def json_text(resource: Mapping[str, Any]) -> str:
    """One resource as a JSON document."""
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def ndjson(resources: Iterable[Mapping[str, Any]]) -> str:
    """Resources as NDJSON (one per line), as Bulk Data writes them."""
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for r in resources)


#: The days the data cover: every date the definition read (bmc_date), for the report period.
PERIOD_SQL = "SELECT min(date_lo)::VARCHAR, max(date_hi)::VARCHAR FROM bmc_date"


def data_period(con) -> tuple[str, str]:
    """(first, last) day of the dates the definition read; today-free, so reruns agree."""
    lo, hi = con.execute(PERIOD_SQL).fetchone()
    if lo is None:
        raise ValueError("no dates in bmc_date")
    return lo, hi
