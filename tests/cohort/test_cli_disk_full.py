"""A disk that fills up during `bmc load`: one line naming the file, exit 1, and the database
as it was -- it still opens, with the rows it had (a new one is not left behind). The disk is
a real 3 MB tmpfs mounted by the test (CI runs as root, as this machine does)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from cohort.paths import sample_bundles_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

EXPORT = sample_bundles_dir() / "bulk"


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _load(inputs: Path, db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cohort.cli", "load", str(inputs), "--db",
                           str(db)], capture_output=True, text=True, timeout=600)


def test_a_full_disk_during_a_new_load_is_one_line_and_leaves_no_database(small_disk):
    db = small_disk / "new.duckdb"
    done = _load(EXPORT, db)
    assert done.returncode == 1, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if not ln.startswith("load: ")]
    assert line == (f'error: database error: TransactionContext Error: Failed to commit: '
                    f'Could not write file "{db}.wal": No space left on device')
    assert list(small_disk.iterdir()) == []


def test_a_full_disk_leaves_an_existing_database_as_it_was(small_disk):
    db = small_disk / "old.duckdb"
    assert _load(EXPORT / "Patient.000.ndjson", db).returncode == 0
    done = _load(EXPORT, db)
    assert done.returncode == 1, done.stderr
    assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM patient").fetchone() == (277,)
        assert con.execute("SELECT count(*) FROM observation").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM load_run").fetchone() == (1,)
    finally:
        con.close()
