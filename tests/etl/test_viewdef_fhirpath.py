"""The FHIRPath parser: precedence, literals, and errors that carry the offset."""
from __future__ import annotations

from decimal import Decimal

import pytest

from etl.viewdef import fhirpath as fp


def test_member_chain_parses_left_to_right():
    node = fp.parse("code.coding.code")
    assert isinstance(node, fp.Member) and node.name == "code"
    assert isinstance(node.target, fp.Member) and node.target.name == "coding"
    assert node.target.target == fp.Identifier(0, "code")


def test_and_binds_tighter_than_or():
    node = fp.parse("a = 1 or b = 2 and c = 3")
    assert isinstance(node, fp.Binary) and node.op == "or"
    assert isinstance(node.right, fp.Binary) and node.right.op == "and"


def test_multiplication_binds_tighter_than_addition():
    node = fp.parse("1 + 2 * 3")
    assert node.op == "+" and node.right.op == "*"


def test_function_call_with_type_argument():
    node = fp.parse("subject.getReferenceKey(Patient)")
    assert isinstance(node, fp.Call) and node.name == "getReferenceKey"
    assert node.args == (fp.Identifier(24, "Patient"),)


def test_indexer_with_constant():
    node = fp.parse("name[%idx].family")
    assert isinstance(node.target, fp.Index)
    assert node.target.index == fp.Variable(5, "idx")


def test_string_escapes_are_decoded():
    assert fp.parse(r"'it\'s'") == fp.Literal(0, "it's", "string")


def test_decimal_literal_keeps_its_digits():
    assert fp.parse("1.50") == fp.Literal(0, Decimal("1.50"), "decimal")


def test_date_and_datetime_literals():
    assert fp.parse("@2019-03").kind == "date"
    assert fp.parse("@2019-03-01T10:00:00Z") == fp.Literal(0, "2019-03-01T10:00:00Z", "dateTime")


def test_delimited_identifier():
    assert fp.parse("`div`") == fp.Identifier(0, "div")


def test_unexpected_character_reports_offset():
    with pytest.raises(fp.FhirPathSyntaxError) as info:
        fp.parse("name.@@")
    assert info.value.offset == 5
    assert str(info.value) == "unexpected '@' at offset 5"


def test_unclosed_call_reports_end_of_expression():
    with pytest.raises(fp.FhirPathSyntaxError, match="unexpected end of expression at offset 12"):
        fp.parse("name.where(x")


def test_trailing_tokens_are_rejected():
    with pytest.raises(fp.FhirPathSyntaxError, match=r"unexpected 'b' at offset 2"):
        fp.parse("a b")


def test_dollar_index_is_rejected_explicitly():
    with pytest.raises(fp.FhirPathSyntaxError, match=r"only \$this is supported"):
        fp.parse("name.where($index = 0)")


def test_select_projects_each_item_and_skips_empty_input():
    import duckdb

    from etl.viewdef.evaluate import evaluate_view

    view = {"resource": "Observation", "select": [{"column": [
        {"name": "codings", "collection": True, "type": "string",
         "path": "category.coding.where(code.exists()).select(system & '|' & code)"},
        {"name": "unit", "type": "string",
         "path": "value.ofType(Quantity).select(system & '|' & code)"}]}]}
    obs = [{"resourceType": "Observation", "id": "a", "status": "final", "code": {},
            "category": [{"coding": [{"system": "s", "code": "c1"}, {"code": "c2"},
                                     {"system": "s"}]}, {"coding": [{"system": "t", "code": "c3"}]}],
            "valueQuantity": {"value": 1, "system": "u", "code": "mg"}},
           {"resourceType": "Observation", "id": "b", "status": "final", "code": {}}]
    rows = evaluate_view(duckdb.connect(), view, obs)
    assert rows == [{"codings": ["s|c1", "|c2", "t|c3"], "unit": "u|mg"},
                    {"codings": [], "unit": None}]
