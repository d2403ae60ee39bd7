"""Parity of the outcome analyses (``bmc report``): over the test corpus (conftest: the
1,000-patient synthetic export, the committed sample, loader edge cases) every query of
queries/outcomes/ gives the same rows on Spark (the Spark-built lake, cohort stages built on
Spark) as on DuckDB (the database, cohort built on DuckDB), and ``bmc report --engine spark``
writes the report ``bmc report`` writes from the database: the same published-vs-reproduced
verdicts, the same group figures, the same files.

The patients read are the ones a report reads: the found cohort and a listed group of
non-cohort patients (the screen's candidates, patients with a marrow-metastasis Condition, and
the first patients of the cohort's scope)."""
from __future__ import annotations

from pathlib import Path

import pytest
from spark_rows import canonical

from cohort.engine import DuckDBEngine, SparkEngine
from cohort.errors import ReferenceDataError
from cohort.outcomes.records import (
    CODE_TABLE,
    as_id,
    as_key,
    prepare,
    read_codes,
    read_found_cohort,
    run_query,
)
from cohort.outcomes.report import to_markdown
from cohort.outcomes.run import FOUND, LISTED, write_report
from cohort.paths import queries_dir
from cohort.runner import open_database

QUERIES = sorted(p.stem for p in (queries_dir() / "outcomes").glob("*.sql"))
#: No declined chemotherapy in the synthetic export: the query runs on both engines, with no
#: rows to compare.
NO_ROWS_HERE = {"chemotherapy_not_done"}

_LISTED_SQL = """
SELECT patient_key FROM bmc_screen WHERE tier IN ('1', '2')
UNION SELECT patient_key FROM bmc_coded WHERE valueset = 'marrow_metastasis'
UNION (SELECT patient_key FROM bmc_scope ORDER BY patient_key LIMIT 25)
EXCEPT SELECT 'Patient/' || patient_id FROM bmc_cohort
ORDER BY 1"""


@pytest.fixture(scope="module")
def duck(duck_db):
    """The DuckDB database, opened read-only as ``bmc report`` opens it."""
    con = open_database(duck_db, read_only=True)
    yield DuckDBEngine(con)
    con.close()


@pytest.fixture(scope="module")
def listed(duck) -> list[str]:
    return list(duck.query(_LISTED_SQL)["patient_key"])


@pytest.fixture(scope="module")
def reports(spark, spark_screen, duck_db, lake, listed, tmp_path_factory):
    """``bmc report`` with the listed patients, from the database (``write_report``) and, as a
    user runs it, ``bmc report --engine spark --db LAKE`` (the command, in this process).

    The Spark run is watched, not replaced: the result ``write_report_spark`` returns, the
    calls to ``lake_engine`` and every query the report runs (SQL, parameters, rows) are
    kept, so the per-query parity below compares exactly what the report read, without
    running it twice."""
    from typer.testing import CliRunner

    from cohort import spark_runner
    from cohort.cli import app
    from cohort.outcomes import spark as report_on_spark

    out = tmp_path_factory.mktemp("outcomes")
    ids = out / "ids.csv"
    ids.write_text("patient_id\n" + "".join(f"{as_id(k)}\n" for k in listed), encoding="utf-8")
    on_duck = write_report(duck_db, out / "duckdb", ids_file=ids)
    ran: list[tuple[str, dict, object]] = []
    lake_calls: list[tuple] = []
    results: list = []
    query, lake_engine = SparkEngine.query, spark_runner.lake_engine
    write_report_spark = report_on_spark.write_report_spark

    def kept(self, sql, params=None):
        rows = query(self, sql, params)
        ran.append((sql, dict(params or {}), rows))
        return rows

    def recorded_lake(session, folder, params=None, group="cohort"):
        lake_calls.append((Path(folder), params, group))
        return lake_engine(session, folder, params, group)

    def recorded_report(*args, **kwargs):
        results.append(write_report_spark(*args, **kwargs))
        return results[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SparkEngine, "query", kept)
        mp.setattr(spark_runner, "lake_engine", recorded_lake)
        mp.setattr(report_on_spark, "write_report_spark", recorded_report)
        done = CliRunner().invoke(app, ["report", "--engine", "spark", "--spark-master",
                                        "local[2]", "--db", str(lake), "--out",
                                        str(out / "spark"), "--ids", str(ids)])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == str(out / "spark" / "report.html")  # one line, never wrapped
    return on_duck, results[0], ran, lake_calls


def test_the_spark_report_reads_the_lake_with_the_parameters_it_was_built_with(
        reports, lake):
    """No --param: the cohort the lake holds is read as built (as on DuckDB), not rebuilt."""
    from cohort.parameters import BY_NAME, defaults

    *_, lake_calls = reports
    assert [(folder, group) for folder, _, group in lake_calls] == [(lake, "cohort")]
    (_, params, _), = lake_calls
    assert params == {k: BY_NAME[k].show(v) for k, v in defaults().items()}


def test_the_report_reads_the_cohort_and_other_patients(duck, listed, reports):
    found = {as_key(str(i)) for i in read_found_cohort(duck)["patient_id"]}
    assert len(found) >= 2 and len(listed) >= 25 and not found & set(listed)
    (_, _, ran, _) = reports
    read = [p["patient_keys"] for _, p, _ in ran if p.get("all_patients") is False]
    assert read and all(set(keys) == found | set(listed) for keys in read)


