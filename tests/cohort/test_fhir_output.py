"""Results as FHIR: the cohort as a Group, the screen as a List, the funnel as a
MeasureReport, adjudications as Observations. Every resource validates with
fhir.resources R4B, and `bmc load` (with --validate) reads them back without rejection."""
from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest
from fhir.resources.R4B.group import Group
from fhir.resources.R4B.list import List
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.observation import Observation
from typer.testing import CliRunner

from cohort import fhir_out
from cohort.cli import app as cli
from cohort.review import store
from cohort.runner import open_database
from tests.cohort.review_db import PLANTED, SCRIPT, fresh_db

runner = CliRunner()
T0 = dt.datetime(2024, 6, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A database with two adjudications and every FHIR output written by the CLI."""
    tmp = tmp_path_factory.mktemp("fhir")
    db = fresh_db(tmp)
    con = open_database(db)
    try:
        first = con.execute("SELECT patient_id FROM bmc_screen WHERE tier = '2' ORDER BY rank "
                            "LIMIT 1").fetchone()[0]
        store.add_review(con, first, "not_bmc", "", "Dr. A", T0)
        store.add_review(con, PLANTED, "confirmed", SCRIPT, "Dr. B", T0 + dt.timedelta(hours=1))
        store.add_review(con, PLANTED, "unsure", "", "Dr. B", T0 + dt.timedelta(hours=2))
    finally:
        con.close()
    out = tmp / "out"
    out.mkdir()
    for args in (["cohort", "--format", "fhir", "--out", str(out / "group.json"),
                  "--funnel", str(out / "funnel.json")],
                 ["screen", "--format", "fhir", "--out", str(out / "list.json")],
                 ["review", "--export", str(out / "reviews.ndjson"), "--format", "fhir"]):
        done = runner.invoke(cli, [*args, "--db", str(db)])
        assert done.exit_code == 0, done.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {t: con.execute(f"SELECT * FROM {t}").df()
                  for t in ("bmc_cohort", "bmc_screen", "bmc_funnel", "review")}
    finally:
        con.close()
    return out, tables


def read(path):
    return json.loads(path.read_text())


def test_the_cohort_is_a_group_of_its_patients_from_their_index_dates(made):
    out, t = made
    doc = read(out / "group.json")
    group = Group.model_validate(doc)
    assert (group.type, group.actual, group.quantity) == ("person", True, len(t["bmc_cohort"]))
    members = {m["entity"]["reference"]: m for m in doc["member"]}
    expected = {f"Patient/{r.patient_id}": (r.index_date.date().isoformat(), r.route)
                for r in t["bmc_cohort"].itertuples()}
    assert {k: (m["period"]["start"], m["extension"][0]["valueCode"])
            for k, m in members.items()} == expected
    ext = {e["url"]: e for e in doc["extension"]}
    build = ext[fhir_out.EXT_BUILD]["valueString"]
    assert build == t["review"].definition_build.iloc[0]
    params = {e["extension"][0]["valueString"]: e["extension"][1]["valueString"]
              for e in doc["extension"] if e["url"] == fhir_out.EXT_PARAMETER}
    assert params["smear_window_days"] == "14"


def test_the_screen_is_a_working_list_with_the_tier_as_flag_and_the_reasons(made):
    out, t = made
    doc = read(out / "list.json")
    lst = List.model_validate(doc)
    assert (lst.status, lst.mode) == ("current", "working")
    got = [(e["item"]["reference"], e["flag"]["coding"][0]["code"],
            e["extension"][0]["valueString"]) for e in doc["entry"]]
    screen = t["bmc_screen"].sort_values("rank")
    assert got == [(f"Patient/{r.patient_id}", r.tier, r.reasons) for r in screen.itertuples()]


def test_the_funnel_is_a_summary_measure_report_with_one_population_per_step(made):
    out, t = made
    doc = read(out / "funnel.json")
    report = MeasureReport.model_validate(doc)
    assert (report.status, report.type) == ("complete", "summary")
    pops = doc["group"][0]["population"]
    funnel = t["bmc_funnel"].sort_values("step")
    assert [p["count"] for p in pops] == [int(n) for n in funnel.patients]
    assert [p["code"]["coding"][0]["code"] for p in pops][:2] == list(funnel.rule[:2])
    assert report.period.start <= report.period.end


def test_each_adjudication_is_an_observation_with_the_verification_status(made):
    out, t = made
    lines = (out / "reviews.ndjson").read_text().splitlines()
    assert len(lines) == len(t["review"]) == 3
    obs = [Observation.model_validate(json.loads(ln)) for ln in lines]
    got = [(o.subject.reference, o.valueCodeableConcept.coding[0].code, o.performer[0].display)
           for o in obs]
    ordered = t["review"].sort_values("seq")
    verdict = {"confirmed": "confirmed", "not_bmc": "refuted", "unsure": "unconfirmed"}
    assert got == [(f"Patient/{r.patient_id}", verdict[r.verdict], r.reviewer)
                   for r in ordered.itertuples()]
    assert obs[1].note[0].text == SCRIPT and obs[0].note is None
    assert {o.status for o in obs} == {"final"}


def test_bmc_load_reads_every_produced_resource_back_without_rejection(made, tmp_path):
    out, _ = made
    db = tmp_path / "back.duckdb"
    done = runner.invoke(cli, ["load", str(out), "--db", str(db), "--validate"])
    assert done.exit_code == 0, done.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM load_error").fetchone()[0] == 0
        by_type = dict(con.execute("SELECT resource_type, count(*) FROM resource "
                                   "GROUP BY 1").fetchall())
        assert by_type == {"Group": 1, "List": 1, "MeasureReport": 1, "Observation": 3}
        assert con.execute("SELECT count(*) FROM observation").fetchone()[0] == 3
    finally:
        con.close()


def test_fhir_output_on_the_spark_engine_is_a_usage_error(tmp_path):
    done = runner.invoke(cli, ["cohort", "--db", str(tmp_path), "--engine", "spark",
                               "--format", "fhir"])
    assert done.exit_code == 2
    assert "FHIR output (--format fhir, --funnel) needs --engine duckdb" in done.output


def test_an_empty_cohort_is_a_valid_group_without_members():
    import pandas as pd

    doc = fhir_out.cohort_group(pd.DataFrame(columns=["patient_id", "index_date", "route"]),
                                "abc", {})
    assert Group.model_validate(doc).quantity == 0 and "member" not in doc
