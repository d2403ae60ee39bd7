"""The report renders: the HTML parses and embeds its figures, the Markdown has the same
sections, every table is a CSV; and ``bmc report`` keeps its exit codes and messages."""
from __future__ import annotations

import base64
import csv
import json
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from outcomes_db import SAMPLE as REPO_SAMPLE
from outcomes_db import sample_db, sample_report
from typer.testing import CliRunner

from cohort.cli import app
from cohort.outcomes.published import load_published


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.images: list[str] = []
        self.h2: list[str] = []
        self._in_h2 = False
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")
        if tag in ("table", "tr", "td", "th", "details", "figure"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        if tag in ("table", "tr", "td", "th", "details", "figure"):
            assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
            self.stack.pop()

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data


def test_html_parses_and_embeds_png_figures():
    _, written = sample_report()
    p = _Collect()
    p.feed(written["html"].read_text(encoding="utf-8"))
    p.close()
    assert p.stack == []
    assert len(p.images) >= 6  # 3 figures per group, 2 groups
    for src in p.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in "".join(p.images)  # self-contained
    assert p.tags["table"] >= 10
    assert p.h2[:3] == ["Published vs reproduced", "Table I - at primary diagnosis",
                        "Table II - at BMC diagnosis"]


def test_markdown_has_the_same_sections_and_csvs_exist():
    result, written = sample_report()
    md = written["markdown"].read_text(encoding="utf-8")
    for s in result.document.sections:
        assert f"## {s.title}" in md
    for img in result.document.images():
        assert f"]({img.name})" in md and written[img.name].is_file()
    for t in result.document.tables():
        if t.csv:
            assert (written["html"].parent / f"{t.csv}.csv").is_file()
    with (written["html"].parent / "published_vs_reproduced.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(1 for p in load_published() if not p.table)
    with (written["html"].parent / "table_cells_vs_published.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == sum(1 for p in load_published() if p.table)


def test_cli_report_writes_the_report(tmp_path):
    res = CliRunner().invoke(app, ["report", "--db", str(sample_db()), "--out", str(tmp_path),
                                   "--cutoff", "2010-06-30"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()


def test_cli_report_usage_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["report", "--db", str(sample_db()), "--out", str(tmp_path),
                              "--cutoff", "30.06.2010"])
    assert res.exit_code == 2
    assert "error: --cutoff '30.06.2010': expected a date YYYY-MM-DD" in res.output
    res = runner.invoke(app, ["report", "--db", str(sample_db()), "--out", str(tmp_path),
                              "--ids", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2
    assert f"error: --ids {tmp_path / 'missing.csv'}: no such file" in res.output


def test_cli_report_without_a_database(tmp_path):
    db = tmp_path / "none.duckdb"
    res = CliRunner().invoke(app, ["report", "--db", str(db), "--out", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert f"error: {db}: no such database file" in res.output


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """bmc demo: sample -> database -> cohort -> screen -> report, with the short summary."""
    started = time.perf_counter()
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert time.perf_counter() - started < 60
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["cohort"]["cohort"] > 0 and summary["cohort"]["patients"] > summary["cohort"]["cohort"]
    listed = summary["groups"]["paper's 22 as published"]
    assert listed["median_os_from_bmc"]["months"] == pytest.approx(19.0, abs=0.05)
    assert listed["published_vs_reproduced"]["reproduced"] > 400
    html = Path(summary["report"])
    assert html == tmp_path / "report" / "report.html" and html.is_file()
    assert (tmp_path / "report" / "published_vs_reproduced.csv").is_file()


def test_report_builds_the_cohort_tables_it_reads_when_missing(tmp_path):
    """Blood counts and grades come from the cohort's bmc_lab / bmc_lab_grade; a database
    that was only loaded gets them built (default parameters) before the report is read."""
    import shutil

    import duckdb

    from cohort.outcomes.run import write_report
    from cohort.outcomes.verdicts import tally

    db = tmp_path / "loaded.duckdb"
    shutil.copy(sample_db(), db)
    con = duckdb.connect(str(db))
    for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                            "WHERE table_name LIKE 'bmc_%'").fetchall():
        con.execute(f'DROP TABLE "{t}"')
    con.close()
    said: list[str] = []
    result, _ = write_report(db, tmp_path / "r", ids_file=REPO_SAMPLE / "roles.csv",
                             progress=said.append)
    assert "building the cohort tables (bmc cohort, default parameters)" in said
    assert tally(result.verdicts["paper's 22 as published"]) == tally(
        sample_report()[0].verdicts["paper's 22 as published"])


def test_a_second_run_into_the_same_folder_leaves_no_stale_file(tmp_path):
    """An earlier run with --ids wrote the listed group's CSVs; a run without --ids into the
    same folder leaves exactly its own files."""
    from cohort.outcomes.run import write_report

    out = tmp_path / "report"
    write_report(sample_db(), out, ids_file=REPO_SAMPLE / "roles.csv")
    assert (out / "table_i_listed.csv").is_file()
    _, second = write_report(sample_db(), out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in second.values())
    assert not (out / "table_i_listed.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left


def test_every_figure_axis_covers_its_curve():
    """The OS-from-first-metastasis curves run to ~170 months: ticks and numbers at risk must
    reach the longest follow-up of every curve drawn, not stop at 72."""
    from cohort.outcomes.plots import time_ticks

    result, _ = sample_report()
    curves = [km for g in result.groups.values()
              for km in (g.km_bmc, g.km_metastasis, *(g.onset_logrank.groups
                                                      if g.onset_logrank else ()))
              if km is not None]
    assert max(max(k.durations) for k in curves) > 120
    for km in curves:
        ticks = time_ticks(max(km.durations))
        assert ticks[0] == 0 and ticks[-1] >= max(km.durations), (km.label, ticks)
        assert len(ticks) <= 10


def test_treatment_summary_counts_patients_with_grade_3_4_toxicity():
    """The summary row counts the patients the per-patient table flags (it once summed the
    booleans of an object column to 1)."""
    result, _ = sample_report()
    summary = next(t for t in result.document.tables() if t.csv == "treatment_summary").frame
    row = summary[summary["figure"] == "grade 3/4 haematological toxicity (patients)"].iloc[0]
    for label, g in result.groups.items():
        flagged = sum(bool(x) for x in g.treatment["heme_toxicity_g34"] if x is not None)
        assert row[label] == flagged
    assert row["paper's 22 as published"] == 10


def test_the_sample_report_leads_with_the_found_cohort_and_says_it_is_synthetic():
    from cohort.outcomes.run import report_summary
    from cohort.outcomes.sections import SYNTHETIC

    result, written = sample_report()
    summary = result.document.sections[0].blocks
    assert summary[0].startswith("Against the found cohort (n=29): ")
    assert summary[1].startswith("Against the paper's 22 as published (n=22): ")
    assert SYNTHETIC in result.document.intro and SYNTHETIC in summary
    with (written["html"].parent / "published_vs_reproduced.csv").open(newline="") as fh:
        header = next(csv.reader(fh))
    assert header.index("reproduced (found cohort)") < header.index(
        "reproduced (paper's 22 as published)")
    brief = report_summary(result)
    assert list(brief["groups"]) == ["found cohort", "paper's 22 as published"] or set(
        brief["groups"]) == {"found cohort", "paper's 22 as published"}
    assert brief["synthetic"] == SYNTHETIC
    assert brief["groups"]["paper's 22 as published"]["by_construction"] == (
        brief["groups"]["found cohort"]["by_construction"] + 1)  # n of the id list
