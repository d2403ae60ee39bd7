"""ViewDefinition errors: what is wrong and where, raised before any SQL runs."""
from __future__ import annotations

import duckdb
import pytest

from etl.errors import ViewDefinitionError
from etl.viewdef.compiler import compile_view, validate_view
from etl.viewdef.evaluate import evaluate_view


def _view(**overrides):
    view = {"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]}
    view.update(overrides)
    return view


def test_valid_view_validates():
    assert validate_view(_view()) is None


def test_bad_fhirpath_names_the_column_and_offset():
    view = _view(select=[{"column": [{"name": "id", "path": "id"}, {"name": "x", "path": "@@"}]}])
    with pytest.raises(ViewDefinitionError,
                       match=r"^select\[0\]\.column\[1\]\.path: unexpected '@' at offset 0$"):
        validate_view(view)


def test_missing_resource():
    with pytest.raises(ViewDefinitionError, match=r"^resource: missing"):
        validate_view({"select": [{"column": [{"name": "id", "path": "id"}]}]})


def test_empty_view():
    with pytest.raises(ViewDefinitionError, match="empty ViewDefinition"):
        validate_view({})


def test_foreach_must_be_a_string():
    with pytest.raises(ViewDefinitionError,
                       match=r"select\[0\]\.forEach: expected a FHIRPath string, got int"):
        validate_view(_view(select=[{"forEach": 1, "column": [{"name": "a", "path": "id"}]}]))


def test_where_must_be_boolean():
    with pytest.raises(ViewDefinitionError, match=r"where\[0\]\.path: 'name.family' does not "
                                                  r"return a boolean"):
        validate_view(_view(where=[{"path": "name.family"}]))


def test_undefined_constant():
    view = _view(select=[{"column": [{"name": "x", "path": "name.where(use = %nope).family"}]}])
    with pytest.raises(ViewDefinitionError, match=r"undefined constant '%nope'"):
        validate_view(view)


def test_constant_without_value():
    with pytest.raises(ViewDefinitionError, match=r"constant\[0\]: needs exactly one value"):
        validate_view(_view(constant=[{"name": "use"}]))


def test_unsupported_function_is_an_error_not_wrong_sql():
    view = _view(select=[{"column": [{"name": "x", "path": "name.family.substring(1)"}]}])
    with pytest.raises(ViewDefinitionError, match=r"unsupported function 'substring\(\)'"):
        compile_view(view)


def test_choice_element_needs_oftype():
    view = {"resource": "Observation", "select": [{"column": [{"name": "v", "path": "value"}]}]}
    with pytest.raises(ViewDefinitionError, match="choice element; use ofType"):
        compile_view(view)


def test_complex_column_needs_a_primitive_path():
    view = {"resource": "Observation", "select": [{"column": [{"name": "c", "path": "code"}]}]}
    with pytest.raises(ViewDefinitionError, match="yields CodeableConcept values"):
        compile_view(view)


def test_union_branches_must_agree_on_columns():
    view = _view(select=[{"unionAll": [{"column": [{"name": "a", "path": "id"}]},
                                       {"column": [{"name": "b", "path": "id"}]}]}])
    with pytest.raises(ViewDefinitionError, match=r"select\[0\]\.unionAll\[1\]: unionAll branches"):
        compile_view(view)


def test_duplicate_column_names():
    view = _view(select=[{"column": [{"name": "a", "path": "id"}, {"name": "a", "path": "id"}]}])
    with pytest.raises(ViewDefinitionError, match="column name 'a' is used twice"):
        compile_view(view)


def test_several_values_in_a_non_collection_column_fail_at_run_time():
    view = _view(select=[{"column": [{"name": "family", "path": "name.family"}]}])
    patient = {"resourceType": "Patient", "id": "p1",
               "name": [{"family": "Official"}, {"family": "Maiden"}]}
    with pytest.raises(ViewDefinitionError, match="column family returned more than one value"):
        evaluate_view(duckdb.connect(), view, [patient])


def test_error_messages_do_not_contain_resource_content():
    view = _view(select=[{"column": [{"name": "family", "path": "name.family"}]}])
    patient = {"resourceType": "Patient", "id": "p1",
               "name": [{"family": "Secretname"}, {"family": "Othername"}]}
    with pytest.raises(ViewDefinitionError) as info:
        evaluate_view(duckdb.connect(), view, [patient])
    assert "Secretname" not in str(info.value)


def test_a_tag_needs_a_name_and_a_value():
    view = _view(select=[{"column": [{"name": "id", "path": "id", "tag": [{"name": "required"}]}]}])
    with pytest.raises(ViewDefinitionError, match=r"^select\[0\]\.column\[0\]\.tag\[0\]: a tag is"):
        validate_view(view)


def test_column_tags_are_kept_on_the_compiled_column():
    view = _view(select=[{"column": [{"name": "id", "path": "id",
                                      "tag": [{"name": "required", "value": "true"}]}]}])
    assert compile_view(view).columns[0].tags == (("required", "true"),)
