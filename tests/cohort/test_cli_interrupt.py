"""Ctrl-C during `bmc load`: one line on stderr, exit 1, and the database exactly as it was (a
database the load was creating is not left behind). The signal is sent the way a terminal
sends it, to a real `bmc` process, once the load has started reading."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cohort.synth import stream_bulk

pytestmark = pytest.mark.slow

INTERRUPTED = "error: interrupted; nothing was loaded, the database is unchanged"


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bulk")
    stream_bulk(out, 2000)  # ~45 MB: a load of several seconds
    return out


def _interrupted_load(export: Path, db: Path) -> subprocess.CompletedProcess:
    """`bmc load` in a child whose SIGINT is not ignored (a test runner started in the
    background may ignore it, and children inherit that), interrupted once it reads."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cohort.cli", "load", str(export), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stderr.readline()  # non-interactive loads log a line per file
    assert first.startswith("load: "), first
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, first + rest)


def _counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def test_ctrl_c_during_a_new_load_leaves_no_database(export, tmp_path):
    db = tmp_path / "new.duckdb"
    done = _interrupted_load(export, db)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not db.exists() and not Path(f"{db}.wal").exists()


def test_ctrl_c_during_a_load_into_an_existing_database_changes_nothing(export, tmp_path):
    db = tmp_path / "old.duckdb"
    first = subprocess.run([sys.executable, "-m", "cohort.cli", "load",
                            str(export / "Patient.000.ndjson"), "--db", str(db)],
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = _counts(db)
    done = _interrupted_load(export, db)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in done.stderr
    assert _counts(db) == before
