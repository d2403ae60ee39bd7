"""The review app without a browser: its guards (Host, token, CSRF), escaping, the redacted
request log, and the `review` table (append-only, latest counts, survives loads and cohort
rebuilds, exported as the truth file `bmc check` reads)."""
from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest
from typer.testing import CliRunner

from cohort.check import check, check_reviews, screen_figures
from cohort.cli import app as cli
from cohort.errors import DatabaseError, UsageError
from cohort.review import store
from cohort.review.app import create_app
from cohort.review.serve import is_loopback, redact
from cohort.runner import open_database
from tests.cohort.review_db import PLANTED, SCRIPT, fresh_db
from tests.cohort.test_cohort_charts import Chart, at, write_bulk

HOST = "127.0.0.1:8765"
T0 = dt.datetime(2024, 6, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def db(tmp_path):
    return fresh_db(tmp_path)


@pytest.fixture
def con(db):
    c = open_database(db)
    yield c
    c.close()


def client(con, token=None):
    app = create_app(con, allowed_hosts={HOST}, token=token)
    return app.test_client()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def post_review(c, pid, verdict, note="", csrf=None, reviewer="Dr. A"):
    page = c.get(f"/patient/{pid}", headers={"Host": HOST})
    token = csrf if csrf is not None else csrf_of(page.text)
    return c.post(f"/patient/{pid}/review", headers={"Host": HOST},
                  data={"csrf_token": token, "verdict": verdict, "note": note,
                        "reviewer": reviewer})


def flagged(con) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT patient_id FROM bmc_screen WHERE tier IN ('1', '2') ORDER BY rank").fetchall()]


# -- guards ------------------------------------------------------------------------------------
def test_a_request_naming_another_host_is_refused(con):
    c = client(con)
    assert c.get("/", headers={"Host": HOST}).status_code == 200
    assert c.get("/", headers={"Host": "attacker.example:8765"}).status_code == 421


def test_a_post_without_the_sessions_csrf_token_is_refused_and_nothing_is_stored(con):
    c = client(con)
    pid = flagged(con)[0]
    assert post_review(c, pid, "confirmed", csrf="forged").status_code == 400
    assert post_review(c, pid, "confirmed", csrf="").status_code == 400
    assert store.latest(con).empty
    assert post_review(c, pid, "confirmed").status_code == 303
    assert list(store.latest(con).patient_id) == [pid]


def test_beyond_loopback_every_browser_needs_the_token_once(con):
    c = client(con, token="s3cret-token")
    assert c.get("/", headers={"Host": HOST}).status_code == 403
    assert c.get("/?token=wrong", headers={"Host": HOST}).status_code == 403
    first = c.get("/?token=s3cret-token&status=all", headers={"Host": HOST})
    assert first.status_code == 303 and "token" not in first.headers["Location"]
    assert c.get("/", headers={"Host": HOST}).status_code == 200  # the session carries it


def test_only_loopback_addresses_serve_without_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")


def test_the_request_log_names_the_route_never_the_patient_or_the_query():
    assert redact("/patient/0025bdc1-7b6a/timeline.svg?token=abc") == "/patient/<id>/timeline.svg"
    assert redact("/?status=confirmed") == "/"


# -- escaping -----------------------------------------------------------------------------------
def test_data_and_notes_are_escaped_and_scripts_are_forbidden_anyway(con):
    c = client(con)
    assert post_review(c, PLANTED, "unsure", note=SCRIPT).status_code == 303
    page = c.get(f"/patient/{PLANTED}", headers={"Host": HOST})
    assert "<script" not in page.text
    assert page.text.count("&lt;script&gt;window.__pwned") >= 2  # diagnosis display + note
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_an_unknown_patient_is_404_and_an_empty_reviewer_is_refused_on_the_page(con):
    c = client(con)
    assert c.get("/patient/no-such-patient", headers={"Host": HOST}).status_code == 404
    r = post_review(c, flagged(con)[0], "confirmed", reviewer="  ")
    assert r.status_code == 400 and "the reviewer&#39;s name is required" in r.text
    assert store.latest(con).empty


# -- the review table ---------------------------------------------------------------------------
def test_decisions_are_appended_and_the_latest_counts(con):
    pid = flagged(con)[0]
    store.add_review(con, pid, "confirmed", "", "Dr. A", T0)
    store.add_review(con, pid, "not_bmc", "second look: MDS", "Dr. B", T0 + dt.timedelta(hours=1))
    assert con.execute("SELECT count(*) FROM review").fetchone()[0] == 2
    latest = store.latest(con).set_index("patient_id")
    assert latest.loc[pid, "verdict"] == "not_bmc" and latest.loc[pid, "reviewer"] == "Dr. B"
    build = con.execute("SELECT fingerprint FROM bmc_build").fetchone()[0]
    assert set(con.execute("SELECT definition_build FROM review").df().definition_build) == {build}
    assert list(store.history(con, pid).verdict) == ["not_bmc", "confirmed"]


@pytest.mark.parametrize("verdict, reviewer, why", [
    ("maybe", "Dr. A", "verdict must be one of"),
    ("confirmed", "", "the reviewer's name is required"),
])
def test_a_bad_decision_is_refused(con, verdict, reviewer, why):
    with pytest.raises(UsageError, match=why):
        store.add_review(con, flagged(con)[0], verdict, "", reviewer, T0)


def test_reviews_survive_a_load_of_new_data_and_a_cohort_rebuild(db, tmp_path):
    con = open_database(db)
    try:
        pid = flagged(con)[0]
        store.add_review(con, pid, "confirmed", "", "Dr. A", T0)
    finally:
        con.close()
    newcomer = Chart("review-newcomer")
    newcomer.breast_cancer()
    newcomer.cbc(at("2006-01-01"))
    runner = CliRunner()
    loaded = runner.invoke(cli, ["load", str(write_bulk(tmp_path / "new", [newcomer])),
                                 "--db", str(db)])
    assert loaded.exit_code == 0, loaded.output
    rebuilt = runner.invoke(cli, ["cohort", "--db", str(db), "--param", "smear_window_days=7"])
    assert rebuilt.exit_code == 0, rebuilt.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT patient_id, verdict FROM review_latest").fetchall() == [
            (pid, "confirmed")]
    finally:
        con.close()


