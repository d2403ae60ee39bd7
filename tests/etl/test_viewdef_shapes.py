"""The compiled SQL's shape is an optimisation, not a change of meaning.

The compiler once packed every row into STRUCTs inside nested ``list_transform``s and unnested
one list per resource (commit 6ab199e, ``etl/viewdef/compiler.py``). That compiler is simple
enough to trust, so it is the oracle here: its compiled queries of the same view definitions
(with the FHIRPath translation of the time, so only the row shape differs) are golden files
in ``golden/viewdef_oracle/`` (``make.py`` there says how they were made from git history),
and their rows must equal today's on every declared table over the sample data
(``sample_bundles/`` and ``../shared/external``), and on small views that stress
forEachOrNull, unionAll, nesting and %rowIndex. The files are in the repository, so a
shallow clone runs this test too.
"""
from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import duckdb
import orjson
import pyarrow as pa
import pytest

from etl.declared import views_dir
from etl.sql import sql_string
from etl.viewdef.compiler import compile_view
from etl.viewdef.macros import install_macros

ROOT = Path(__file__).resolve().parents[2]
DATA = [ROOT / "sample_bundles", ROOT.parent / "shared" / "external"]
GOLDEN = Path(__file__).resolve().parent / "golden" / "viewdef_oracle"


def oracle(name: str) -> SimpleNamespace:
    """The oracle's compiled view ``name`` (``resource``, ``structure``, ``render``)."""
    data = json.loads((GOLDEN / f"{name}.json").read_text())
    return SimpleNamespace(resource=data["resource"], structure=data["structure"],
                           render=lambda source: data["sql"].replace("{source}", source))


def test_every_view_and_shape_has_its_golden_oracle():
    """A view added without regenerating the oracle fails here instead of going untested."""
    expected = {f"view-{p.stem}" for p in views_dir().glob("*.json")} | \
        {"shape-" + name.replace(" ", "-") for name in SHAPES}
    assert {p.stem for p in GOLDEN.glob("*.json")} == expected


def _resources_in(doc):
    if isinstance(doc, dict) and isinstance(doc.get("resourceType"), str):
        if doc["resourceType"] == "Bundle":
            for entry in doc.get("entry") or []:
                if isinstance(entry, dict):
                    yield from _resources_in(entry.get("resource"))
        else:
            yield doc


def _sample_resources() -> list[dict]:
    out: list[dict] = []
    for root in DATA:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or not path.name.endswith((".json", ".ndjson", ".gz")):
                continue
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data = gzip.decompress(data)
            data = data.removeprefix(b"\xef\xbb\xbf")
            try:
                out.extend(_resources_in(orjson.loads(data)))
                continue
            except orjson.JSONDecodeError:
                pass
            for line in data.splitlines():
                with contextlib.suppress(orjson.JSONDecodeError):  # blank or not JSON
                    out.extend(_resources_in(orjson.loads(line)))
    return out


@pytest.fixture(scope="module")
def con():
    resources = _sample_resources()
    if not resources:
        pytest.skip("no sample data found")
    connection = duckdb.connect()
    install_macros(connection)
    _register(connection, "_sample", resources)
    yield connection
    connection.close()


def _register(connection, name: str, resources: list[dict]) -> None:
    connection.register(name, pa.table({
        "_rid": pa.array(range(len(resources)), pa.int64()),
        "rt": pa.array([r.get("resourceType") for r in resources], pa.string()),
        "text": pa.array([orjson.dumps(r).decode() for r in resources], pa.string())}))


def _differences(connection, table: str, new, old) -> tuple[int, int, int]:
    """(rows today, rows only today, rows only in the oracle's result)."""
    def run(compiled, name):
        structure = sql_string(json.dumps(compiled.structure))
        source = (f"(SELECT _rid, json_transform(text, {structure}) AS r FROM {table} "
                  f"WHERE rt = {sql_string(compiled.resource)})")
        connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {compiled.render(source)}")

    run(new, "_new")
    run(old, "_old")
    assert [d[:2] for d in connection.execute("DESCRIBE _new").fetchall()] == \
        [d[:2] for d in connection.execute("DESCRIBE _old").fetchall()]
    count = connection.execute
    return (count("SELECT count(*) FROM _new").fetchone()[0],
            count("SELECT count(*) FROM (FROM _new EXCEPT ALL FROM _old)").fetchone()[0],
            count("SELECT count(*) FROM (FROM _old EXCEPT ALL FROM _new)").fetchone()[0])


