"""`bmc` in batch jobs and on a shared database: --version, -v and --summary after the
subcommand, a progress line per file, one-line errors instead of tracebacks (a file size
limit, a lock, a UTF-16 truth file, --out into a missing folder), the
DuckDB CLI's storage version, read-only commands next to another process, and a rebuild that
keeps the user's tables and survives a pending write-ahead log."""
from __future__ import annotations

import hashlib
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from cohort.cli import app
from tests.cohort.test_cohort_charts import Chart, at, build_db
from tests.conftest import REPO, write_ndjson

runner = CliRunner()

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-01-02"}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def bmc(*args, holder: subprocess.Popen | None = None, timeout: float = 240, **kw):
    """`bmc` as a scheduler runs it: a separate process, no terminal."""
    return subprocess.run([sys.executable, "-c", "from cohort.cli import main; main()",
                           *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, **kw)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    smear = Chart("smear-case")
    smear.breast_cancer()
    smear.bone_mets()
    smear.cbc(at("2004-06-01"), hgb=9.2, nrbc=4)
    other = Chart("no-bmc")
    other.breast_cancer()
    build_db(tmp, [smear, other]).close()
    return tmp / "bulk.duckdb"


def hold(db: Path, *, read_only: bool) -> subprocess.Popen:
    """Another process with the database open (a reviewer's session, a running load)."""
    p = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time\n"
        f"con = duckdb.connect({str(db)!r}, read_only={read_only})\n"
        "print('open', flush=True)\n"
        "time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "open"
    return p


# -- batch options --------------------------------------------------------------------------
def test_version_prints_the_package_version():
    from importlib.metadata import version

    res = run("--version")
    assert res.exit_code == 0
    assert res.stdout == f"bmc-cohort {version('bmc-cohort')}\n"


def test_verbose_is_accepted_after_the_subcommand(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT])
    res = run("load", f, "--db", tmp_path / "x.duckdb", "-v")
    assert res.exit_code == 0, res.output
    res = run("load", tmp_path / "nope", "--db", tmp_path / "x.duckdb", "--verbose")
    assert res.exit_code == 2 and "nope: no such file or folder" in res.stderr


def test_summary_of_a_load_has_counts_reasons_timings_exit_code_and_sha256(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT, "{not json", "[1]"])
    summary = tmp_path / "jobs" / "load.json"
    res = run("load", f, "--db", tmp_path / "x.duckdb", "--summary", summary)
    assert res.exit_code == 3
    doc = json.loads(summary.read_text())
    assert (doc["command"], doc["exit_code"], doc["ok"]) == ("load", 3, False)
    assert doc["counts"]["loaded"] == 1 and doc["counts"]["rejected"] == 2
    assert doc["counts"]["by_type"] == {"Patient": {"current": 1}}
    assert doc["rejected_by_reason"] == {"invalid JSON": 1, "not a JSON object": 1}
    assert doc["timings"]["load_seconds"] >= 0 and doc["seconds"] >= doc["timings"]["load_seconds"]
    assert doc["inputs"] == [{"path": str(f.resolve()), "bytes": f.stat().st_size,
                              "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}]


def test_summary_is_written_for_a_failed_command_too(tmp_path):
    summary = tmp_path / "s.json"
    res = run("--summary", summary, "cohort", "--db", tmp_path / "none.duckdb")
    assert res.exit_code == 1
    doc = json.loads(summary.read_text())
    assert doc["exit_code"] == 1 and doc["command"] == "cohort"
    assert doc["error"].startswith(f"{tmp_path / 'none.duckdb'}: no such database file")


def test_summary_of_cohort_and_check(db, tmp_path):
    summary = tmp_path / "c.json"
    res = run("cohort", "--db", db, "--format", "csv", "--summary", summary)
    assert res.exit_code == 0, res.output
    doc = json.loads(summary.read_text())
    assert doc["counts"]["cohort"] == 1 and doc["counts"]["rows"] == 1
    assert doc["inputs"][0]["path"] == str(db) and len(doc["inputs"][0]["sha256"]) == 64
    truth = tmp_path / "t.csv"
    truth.write_text("patient_id,label\nsmear-case,1\nno-bmc,0\n")
    res = run("check", "--db", db, "--truth", truth, "--summary", summary)
    doc = json.loads(summary.read_text())
    assert (doc["counts"]["tp"], doc["counts"]["tn"]) == (1, 1)
    assert [i["path"] for i in doc["inputs"]] == [str(db), str(truth)]


def test_a_load_without_a_terminal_logs_one_progress_line_per_file(tmp_path):
    write_ndjson(tmp_path / "in" / "a.ndjson", [PATIENT])
    write_ndjson(tmp_path / "in" / "b.ndjson", [{**PATIENT, "id": "p2"}])
    res = run("load", tmp_path / "in", "--db", tmp_path / "x.duckdb")
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("load: ")]
    assert [ln.split(" (")[0] for ln in lines] == [f"load: {tmp_path / 'in' / 'a.ndjson'}",
                                                  f"load: {tmp_path / 'in' / 'b.ndjson'}"]


# -- never a traceback --------------------------------------------------------------------------
def test_a_file_size_limit_is_a_one_line_error_naming_the_file(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson",
                     [{**PATIENT, "id": f"p{i}", "name": [{"family": f"F{i:06d}" * 20}]}
                      for i in range(20000)])
    db = tmp_path / "x.duckdb"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    res = bmc("load", f, "--db", db, preexec_fn=limit)
    assert res.returncode == 1, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if not ln.startswith("load: ")]
    assert line == (f'error: database error: TransactionContext Error: Failed to commit: Could '
                    f'not write file "{db}.wal": File too large')


