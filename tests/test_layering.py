"""Layering (docs/api.md, the house rules): the formulary imports no dask/xarray/zarr; the readers of a
store (query, maps, stored, select, top, best, report, infer) never import the executor or the planner;
no library module imports the command line; only the command line prints. Imports are checked in fresh
interpreters."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cusweep"
READERS = ["cusweep.query", "cusweep.maps", "cusweep.stored", "cusweep.select", "cusweep.top",
           "cusweep.display", "cusweep.best", "cusweep.report", "cusweep.infer"]


def _loaded_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(out.stdout.split())


def _library_modules() -> list[str]:
    mods = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1 and parts[1] == "cli":
            continue
        mods.append(".".join(parts))
    return mods


def test_formulary_loads_no_dask_xarray_zarr():
    mods = _loaded_after("import cusweep.formulary")
    assert not {m for m in mods if m.split(".")[0] in {"dask", "distributed", "xarray", "zarr"}}


def test_model_feasibility_and_paper_load_no_dask_xarray_zarr():
    mods = _loaded_after("import cusweep.model, cusweep.paper, cusweep.feasibility, cusweep.display")
    assert not {m for m in mods if m.split(".")[0] in {"dask", "distributed", "xarray", "zarr"}}


@pytest.mark.parametrize("module", READERS)
def test_readers_do_not_import_execute(module):
    mods = _loaded_after(f"import {module}")
    assert "cusweep.execute" not in mods and "cusweep.plan" not in mods


def test_no_library_module_imports_the_cli():
    mods = _library_modules()
    assert "cusweep.stored" in mods and "cusweep.formulary.spectrum" in mods and "cusweep.cli" not in mods
    loaded = _loaded_after("import " + ", ".join(mods))
    assert not {m for m in loaded if m == "cusweep.cli" or m.startswith("cusweep.cli.")}


def test_only_the_cli_prints():
    """No call of print() (or a write to sys.stdout/sys.stderr) anywhere in the library."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.name}:{node.lineno}")
            if (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
                    and isinstance(node.value, ast.Name) and node.value.id == "sys"):
                offenders.append(f"{path.name}:{node.lineno} sys.{node.attr}")
    assert offenders == []
