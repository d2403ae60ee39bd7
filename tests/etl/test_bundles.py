"""Walking JSON documents: every Bundle type, nested Bundles, ids for POST entries, DELETEs."""
from __future__ import annotations

import json

from etl.bundles import derived_id, walk_document

UUID = "8f3c7c1e-4b1a-4c55-9f0e-2d3b1a7c9e01"


def records(doc):
    return list(walk_document(doc))


def test_single_resource_is_one_record_without_entry_path():
    [r] = records({"resourceType": "Patient", "id": "p1"})
    assert (r.resource_type, r.resource_id, r.entry, r.problem) == ("Patient", "p1", None, None)


def test_transaction_post_without_id_gets_the_uuid_of_its_full_url():
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{UUID.upper()}", "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "final"}}]}
    _, obs = records(bundle)
    assert obs.resource_id == UUID and obs.id_derived
    assert json.loads(obs.text)["id"] == UUID  # written into the resource for every view
    assert obs.entry == "entry[0]" and obs.full_url == f"urn:uuid:{UUID.upper()}"


def test_derived_ids_are_stable_for_absolute_and_opaque_full_urls():
    assert derived_id("http://example.org/fhir/Observation/abc/_history/2", b"") == "abc"
    assert derived_id("whatever", b"") == derived_id("whatever", b"{}")
    assert derived_id(None, b'{"a":1}') == derived_id(None, b'{"a":1}') != derived_id(None, b'{"a":2}')


def test_nested_bundles_give_nested_entry_paths_and_count_as_bundles():
    inner = {"resourceType": "Bundle", "id": "in", "type": "collection",
             "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}]}
    outer = {"resourceType": "Bundle", "id": "out", "type": "searchset",
             "entry": [{"resource": {"resourceType": "Patient", "id": "p0"}}, {"resource": inner}]}
    got = [(r.resource_type, r.resource_id, r.entry) for r in records(outer)]
    assert got == [("Bundle", "out", None), ("Patient", "p0", "entry[0]"),
                   ("Bundle", "in", "entry[1]"), ("Patient", "p1", "entry[1].entry[0]")]
    assert "entry" not in json.loads(records(outer)[0].text)  # the container, not its entries


def test_delete_entry_is_a_deletion_of_its_request_url():
    b = {"resourceType": "Bundle", "type": "transaction",
         "entry": [{"request": {"method": "DELETE", "url": "Patient/p9"}}]}
    [_, d] = records(b)
    assert (d.method, d.resource_type, d.resource_id, d.problem) == ("DELETE", "Patient", "p9", None)


def test_conditional_delete_is_reported_not_guessed():
    b = {"resourceType": "Bundle", "type": "transaction",
         "entry": [{"request": {"method": "DELETE", "url": "Patient?identifier=x|1"}}]}
    [_, d] = records(b)
    assert d.problem == "conditional DELETE is not supported"


def test_transaction_response_entries_without_resources_are_not_errors():
    b = {"resourceType": "Bundle", "id": "r", "type": "transaction-response",
         "entry": [{"response": {"status": "201 Created", "location": "Patient/1/_history/1"}}]}
    assert [r.resource_type for r in records(b)] == ["Bundle"]


def test_entry_without_resource_or_type_is_a_problem_with_its_path():
    b = {"resourceType": "Bundle", "id": "b", "type": "collection",
         "entry": [{"fullUrl": "urn:uuid:1"}, {"resource": {"id": "x"}}, "junk"]}
    problems = [(r.entry, r.problem) for r in records(b) if r.problem]
    assert problems == [("entry[0]", "bundle entry without resource"),
                        ("entry[1]", "missing resourceType"),
                        ("entry[2]", "bundle entry is not a JSON object")]