@pytest.mark.parametrize("args", [
    ["cohort", "--format", "csv", "--out", "{tmp}/new/sub/cohort.csv"],
    ["screen", "--format", "json", "--out", "{tmp}/new/sub/screen.json"],
    ["evidence", "smear-case", "--format", "csv", "--out", "{tmp}/new/sub/ev.csv"],
    ["report", "--out", "{tmp}/new/sub/report"],
    ["export", "--out", "{tmp}/new/sub/lake"],
])
def test_out_into_a_folder_that_does_not_exist_is_made(db, tmp_path, args):
    work = tmp_path / "w.duckdb"
    shutil.copy(db, work)
    args = [a.format(tmp=tmp_path) for a in args]
    res = run(*args, "--db", work)
    assert res.exit_code == 0, res.output
    assert Path(args[args.index("--out") + 1]).exists()


def test_view_out_into_a_folder_that_does_not_exist_is_made(tmp_path):
    view = {"resourceType": "ViewDefinition", "name": "pt", "resource": "Patient",
            "status": "active", "select": [{"column": [{"name": "id", "path": "id"}]}]}
    vf = tmp_path / "v.json"
    vf.write_text(json.dumps(view))
    data = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT])
    res = run("view", vf, data, "--out", tmp_path / "new" / "rows.csv")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "new" / "rows.csv").read_text() == "id\np1\n"


def test_out_naming_an_existing_folder_is_a_usage_error_before_the_work(db, tmp_path):
    res = run("cohort", "--db", db, "--format", "csv", "--out", tmp_path)
    assert res.exit_code == 2
    assert res.stderr == f"error: --out {tmp_path}: is a folder; give a file name\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_utf16_truth_file_is_read(db, tmp_path, encoding):
    truth = tmp_path / "truth.csv"
    truth.write_bytes("patient_id,label\r\nsmear-case,1\r\nno-bmc,0\r\n".encode(encoding))
    res = run("check", "--db", db, "--truth", truth, "--format", "json")
    assert res.exit_code == 0, res.output
    (s,) = json.loads(res.stdout)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (1, 0, 0, 1)


