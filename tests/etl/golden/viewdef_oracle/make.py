"""Regenerate the oracle's compiled views (the golden files beside this script).

The oracle is the list-of-STRUCTs compiler of commit 6ab199e (``etl/viewdef/compiler.py``),
run with the FHIRPath translation of commit 788170c, the last commit whose ``etl/viewdef``
it imports unchanged. Both come from git history, so this script needs a full clone:

    git archive 788170c etl | tar -x -C /tmp/oracle-tree
    PYTHONPATH=/tmp/oracle-tree python tests/etl/golden/viewdef_oracle/make.py

It writes one ``<name>.json`` per declared view (``etl/views/``) and per small shape of
``tests/etl/test_viewdef_shapes.py``: the oracle's ``resource``, ``structure`` and ``sql``.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
ORACLE_COMMIT = "6ab199e"


def oracle_compile_view():
    source = subprocess.run(["git", "show", f"{ORACLE_COMMIT}:etl/viewdef/compiler.py"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("bmc_oracle_compiler", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{ORACLE_COMMIT}:compiler.py", "exec"), module.__dict__)
    return module.compile_view


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "etl"))
    from test_viewdef_shapes import SHAPES  # the small views, declared once in the test

    compile_view = oracle_compile_view()
    views = {f"view-{p.stem}": json.loads(p.read_text())
             for p in sorted((ROOT / "etl" / "views").glob("*.json"))}
    views |= {"shape-" + name.replace(" ", "-"): {"resource": "Patient", **body}
              for name, body in SHAPES.items()}
    for name, view in views.items():
        compiled = compile_view(view)
        (HERE / f"{name}.json").write_text(json.dumps(
            {"resource": compiled.resource, "structure": compiled.structure,
             "sql": compiled.sql}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