def test_unsure_is_no_label_and_the_export_is_what_check_reads(con, db, tmp_path):
    ids = flagged(con)
    store.add_review(con, ids[0], "confirmed", "", "Dr. A", T0)
    store.add_review(con, ids[-1], "not_bmc", "", "Dr. A", T0)
    store.add_review(con, ids[1], "unsure", "", "Dr. A", T0)
    con.close()
    out = tmp_path / "labels.csv"
    done = CliRunner().invoke(cli, ["review", "--db", str(db), "--export", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text().splitlines() == [
        "patient_id,label", *sorted([f"{ids[0]},1", f"{ids[-1]},0"])]
    con2 = open_database(db)
    try:
        by_review = check_reviews(con2)
        by_file = check(con2, out)
    finally:
        con2.close()
    assert by_review.summary() == {**by_file.summary(), **by_review.screen}
    assert by_review.screen == {"screen_reviewed": 2, "screen_confirmed": 1,
                                "screen_ppv": 0.5, "unsure": 1}


def test_the_screens_ppv_counts_reviewed_candidates_only():
    labels = {"a": True, "b": False, "c": True}          # c was reviewed but not flagged
    assert screen_figures({"a", "b", "d"}, labels, unsure=0) == {
        "screen_reviewed": 2, "screen_confirmed": 1, "screen_ppv": 0.5, "unsure": 0}
    assert screen_figures({"d"}, labels, unsure=3)["screen_ppv"] is None


def test_check_truth_review_without_any_review_says_what_to_do(db):
    done = CliRunner().invoke(cli, ["check", "--db", str(db), "--truth", "review"])
    assert done.exit_code == 1
    assert "no adjudications in this database yet; make some with `bmc review --db FILE`" \
        in done.output
    con = open_database(db)
    try:
        with pytest.raises(DatabaseError):
            store.review_labels(con)
    finally:
        con.close()
