"""Real FHIR nobody on the team wrote (../shared/external) loads without crashing, and every
resource SOURCES.md counts is accounted for: loaded (current, superseded or duplicate) or
rejected with a reason."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from etl.ingest import resource_types
from etl.load import load
from tests.conftest import EXTERNAL

FOLDERS = sorted(p.name for p in EXTERNAL.iterdir() if p.is_dir() and p.name != "sql-on-fhir-v2-tests") \
    if EXTERNAL.is_dir() else []


def expected_counts(folder: str) -> Counter:
    """Per-type resource counts as SOURCES.md states them (incl. Bundle entries, nested)."""
    text = (EXTERNAL / "SOURCES.md").read_text()
    section = text.split(f"#### {folder}\n", 1)[1].split("\n#### ", 1)[0]
    line = re.search(r"- resources \(incl\. Bundle entries, nested\): (.*)", section).group(1)
    return Counter({t: int(n) for t, n in re.findall(r"([A-Za-z0-9-]+) (\d+)", line)})


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    if not EXTERNAL.is_dir():
        pytest.skip(f"{EXTERNAL} is not present")
    out = {}
    for folder in FOLDERS:
        db = tmp_path_factory.mktemp(folder) / "x.duckdb"
        out[folder] = (db, load(db, [EXTERNAL / folder]))
    return out


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_counted_resource_is_loaded_or_rejected(loaded, folder):
    db, _ = loaded[folder]
    con = duckdb.connect(str(db), read_only=True)
    got = Counter(dict(con.execute(
        "SELECT resource_type, count(*) FROM resource WHERE status <> 'rejected' GROUP BY 1").fetchall()))
    rejected = Counter(dict(con.execute(
        "SELECT resource_type, count(*) FROM load_error WHERE resource_type IS NOT NULL "
        "GROUP BY 1").fetchall()))
    (unknown_rejected,) = con.execute(
        "SELECT count(*) FROM load_error WHERE reason = 'unknown resourceType'").fetchone()
    con.close()
    expected = expected_counts(folder)
    # a type that is not FHIR's is never echoed (load_error.resource_type is NULL): those
    # resources are counted among the 'unknown resourceType' rejections instead
    unknown = Counter({t: n for t, n in expected.items() if t not in resource_types()})
    assert got + rejected == expected - unknown
    assert unknown_rejected == sum(unknown.values())


def test_reloading_every_folder_is_a_no_op(loaded):
    for folder, (db, _) in loaded.items():
        before = _snapshot(db)
        again = load(db, [EXTERNAL / folder])
        assert again.loaded == 0, folder
        assert _snapshot(db) == before, folder


def _snapshot(db: Path):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT _rid, status FROM resource ORDER BY _rid").fetchall()
    finally:
        con.close()


def test_export_logs_are_reported_as_non_resource_files(loaded):
    _, r = loaded["synthea-bulk-10-patients"]
    assert [Path(f).name for f in r.non_resource_files] == ["log.ndjson"]


def test_patients_restated_byte_for_byte_are_duplicates_not_new_versions(loaded):
    """Patient_2.ndjson repeats three lines of Patient.ndjson exactly, at other positions:
    the same content wherever a line sits is a duplicate (issue 10, item 7)."""
    db, _ = loaded["synthea-pathling-server-import"]
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT status, count(*) FROM resource WHERE resource_type = 'Patient' "
                       "AND status <> 'current' GROUP BY 1").fetchall() == [("duplicate", 3)]
    con.close()


def test_synthea_conditional_references_resolve_through_identifiers(loaded):
    """Synthea's bulk exporter writes requester = Practitioner?identifier=<npi system>|<npi>."""
    db, r = loaded["synthea-bulk-10-patients"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        keys = con.execute("SELECT DISTINCT requester_key FROM medication_request").fetchall()
        locations = con.execute("SELECT count(*) FROM encounter, unnest(location_keys) u(k) "
                                "WHERE k LIKE 'Location/%'").fetchall()[0][0]
    finally:
        con.close()
    assert keys and all(k.startswith("Practitioner/") and "?" not in k for (k,) in keys)
    assert locations > 0
    assert r.unresolved == {}
