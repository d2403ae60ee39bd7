"""The one reader of ``etl/views/``: the file name is the table name, and a bad file is a
ViewDefinitionError naming it (the loader, the export and ``bmc tables`` all read through it)."""
from __future__ import annotations

import json

import pytest

from etl.declared import compiled_views, load_view_json, read_views, views_dir
from etl.errors import ViewDefinitionError

PATIENT_VIEW = {"resourceType": "ViewDefinition", "name": "patient", "resource": "Patient",
                "status": "active",
                "select": [{"column": [{"name": "id", "path": "id", "type": "id"}]}]}


def test_a_view_named_like_its_file_is_read_under_that_name(tmp_path):
    (tmp_path / "patient.json").write_text(json.dumps(PATIENT_VIEW))
    assert read_views(tmp_path) == {"patient": PATIENT_VIEW}


def test_a_view_named_unlike_its_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "patients.json").write_text(json.dumps(PATIENT_VIEW))
    with pytest.raises(ViewDefinitionError, match=r"^patients\.json: name is 'patient', "
                       r"expected 'patients' \(the file name is the table name\)$"):
        read_views(tmp_path)


def test_a_file_that_is_not_json_is_refused_naming_the_file(tmp_path):
    (tmp_path / "patient.json").write_text('{"name": "patient",')
    with pytest.raises(ViewDefinitionError, match=r"^patient\.json: not valid JSON"):
        read_views(tmp_path)


def test_the_declared_views_are_read_once_and_compiled_in_file_order():
    assert load_view_json() is load_view_json()
    assert [v.name for v in compiled_views()] == \
        sorted(p.stem for p in views_dir().glob("*.json"))
