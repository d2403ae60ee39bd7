"""The committed sample: regenerates byte for byte, validates with R4B, keeps the id contract."""
from __future__ import annotations

import json
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_bundles"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _files(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    if not (REPO.parent / "shared" / "paper" / "timeline.csv").is_file():
        pytest.skip("../shared/paper is not present")
    from cohort.synth import write_sample

    out = tmp_path_factory.mktemp("sample")
    write_sample(out)
    return out


def test_same_seed_gives_the_committed_bytes(regenerated):
    committed, fresh = _files(SAMPLE), _files(regenerated)
    assert sorted(committed) == sorted(fresh)
    differ = [name for name in committed if committed[name] != fresh[name]]
    assert not differ, f"regenerate with write_sample(Path('sample_bundles')): {differ[:5]}"


def test_sample_stays_under_20_mib():
    total = sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file())
    assert total < 20 * 1024 * 1024, total


def test_text_files_use_unix_newlines():
    for f in SAMPLE.rglob("*"):
        if f.is_file():
            assert b"\r\n" not in f.read_bytes(), f


# --- R4B validity -------------------------------------------------------------------------------
def _validate_bulk_file(path: str) -> list[str]:
    from fhir.resources.R4B import get_fhir_model_class

    errors = []
    for n, line in enumerate(Path(path).read_bytes().splitlines(), start=1):
        rtype = json.loads(line)["resourceType"]
        try:
            get_fhir_model_class(rtype).model_validate_json(line)
        except Exception as e:  # report every invalid line, not only the first
            errors.append(f"{Path(path).name} line {n}: {str(e)[:200]}")
    return errors


def _validate_bundles(paths: list[str]) -> list[str]:
    from fhir.resources.R4B import get_fhir_model_class

    bundle = get_fhir_model_class("Bundle")
    errors = []
    for p in paths:
        try:
            bundle.model_validate_json(Path(p).read_bytes())
        except Exception as e:
            errors.append(f"{Path(p).name}: {str(e)[:200]}")
    return errors


def test_every_resource_validates_with_r4b():
    bulk = [str(p) for p in sorted((SAMPLE / "bulk").glob("*.ndjson"))]
    bundles = [str(p) for p in sorted((SAMPLE / "bundles").glob("*.json"))]
    chunks = [bundles[i::4] for i in range(4)]
    with ProcessPoolExecutor(max_workers=4) as pool:
        errors = [e for errs in pool.map(_validate_bulk_file, bulk) for e in errs]
        errors += [e for errs in pool.map(_validate_bundles, chunks) for e in errs]
    assert not errors, "\n".join(errors[:20])


# --- the id and reference contract ----------------------------------------------------------------
def _refs(obj, out: list[str]) -> list[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "reference" and isinstance(v, str):
                out.append(v)
            else:
                _refs(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _refs(v, out)
    return out


def _bundle_keys() -> set[tuple[str, str, str]]:
    keys = set()
    for f in sorted((SAMPLE / "bundles").glob("*.json")):
        b = json.loads(f.read_bytes())
        assert b["resourceType"] == "Bundle" and b["type"] == "transaction"
        full_urls = {e["fullUrl"] for e in b["entry"]}
        seen: set[str] = set()
        for i, e in enumerate(b["entry"]):
            r, req = e["resource"], e["request"]
            uid = e["fullUrl"].removeprefix("urn:uuid:")
            assert e["fullUrl"].startswith("urn:uuid:") and UUID.match(uid)
            if i == 0:
                assert r["resourceType"] == "Patient" and f.stem == uid == r["id"]
                assert req == {"method": "PUT", "url": f"Patient/{uid}"}
            elif e["fullUrl"] in seen:  # a later version of the same resource
                assert req == {"method": "PUT", "url": f"{r['resourceType']}/{uid}"} and r["id"] == uid
                assert int(r["meta"]["versionId"]) >= 2
            else:
                assert req == {"method": "POST", "url": r["resourceType"]} and "id" not in r
            seen.add(e["fullUrl"])
            for ref in _refs(r, []):
                assert ref in full_urls, f"{f.name}: {ref} does not resolve inside the bundle"
            keys.add((r["resourceType"], uid, r.get("meta", {}).get("versionId", "")))
    return keys


def _bulk_keys() -> set[tuple[str, str, str]]:
    manifest = json.loads((SAMPLE / "bulk" / "manifest.json").read_bytes())
    assert set(manifest) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["error"] == [] and manifest["requiresAccessToken"] is False
    keys, ids = set(), set()
    listed = {o["url"]: o for o in manifest["output"]}
    assert sorted(listed) == sorted(p.name for p in (SAMPLE / "bulk").glob("*.ndjson"))
    rows = []
    for name, o in listed.items():
        lines = (SAMPLE / "bulk" / name).read_bytes().splitlines()
        assert len(lines) == o["count"] and name.startswith(o["type"] + ".")
        for line in lines:
            r = json.loads(line)
            assert r["resourceType"] == o["type"] and UUID.match(r["id"])
            ids.add(f"{r['resourceType']}/{r['id']}")
            rows.append(r)
            keys.add((r["resourceType"], r["id"], r.get("meta", {}).get("versionId", "")))
    for r in rows:
        for ref in _refs(r, []):
            assert ref in ids, f"{ref} does not resolve in the export"
    return keys


def test_both_shapes_hold_the_same_resources_under_the_same_keys():
    assert _bundle_keys() == _bulk_keys()


def test_one_resource_has_two_versions():
    versions = {}
    for line in (SAMPLE / "bulk" / "Observation.000.ndjson").read_bytes().splitlines():
        r = json.loads(line)
        if "versionId" in r.get("meta", {}):
            versions.setdefault(r["id"], []).append((r["meta"]["versionId"], r["status"]))
    assert list(versions.values()) == [[("1", "preliminary"), ("2", "corrected")]]


def test_patient_ids_and_fhir_say_nothing_about_roles():
    roles = (SAMPLE / "roles.csv").read_text().splitlines()[1:]
    role_names = {line.split(",")[1] for line in roles}
    for f in (SAMPLE / "bulk").glob("*.ndjson"):
        text = f.read_text()
        for name in role_names:
            assert name not in text, (f.name, name)
    for line in roles:
        assert UUID.match(line.split(",")[0])
