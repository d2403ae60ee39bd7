"""Finding inputs and cutting NDJSON into lines: by content, with exact line numbers."""
from __future__ import annotations

import json

import pytest

from etl.errors import SourceError
from etl.sources import discover, iter_line_chunks
from tests.conftest import write_json, write_ndjson

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female"}


def lines_of(path, chunk_bytes=1 << 20):
    out = []
    for ch in iter_line_chunks(path, chunk_bytes):
        for s, e, n in zip(ch.starts, ch.ends, ch.line_numbers, strict=True):
            out.append((int(n), bytes(ch.buf[s:e])))
    return out


def test_folders_are_walked_recursively_in_sorted_order(tmp_path):
    write_ndjson(tmp_path / "b" / "Observation.000.ndjson", [PATIENT])
    write_ndjson(tmp_path / "a" / "x.jsonl", [PATIENT])
    write_json(tmp_path / "a" / "bundle.json", {"resourceType": "Bundle", "type": "collection"})
    (tmp_path / "a" / "README.md").write_text("not fhir")
    disc = discover([tmp_path])
    assert [f.path.name for f in disc.files] == ["bundle.json", "x.jsonl", "Observation.000.ndjson"]
    assert [f.kind for f in disc.files] == ["json", "ndjson", "ndjson"]
    [(skipped_path, why)] = disc.skipped
    assert skipped_path.endswith("README.md") and why == "not a JSON/NDJSON file"


def test_globs_and_files_mix_and_each_file_appears_once(tmp_path):
    f = write_ndjson(tmp_path / "Patient.ndjson", [PATIENT])
    disc = discover([str(tmp_path / "*.ndjson"), f, tmp_path])
    assert [x.path for x in disc.files] == [f.resolve()]


def test_a_missing_input_is_a_source_error_naming_it(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.ndjson: no such file or folder"):
        discover([tmp_path / "nope.ndjson"])


def test_a_glob_matching_nothing_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="matches no file"):
        discover([str(tmp_path / "*.ndjson")])


def test_manifest_lists_output_deleted_and_error_files(tmp_path):
    write_ndjson(tmp_path / "Patient.000.ndjson", [PATIENT])
    write_ndjson(tmp_path / "deleted" / "del.ndjson", [PATIENT])
    write_ndjson(tmp_path / "err.ndjson", [{"resourceType": "OperationOutcome", "id": "o1", "issue": []}])
    write_json(tmp_path / "manifest.json", {
        "transactionTime": "2024-01-01T00:00:00Z", "request": "https://x/$export", "requiresAccessToken": False,
        "output": [{"type": "Patient", "url": "https://x/files/Patient.000.ndjson"}],
        "deleted": [{"type": "Bundle", "url": "https://x/files/del.ndjson"}],
        "error": [{"type": "OperationOutcome", "url": "err.ndjson"}]})
    disc = discover([tmp_path / "manifest.json"])
    by_name = {f.path.name: f for f in disc.files}
    assert set(by_name) == {"Patient.000.ndjson", "del.ndjson", "err.ndjson"}
    assert by_name["del.ndjson"].deleted and not by_name["Patient.000.ndjson"].deleted
    assert by_name["err.ndjson"].export_error
    assert disc.manifests


def test_manifest_naming_a_missing_file_says_which(tmp_path):
    write_json(tmp_path / "manifest.json", {"transactionTime": "t", "output": [{"type": "Patient", "url": "Gone.ndjson"}]})
    with pytest.raises(SourceError, match=r"names Gone\.ndjson"):
        discover([tmp_path / "manifest.json"])


def test_line_numbers_count_blank_lines_and_survive_bom_and_crlf(tmp_path):
    f = write_ndjson(tmp_path / "x.ndjson", [PATIENT, "", "   ", PATIENT], bom=True, crlf=True)
    got = lines_of(f)
    assert [n for n, _ in got] == [1, 4]
    assert all(json.loads(t) == PATIENT for _, t in got)


def test_gzip_is_read_by_magic_number_with_the_same_lines(tmp_path):
    plain = write_ndjson(tmp_path / "a.ndjson", [PATIENT] * 5)
    gz = write_ndjson(tmp_path / "a.ndjson.gz", [PATIENT] * 5, gz=True)
    assert lines_of(gz, 40) == lines_of(plain, 40)


def test_small_chunks_never_cut_a_line(tmp_path):
    docs = [{**PATIENT, "id": f"p{i}"} for i in range(50)]
    f = write_ndjson(tmp_path / "a.ndjson", docs)
    got = lines_of(f, chunk_bytes=100)
    assert [json.loads(t)["id"] for _, t in got] == [d["id"] for d in docs]
    assert [n for n, _ in got] == list(range(1, 51))


def test_last_line_without_newline_is_read(tmp_path):
    f = tmp_path / "a.ndjson"
    f.write_text(json.dumps(PATIENT) + "\n" + json.dumps({**PATIENT, "id": "p2"}))
    assert [json.loads(t)["id"] for _, t in lines_of(f)] == ["p1", "p2"]
