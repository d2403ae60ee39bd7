"""`bmc load --engine spark` on a real Spark standalone cluster (a Master and a Worker in their
own JVMs on loopback, executors in JVMs of their own) with dynamic allocation: executors are
added while the load runs, so the cores Spark sees change between two reads of the same files.
Every line must be accounted for and the lake must equal DuckDB's.

The cluster is started by the test from pyspark's own ``bin/spark-class``; the command runs in
a subprocess, because this test process already holds the session's local Spark context."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lake_compare import assert_same_lake

from cohort.paths import sample_bundles_dir

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def _wait_for(log: Path, text: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"the standalone cluster did not start ({text!r} not in {log.name}):\n"
                + log.read_text(errors="replace")[-2000:])


@pytest.fixture(scope="module")
def standalone_master(tmp_path_factory, spark):  # `spark`: skipped without pyspark or Java
    import pyspark

    home = Path(pyspark.__file__).parent
    logs = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_WORKER_DIR": str(logs / "work"), "PYSPARK_PYTHON": sys.executable}
    port = _free_port()
    master_url = f"spark://127.0.0.1:{port}"
    cls = [str(home / "bin" / "spark-class")]
    procs = []
    try:
        master = _start([*cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(_free_port())],
                        logs / "master.log", env)
        procs.append(master)
        _wait_for(logs / "master.log", "I have been elected leader", master, 120)
        worker = _start([*cls, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                               "--cores", "4", "--memory", "3g", "--webui-port",
                               str(_free_port()), master_url], logs / "worker.log", env)
        procs.append(worker)
        _wait_for(logs / "master.log", "Registering worker", master, 120)
        yield master_url, env
    finally:
        for p in reversed(procs):
            with_group = p.pid
            try:
                os.killpg(with_group, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(with_group, signal.SIGKILL)


#: Executors come and go while the load runs (none at the start, up to four 1-core ones), and
#: the input split follows the cores registered (openCostInBytes tiny): before the fix, lines
#: were numbered against one split and read with another, and a third of them vanished.
DYNAMIC = {
    "spark.dynamicAllocation.enabled": "true",
    "spark.dynamicAllocation.shuffleTracking.enabled": "true",
    "spark.dynamicAllocation.initialExecutors": "0",
    "spark.dynamicAllocation.minExecutors": "0",
    "spark.dynamicAllocation.maxExecutors": "4",
    "spark.dynamicAllocation.schedulerBacklogTimeout": "1s",
    "spark.dynamicAllocation.executorIdleTimeout": "60s",
    "spark.executor.cores": "1",
    "spark.executor.memory": "512m",
    "spark.sql.files.openCostInBytes": "1024",
    "spark.sql.shuffle.partitions": "4",
}


def test_a_load_under_dynamic_allocation_accounts_for_every_line(standalone_master, tmp_path):
    master_url, env = standalone_master
    inputs = tmp_path / "export"  # a copy: both engines read the very same bytes
    inputs.mkdir()
    for name in ("Patient.000.ndjson", "Condition.000.ndjson", "Observation.000.ndjson"):
        shutil.copy(sample_bundles_dir() / "bulk" / name, inputs / name)
    conf = [a for k, v in DYNAMIC.items() for a in ("--spark-conf", f"{k}={v}")]
    spark_lake, duck_db, duck_lake = tmp_path / "lake", tmp_path / "db.duckdb", tmp_path / "duck"
    done = subprocess.run(
        [sys.executable, "-m", "cohort.cli", "load", "--engine", "spark", str(inputs),
         "--db", str(spark_lake), "--spark-master", master_url, *conf],
        capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    for argv in (["load", str(inputs), "--db", str(duck_db)],
                 ["export", "--db", str(duck_db), "--out", str(duck_lake)]):
        ran = subprocess.run([sys.executable, "-m", "cohort.cli", *argv], capture_output=True,
                             text=True, timeout=600)
        assert ran.returncode == 0, ran.stderr[-2000:]
    assert_same_lake(duck_lake, spark_lake)
