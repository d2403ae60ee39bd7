"""The disk cache of compiled views: same result as compiling, keyed so it is never stale."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl.viewdef import cache
from etl.viewdef.compiler import compile_view

ROOT = Path(__file__).resolve().parents[2]
VIEW = {"resource": "Observation", "name": "obs", "select": [{"column": [
    {"name": "resource_key", "path": "getResourceKey()"},
    {"name": "patient_key", "path": "subject.getReferenceKey(Patient)",
     "tag": [{"name": "required", "value": "true"}]},
    {"name": "codes", "path": "code.coding.code", "collection": True}]}]}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BMC_CACHE_DIR", str(tmp_path))
    return tmp_path / "viewdef"


def test_a_cached_view_equals_the_compiled_one(cache_dir):
    first = compile_view(VIEW)
    assert len(list(cache_dir.glob("*.json"))) == 1
    assert cache.load(VIEW) == first
    assert compile_view(VIEW) == first


def test_another_view_gets_another_entry(cache_dir):
    compile_view(VIEW)
    other = json.loads(json.dumps(VIEW))
    other["select"][0]["column"][2]["path"] = "code.coding.system"
    assert "system" in json.dumps(compile_view(other).structure)
    assert len(list(cache_dir.glob("*.json"))) == 2


def test_an_unreadable_entry_is_compiled_again(cache_dir):
    want = compile_view(VIEW)
    (entry,) = cache_dir.glob("*.json")
    entry.write_text("{not json")
    assert cache.load(VIEW) is None
    assert compile_view(VIEW) == want


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BMC_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    compile_view(VIEW)
    assert not list(tmp_path.rglob("*.json"))


def test_a_warm_process_does_not_import_the_fhir_models(cache_dir):
    code = ("import sys; from etl.declared import compiled_views; "
            "compiled_views(); print(any(m.startswith('fhir.resources') for m in sys.modules))")
    env = {**os.environ, "BMC_CACHE_DIR": str(cache_dir.parent)}
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.strip() for _ in range(2)]
    assert runs == ["True", "False"]
