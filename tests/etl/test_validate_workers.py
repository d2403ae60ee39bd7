"""Killing `bmc load --validate` leaves no validator worker behind (etl/validate.py pool)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_ndjson


def children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir() or (os.cpu_count() or 1) < 2,
                    reason="needs Linux /proc and at least 2 cores (a worker pool)")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_validating_load_leaves_no_worker_running(tmp_path, sig):
    patients = [{"resourceType": "Patient", "id": f"p{i}", "gender": "female",
                 "birthDate": "1950-01-02", "name": [{"family": "Roe", "given": ["Jane"]}]}
                for i in range(60_000)]
    f = write_ndjson(tmp_path / "Patient.ndjson", patients)
    bmc = shutil.which("bmc") or sys.executable
    args = [bmc] if bmc != sys.executable else [sys.executable, "-m", "cohort.cli"]
    proc = subprocess.Popen([*args, "load", str(f), "--db", str(tmp_path / "t.duckdb"), "--validate"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers |= children(proc.pid)
            time.sleep(0.1)
        assert workers, "the load never started its validator pool"
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [w for w in workers if alive(w)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