@pytest.mark.parametrize("path", sorted(views_dir().glob("*.json")), ids=lambda p: p.stem)
def test_declared_table_rows_equal_the_oracle_on_the_sample(con, path):
    view = json.loads(path.read_text())
    rows, only_new, only_old = _differences(con, "_sample", compile_view(view),
                                            oracle(f"view-{path.stem}"))
    assert (only_new, only_old) == (0, 0), f"{path.stem}: {rows} rows"


# Small views whose null rows, unions and nesting are easy to get wrong.
_NAME = {"column": [{"name": "id", "path": "id"}]}
SHAPES = {
    "unionAll inside forEachOrNull": {"select": [_NAME, {
        "forEachOrNull": "contact", "column": [{"name": "i", "path": "%rowIndex"}],
        "unionAll": [{"forEach": "telecom", "column": [{"name": "v", "path": "value"}]},
                     {"forEach": "name.given", "column": [{"name": "v", "path": "$this"}]}]}]},
    "forEach inside forEachOrNull": {"select": [_NAME, {
        "forEachOrNull": "contact",
        "column": [{"name": "ci", "path": "%rowIndex"}, {"name": "k", "path": "'c'"},
                   {"name": "codes", "path": "relationship.coding.code", "collection": True}],
        "select": [{"forEach": "telecom", "column": [
            {"name": "ti", "path": "%rowIndex"}, {"name": "v", "path": "value"},
            {"name": "has", "path": "value.exists()"}]}]}]},
    "nested forEachOrNull": {"select": [_NAME, {
        "forEachOrNull": "contact", "column": [{"name": "ci", "path": "%rowIndex"}],
        "select": [{"forEachOrNull": "telecom", "column": [
            {"name": "ti", "path": "%rowIndex"}, {"name": "v", "path": "value"},
            {"name": "root", "path": "%resource.id"}]}]}]},
    "sibling iterations multiply": {"select": [_NAME,
        {"forEachOrNull": "name", "column": [{"name": "family", "path": "family"}]},
        {"forEach": "telecom", "column": [{"name": "t", "path": "value"},
                                          {"name": "ti", "path": "%rowIndex"}]}]},
    "unionAll of unionAll": {"select": [_NAME, {"unionAll": [
        {"column": [{"name": "v", "path": "gender"}]},
        {"unionAll": [{"forEach": "name", "column": [{"name": "v", "path": "family"}]},
                      {"forEachOrNull": "address", "column": [{"name": "v", "path": "city"}]}]}]}]},
    "repeat": {"select": [_NAME, {"repeat": ["contact"], "column": [
        {"name": "gender", "path": "gender"}, {"name": "ri", "path": "%rowIndex"}]}]},
}
PATIENTS = [
    {"resourceType": "Patient", "id": "none"},
    {"resourceType": "Patient", "id": "empty-lists", "contact": [], "name": [], "telecom": []},
    {"resourceType": "Patient", "id": "full", "gender": "female",
     "name": [{"family": "A", "given": ["x", "y"]}, {"given": ["z"]}],
     "telecom": [{"value": "1"}, {"system": "email"}],
     "address": [{"city": "C"}, {"line": ["l"]}],
     "contact": [{"telecom": [{"value": "c1"}, {"value": "c2"}], "gender": "male",
                  "relationship": [{"coding": [{"code": "N"}, {"code": "E"}]}],
                  "name": {"given": ["g"]}},
                 {"name": {"family": "only-name"}}, {"telecom": []}]},
]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_rows_equal_the_oracle(name):
    view = {"resource": "Patient", **SHAPES[name]}
    connection = duckdb.connect()
    install_macros(connection)
    _register(connection, "_patients", PATIENTS)
    rows, only_new, only_old = _differences(connection, "_patients", compile_view(view),
                                            oracle("shape-" + name.replace(" ", "-")))
    assert rows > 0
    assert (only_new, only_old) == (0, 0)
