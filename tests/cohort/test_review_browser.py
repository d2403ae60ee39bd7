"""`bmc review` in a real browser: Debian's Chromium driven by Playwright against the server
the command starts on a free loopback port. A reviewer opens the worklist, opens a patient,
sees the lab timeline, adjudicates every flagged candidate of the sample (by the sample's
known labels), reloads and sees the decisions, and `bmc check --truth review` counts them.
A `<script>` planted in a diagnosis display and in a note never runs."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.cohort.review_db import PLANTED, SCRIPT, fresh_db, truth_labels

CHROMIUM = Path(os.environ.get("BMC_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SHOTS = os.environ.get("BMC_REVIEW_SCREENSHOTS")  # a folder: keep screenshots for people


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} missing: .ci/run installs Debian's chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    ctx.close()


class Server:
    """`bmc review --db DB --port PORT` as a subprocess, stopped like Ctrl-C would."""

    def __init__(self, db: Path):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cohort.cli", "review", "--db", str(db),
             "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"bmc review exited {self.proc.returncode}")
            m = re.search(r"serving (http://\S+)", line)
            if m:
                return m.group(1)
        raise AssertionError("bmc review did not start")

    def stop(self) -> str:
        """Stop; return the rest of stderr (the request log)."""
        self.proc.terminate()
        _, rest = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, rest
        return rest


def adjudicate(page, url: str, pid: str, verdict: str, note: str = "") -> None:
    page.goto(f"{url}patient/{pid}")
    page.check(f"input[name=verdict][value={verdict}]")
    page.fill("textarea[name=note]", note)
    page.fill("input[name=reviewer]", "Dr. Test")
    page.click("#review-form button[type=submit]")
    page.wait_for_selector("#saved")


def shot(page, name: str) -> None:
    if SHOTS:
        page.wait_for_load_state("load")  # with its images
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


@pytest.fixture(scope="module")
def flagged(tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    """A fresh database and the screen's tier 1/2 candidates (patient_id, tier), by rank."""
    db = fresh_db(tmp_path_factory.mktemp("browser"))
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT patient_id, tier FROM bmc_screen WHERE tier IN ('1', '2') "
                           "ORDER BY rank").fetchall()
    finally:
        con.close()
    return db, rows


def test_a_reviewer_adjudicates_the_flagged_candidates_and_check_counts_them(page, flagged):
    db, rows = flagged
    labels = truth_labels()
    sample = [(pid, tier) for pid, tier in rows if pid != PLANTED]
    server = Server(db)
    try:
        # the worklist lists every flagged candidate, unreviewed
        page.goto(server.url)
        listed = page.locator("#worklist tbody tr").evaluate_all(
            "rows => rows.map(r => [r.dataset.patient, r.cells[2].innerText, "
            "r.querySelector('td.status').innerText])")
        assert [(p, t) for p, t, _ in listed] == rows
        assert {s for _, _, s in listed} == {"unreviewed"}
        shot(page, "worklist.png")

        # a patient page: rules, the timeline image drawn, ledger with file:line, diagnoses
        first = sample[0][0]
        page.click(f"#worklist tr[data-patient='{first}'] a")
        page.wait_for_load_state("load")  # the page and its timeline image
        assert page.inner_text("h1") == f"Patient/{first}"
        assert page.locator("#timeline").evaluate("img => img.complete && img.naturalWidth") > 0
        svg = page.request.get(f"{server.url}patient/{first}/timeline.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert all(t in svg.text() for t in ("Haemoglobin", "Platelets", "CTCAE grade 1",
                                             "index date"))
        assert re.search(r"\.json#entry\[\d+\]|\.ndjson:\d+",
                         page.inner_text("#ledger td.source >> nth=0"))
        assert "bone_metastasis" in page.inner_text("#diagnoses")
        shot(page, "patient.png")

        # every sample candidate adjudicated by its known label; the planted one 'unsure'
        for pid, _ in sample:
            adjudicate(page, server.url, pid, "confirmed" if labels[pid] else "not_bmc")
        adjudicate(page, server.url, PLANTED, "unsure", note=SCRIPT)
        shot(page, "patient-reviewed.png")

        # reloaded, the planted script shows as text and never ran
        page.reload()
        assert page.inner_text("#reviews td.note >> nth=0") == SCRIPT
        assert SCRIPT in page.inner_text("#diagnoses")
        assert page.evaluate("window.__pwned") is None
        assert page.title() != "pwned" and page.dialogs == []
        assert page.inner_text("#reviews tr.latest td.verdict") == "unsure"

        # the worklist shows each decision after a reload, and filters by status
        page.goto(server.url)
        status = dict(page.locator("#worklist tbody tr").evaluate_all(
            "rows => rows.map(r => [r.dataset.patient, r.querySelector('td.status').innerText])"))
        assert status == {**{p: "confirmed BMC" if labels[p] else "not BMC" for p, _ in sample},
                          PLANTED: "unsure"}
        page.select_option("#status-filter", "not_bmc")
        page.click("form.filters button")
        shown = page.locator("#worklist tbody tr").evaluate_all("r => r.map(x => x.dataset.patient)")
        assert sorted(shown) == sorted(p for p, _ in sample if not labels[p])
        shot(page, "worklist-reviewed.png")
    finally:
        log = server.stop()

    # the request log names routes, never a patient id or a note
    assert "GET /patient/<id> 200" in log and "POST /patient/<id>/review 303" in log
    assert first not in log and "script" not in log

    done = subprocess.run([sys.executable, "-m", "cohort.cli", "check", "--db", str(db),
                           "--truth", "review", "--format", "json"],
                          capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout)[0]
    tier1 = [p for p, t in sample if t == "1"]
    tier2 = [p for p, t in sample if t == "2"]
    assert figures["tp"] == sum(labels[p] for p in tier1)          # tier 1 = in the cohort
    assert figures["fp"] == sum(not labels[p] for p in tier1)
    assert figures["fn"] == sum(labels[p] for p in tier2)          # tier 2 = not in it
    assert figures["tn"] == sum(not labels[p] for p in tier2)
    assert figures["screen_reviewed"] == len(sample)
    assert figures["screen_confirmed"] == sum(labels[p] for p, _ in sample)
    assert figures["unsure"] == 1
    print("check --truth review after adjudicating the sample's flagged candidates:", figures)


def test_the_static_copy_opens_from_files_without_a_form_or_running_the_script(
        page, flagged, tmp_path):
    db, rows = flagged
    out = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "cohort.cli", "review", "--db", str(db),
                    "--static", str(out)], capture_output=True, text=True, check=True)
    page.goto((out / "index.html").as_uri())
    assert page.locator("#worklist tbody tr").count() == len(rows)
    page.click(f"#worklist tr[data-patient='{PLANTED}'] a")
    page.wait_for_load_state("load")  # the page and its timeline image
    assert page.locator("#timeline").evaluate("img => img.complete && img.naturalWidth") > 0
    assert page.locator("#review-form").count() == 0
    assert SCRIPT in page.inner_text("#diagnoses")
    assert page.evaluate("window.__pwned") is None and page.dialogs == []
    shot(page, "static-patient.png")
