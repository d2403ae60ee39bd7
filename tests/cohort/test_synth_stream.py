"""``stream_bulk``: any size, same kinds of patients, valid NDJSON, deterministic."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (REPO.parent / "shared" / "paper" / "timeline.csv").is_file(),
                                reason="../shared/paper is not present")


def test_the_paper_institution_holds_exactly_the_22():
    from cohort.synth.mix import PAPER_INSTITUTION_SIZE, quotas

    q = quotas(PAPER_INSTITUTION_SIZE)
    assert q["bmc_paper"] == 22 and sum(q.values()) == 12_970
    assert quotas(100_000)["bmc_paper"] == 170 and sum(quotas(100_000).values()) == 100_000
    assert sum(quotas(7).values()) == 7


def test_roles_are_spread_evenly_through_the_stream():
    from cohort.synth.mix import schedule

    roles = list(schedule(12_970))
    first_half = roles[: len(roles) // 2].count("bmc_paper")
    assert roles.count("bmc_paper") == 22 and 10 <= first_half <= 12


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    from cohort.synth import stream_bulk

    out = tmp_path_factory.mktemp("stream")
    seen: list[int] = []
    summary = stream_bulk(out, 600, seed=7, progress=seen.append, max_lines_per_file=5_000)
    return out, summary, seen


def test_stream_is_valid_ndjson_one_type_per_file(stream):
    from fhir.resources.R4B import get_fhir_model_class

    out, summary, _ = stream
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert {o["url"] for o in manifest["output"]} == {p.name for p in out.glob("*.ndjson")}
    counts: dict[str, int] = {}
    for o in manifest["output"]:
        lines = (out / o["url"]).read_bytes().splitlines()
        assert len(lines) == o["count"]
        model = get_fhir_model_class(o["type"])
        for line in lines:
            model.model_validate_json(line)
        counts[o["type"]] = counts.get(o["type"], 0) + len(lines)
    assert counts == summary.resources and counts["Patient"] == 600
    assert len([o for o in manifest["output"] if o["type"] == "Observation"]) >= 2  # rotated


def test_stream_roles_and_progress(stream):
    out, summary, seen = stream
    with (out / "roles.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 600 and sum(summary.roles.values()) == 600
    patients = {json.loads(line)["id"] for line in (out / "Patient.000.ndjson").read_bytes().splitlines()}
    assert {r["patient_id"] for r in rows} == patients
    assert seen[-1] == 600 and seen == sorted(seen)


def test_stream_is_deterministic(tmp_path, stream):
    from cohort.synth import stream_bulk

    out, _, _ = stream
    stream_bulk(tmp_path, 600, seed=7, max_lines_per_file=5_000)
    for f in sorted(out.iterdir()):
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f.name
