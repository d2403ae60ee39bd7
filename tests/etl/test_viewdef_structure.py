"""The json_transform structure derived from the paths a view uses."""
from __future__ import annotations

from etl.viewdef.compiler import compile_view


def _view(resource: str, *paths: str) -> dict:
    columns = [{"name": f"c{i}", "path": p} for i, p in enumerate(paths)]
    return {"resource": resource, "select": [{"column": columns}]}


def test_only_used_elements_are_in_the_structure():
    compiled = compile_view(_view("Patient", "id", "gender"))
    assert compiled.structure == {"id": "VARCHAR", "gender": "VARCHAR"}


def test_coding_codes_are_a_typed_list_of_struct():
    view = {"resource": "Observation", "select": [{"column": [
        {"name": "codes", "path": "code.coding.code", "collection": True}]}]}
    compiled = compile_view(view)
    assert compiled.structure == {"code": {"coding": [{"code": "VARCHAR"}]}}
    assert compiled.columns[0].duckdb_type == "VARCHAR[]"


def test_quantity_value_is_double_through_the_choice_element():
    compiled = compile_view(_view("Observation", "value.ofType(Quantity).value"))
    assert compiled.structure == {"valueQuantity": {"value": "DOUBLE"}}
    assert compiled.columns[0].duckdb_type == "DOUBLE"
    assert compiled.columns[0].fhir_type == "decimal"


def test_dates_stay_varchar_so_partial_dates_survive():
    compiled = compile_view(_view("Patient", "birthDate"))
    assert compiled.structure == {"birthDate": "VARCHAR"}


def test_integer_and_boolean_elements_are_typed():
    compiled = compile_view(_view("Patient", "multipleBirth.ofType(integer)", "active"))
    assert compiled.structure == {"multipleBirthInteger": "INTEGER", "active": "BOOLEAN"}


def test_repeat_target_falls_back_to_json():
    view = {"resource": "Questionnaire",
            "select": [{"repeat": ["item"], "column": [{"name": "link_id", "path": "linkId"}]}]}
    assert compile_view(view).structure == {"item": "JSON"}


def test_element_used_typed_and_by_repeat_is_json_throughout():
    view = {"resource": "Questionnaire", "select": [{"unionAll": [
        {"column": [{"name": "link_id", "path": "item.linkId.first()"}]},
        {"repeat": ["item"], "column": [{"name": "link_id", "path": "linkId"}]}]}]}
    compiled = compile_view(view)
    assert compiled.structure == {"item": "JSON"}
    assert "from_json" in compiled.sql


def test_element_unknown_to_r4_is_read_as_json():
    compiled = compile_view(_view("Patient", "r5OnlyElement"))
    assert compiled.structure == {"r5OnlyElement": "JSON"}
    assert compiled.columns[0].duckdb_type == "VARCHAR"


def test_extension_value_is_typed_by_oftype():
    path = ("extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex')"
            ".value.ofType(code).first()")
    compiled = compile_view(_view("Patient", path))
    assert compiled.structure == {"extension": [{"url": "VARCHAR", "valueCode": "VARCHAR"}]}


def test_contained_resources_of_one_type_share_a_struct_with_resource_type():
    compiled = compile_view(_view("MedicationAdministration",
                                  "contained.ofType(Medication).code.text.first()"))
    assert compiled.structure == {
        "contained": [{"resourceType": "VARCHAR", "code": {"text": "VARCHAR"}}]}


def test_compiled_sql_has_no_braces_but_the_source_placeholder():
    view = {"resource": "Questionnaire",
            "select": [{"repeat": ["item"], "column": [{"name": "link_id", "path": "linkId"}]}]}
    sql = compile_view(view).sql
    assert sql.count("{") == 1 and "{source}" in sql and sql.count("}") == 1