@pytest.mark.parametrize("query", QUERIES)
def test_outcome_query_gives_the_same_rows_on_both_engines(duck, reports, query):
    """The rows the Spark report read with this query equal DuckDB's for the same values."""
    sql = (queries_dir() / "outcomes" / f"{query}.sql").read_text(encoding="utf-8")
    (_, _, ran, _) = reports
    [(params, spark_rows)] = [(p, rows) for text, p, rows in ran
                              if text == sql and p.get("all_patients") is False]
    on_duck = run_query(duck, query, **params)
    assert list(spark_rows.columns) == list(on_duck.columns)
    assert len(on_duck) > 0 or query in NO_ROWS_HERE
    assert canonical(spark_rows) == canonical(on_duck)


def test_every_breast_cancer_patient_on_both_engines(duck, reports):
    """The incidence denominator: every patient's breast-cancer Conditions."""
    sql = (queries_dir() / "outcomes" / "breast_cancer.sql").read_text(encoding="utf-8")
    (_, _, ran, _) = reports
    [spark_rows] = [rows for text, p, rows in ran if text == sql and p["all_patients"] is True]
    on_duck = run_query(duck, "breast_cancer", patient_keys=[], all_patients=True)
    assert len(on_duck) > 1000
    assert canonical(spark_rows) == canonical(on_duck)


def test_report_gives_the_same_verdicts_on_both_engines(reports):
    (on_duck, _), (on_spark, _), *_ = reports
    assert set(on_duck.verdicts) == {FOUND, LISTED}
    for label, rows in on_duck.verdicts.items():
        assert len(rows) > 400
        assert on_spark.verdicts[label] == rows, label


def _km(km) -> str:
    """A Kaplan-Meier curve's figures as text (NaN compares equal as text)."""
    return repr(None if km is None else (km.n, km.events, km.median, km.median_ci,
                                         km.survival_at, km.durations, km.observed))


def test_report_gives_the_same_group_figures_on_both_engines(reports):
    (on_duck, _), (on_spark, _), *_ = reports
    for label, group in on_duck.groups.items():
        other = on_spark.groups[label]
        assert other.n == group.n > 0
        for table in ("patients", "table_i", "table_ii", "treatment"):
            assert canonical(getattr(other, table)) == \
                canonical(getattr(group, table)), f"{label}: {table}"
        assert other.table_i_summary == group.table_i_summary
        assert other.table_ii_summary == group.table_ii_summary
        assert other.counts == group.counts
        assert _km(other.km_bmc) == _km(group.km_bmc) and \
            _km(other.km_metastasis) == _km(group.km_metastasis)
    assert on_spark.incidence == on_duck.incidence


def test_report_files_are_the_same_on_both_engines(reports):
    """The Markdown (every table, every number) and every CSV are byte for byte the same."""
    (on_duck, duck_files), (on_spark, spark_files), *_ = reports
    assert to_markdown(on_spark.document) == to_markdown(on_duck.document)
    csvs = sorted(p.name for p in duck_files.values() if p.suffix == ".csv")
    assert csvs == sorted(p.name for p in spark_files.values() if p.suffix == ".csv")
    for name in csvs:
        duck_dir, spark_dir = duck_files["html"].parent, spark_files["html"].parent
        assert (spark_dir / name).read_bytes() == (duck_dir / name).read_bytes(), name


# -- queries/outcomes/codes.csv as the table ref_outcome_code -----------------------------------

def test_code_table_is_a_temp_table_on_a_read_only_database(duck_db):
    con = open_database(duck_db, read_only=True)
    try:
        engine = DuckDBEngine(con)
        prepare(engine)
        rows = engine.query(f"SELECT count(*) AS n FROM {CODE_TABLE}")["n"][0]
        kind = con.execute("SELECT temporary FROM duckdb_tables() WHERE table_name = $t",
                           {"t": CODE_TABLE}).fetchone()[0]
    finally:
        con.close()
    assert rows == len(read_codes()) and kind is True


def _codes(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "codes.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


HEADER = "concept,value,system,code,source"


@pytest.mark.parametrize(("lines", "message"), [
    (("concept,value,system,code",), "header must be concept,value,system,code,source"),
    ((HEADER, "drug,capecitabine,http://x,1,s", "drug,docetaxel,http://x,1,s"),
     r"line 3: duplicates line 2 \(concept, system, code = drug, http://x, 1\)"),
    ((HEADER, "drug,,http://x,1,s"), "line 2: value must not be empty"),
    ((HEADER, "drugs,capecitabine,http://x,1,s"), "line 2: unknown concept 'drugs'"),
    ((HEADER, "ae_grade,III,http://x,1,s"), "line 2 column value: 'III' is not a valid integer"),
    ((HEADER, "drug,capecitabine,http://x"), "line 2: expected 5 fields"),
])
def test_codes_csv_errors_name_file_and_line(tmp_path, lines, message):
    path = _codes(tmp_path, *lines)
    with pytest.raises(ReferenceDataError, match=message) as e:
        read_codes(path)
    assert str(path) in str(e.value)
