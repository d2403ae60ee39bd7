"""A real DuckDB for the review and FHIR-output tests, built once per test run: the committed
sample (277 patients, 14 flagged by the screen) plus one planted tier-1 patient whose
diagnosis display text is a ``<script>`` (a hostile export must not run code in a reviewer's
browser). Tests get their own copy (:func:`fresh_db`)."""
from __future__ import annotations

import csv
import shutil
import tempfile
from functools import cache
from pathlib import Path

from tests.cohort.test_cohort_charts import ICD10CM, Chart, at, write_bulk

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_bundles"
PLANTED = "review-planted"
SCRIPT = "<script>window.__pwned = 1; document.title = 'pwned'</script>"


def planted_chart() -> Chart:
    """Breast cancer, bone metastases, then nRBC with grade 2 anaemia and nothing coded for
    the marrow (tier 1); the liver metastasis Condition carries the script as display/text."""
    ch = Chart(PLANTED)
    ch.breast_cancer(onset="2002-04-04")
    ch.bone_mets(onset="2005-03-01")
    ch.condition((ICD10CM, "C78.7"), onset="2005-06-01")
    liver = ch.resources[-1]
    liver["code"]["coding"][0]["display"] = SCRIPT
    liver["code"]["text"] = SCRIPT
    ch.cbc(at("2005-08-01"))
    ch.chemo(at("2005-09-01"))
    ch.cbc(at("2006-03-01"), hgb=8.8, nrbc=7)
    return ch


@cache
def _built() -> Path:
    from cohort.runner import open_database
    from cohort.screen import run_screen
    from etl.load import load

    folder = Path(tempfile.mkdtemp(prefix="bmc-review-test-"))
    planted = write_bulk(folder / "planted", [planted_chart()])
    db = folder / "sample.duckdb"
    result = load(db, [SAMPLE / "bundles", planted])
    assert result.rejected == 0
    con = open_database(db)
    try:
        run_screen(con)
    finally:
        con.close()
    return db


def fresh_db(tmp: Path) -> Path:
    """A copy of the built database in ``tmp`` (tests write reviews into it)."""
    target = tmp / "review.duckdb"
    shutil.copyfile(_built(), target)
    return target


def truth_labels() -> dict[str, bool]:
    """The sample's known labels (sample_bundles/truth_labels.csv)."""
    with (SAMPLE / "truth_labels.csv").open(newline="") as fh:
        return {r["patient_id"]: r["label"] == "1" for r in csv.DictReader(fh)}