def test_a_truth_file_in_another_encoding_is_named_exit_2(db, tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_bytes("patient_id,label\nJosé-1,1\n".encode("latin-1"))
    res = run("check", "--db", db, "--truth", truth)
    assert res.exit_code == 2
    assert res.stderr == (f"error: {truth}: not UTF-8 text (byte 21); save the truth file as "
                          f"CSV UTF-8\n")


def test_a_bad_label_is_named_without_echoing_it(db, tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("patient_id,label\nsmear-case,Jane Doe\n")
    res = run("check", "--db", db, "--truth", truth)
    assert res.exit_code == 2
    assert res.stderr == (f"error: {truth} line 2: label must be 1 or 0 (or true/false, "
                          f"yes/no)\n")


@pytest.mark.parametrize("command", [["export", "--out", "{tmp}/lake"], ["rebuild"]])
def test_export_and_rebuild_meeting_a_lock_are_one_line_errors(db, tmp_path, command):
    work = tmp_path / "w.duckdb"
    shutil.copy(db, work)
    holder = hold(work, read_only=False)
    try:
        res = run(*[c.format(tmp=tmp_path) for c in command], "--db", work)
    finally:
        holder.kill()
        holder.wait()
    assert res.exit_code == 1
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"error: {work}: cannot open the database") and "lock" in line
    assert duckdb.connect(str(work), read_only=True).execute(
        "SELECT count(*) FROM patient").fetchone()[0] == 2


# -- the database: DuckDB CLI, readers side by side, rebuild --------------------------------------
def test_a_new_database_is_in_the_storage_version_the_duckdb_cli_opens(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT])
    db = tmp_path / "x.duckdb"
    assert run("load", f, "--db", db).exit_code == 0
    con = duckdb.connect(str(db), read_only=True)
    (tags,) = con.execute("SELECT tags FROM duckdb_databases() "
                          "WHERE database_name = current_database()").fetchone()
    con.close()
    assert tags["storage_version"] == "v1.5.0+"


def test_the_duckdb_cli_opens_the_database(tmp_path):
    # the test extra installs duckdb-cli (the stable shell users have): never skipped
    assert shutil.which("duckdb"), "the DuckDB CLI is missing: pip install -e '.[test]'"
    f = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT])
    db = tmp_path / "x.duckdb"
    assert run("load", f, "--db", db).exit_code == 0
    res = subprocess.run(["duckdb", "-readonly", "-csv", str(db), "-c",
                          "SELECT id, gender FROM patient"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "p1,female"


def test_read_only_commands_work_while_another_process_holds_the_database(db, tmp_path):
    work = tmp_path / "w.duckdb"
    shutil.copy(db, work)
    assert run("screen", "--db", work, "--format", "csv").exit_code == 0  # tables built
    truth = tmp_path / "t.csv"
    truth.write_text("patient_id,label\nsmear-case,1\nno-bmc,0\n")
    holder = hold(work, read_only=True)
    try:
        for args in (["cohort", "--format", "csv"], ["screen", "--format", "csv"],
                     ["evidence", "smear-case", "--format", "csv"], ["check", "--truth", truth],
                     ["report", "--out", tmp_path / "report"]):
            res = bmc(*args, "--db", work)
            assert res.returncode == 0, (args, res.stderr)
            assert "Traceback" not in res.stderr
    finally:
        holder.kill()
        holder.wait()


def test_rebuild_with_a_pending_wal_keeps_the_users_tables(db, tmp_path):
    work = tmp_path / "w.duckdb"
    shutil.copy(db, work)
    subprocess.run([sys.executable, "-c", (
        "import duckdb, os\n"
        f"con = duckdb.connect({str(work)!r})\n"
        "con.execute('PRAGMA disable_checkpoint_on_shutdown')\n"
        "con.execute('SET wal_autocheckpoint = \\'1GB\\'')\n"
        "con.execute('CREATE TABLE my_notes AS SELECT 42 AS answer')\n"
        "con.execute('CREATE VIEW my_patients AS SELECT id FROM patient')\n"
        "os._exit(0)\n")], check=True, timeout=60)
    assert Path(str(work) + ".wal").exists()
    res = run("rebuild", "--db", work)
    assert res.exit_code == 0, res.output
    assert "kept your table my_notes" in res.stderr
    assert not Path(str(work) + ".wal").exists()
    con = duckdb.connect(str(work), read_only=True)
    try:
        assert con.execute("SELECT answer FROM my_notes").fetchall() == [(42,)]
        assert sorted(con.execute("SELECT id FROM my_patients").fetchall()) == [
            ("no-bmc",), ("smear-case",)]
    finally:
        con.close()
