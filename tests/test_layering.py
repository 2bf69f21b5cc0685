"""Layering (design.md §1): the formulary imports no dask/xarray/zarr; query and maps never import
execute or plan. Checked in fresh interpreters."""

import subprocess
import sys

import pytest


def _loaded_after(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(out.stdout.split())


def test_formulary_loads_no_dask_xarray_zarr():
    mods = _loaded_after("import cusweep.formulary")
    assert not {m for m in mods if m.split(".")[0] in {"dask", "distributed", "xarray", "zarr"}}


def test_model_and_paper_load_no_dask_xarray_zarr():
    mods = _loaded_after("import cusweep.model, cusweep.paper")
    assert not {m for m in mods if m.split(".")[0] in {"dask", "distributed", "xarray", "zarr"}}


@pytest.mark.parametrize("module", ["cusweep.query", "cusweep.maps"])
def test_query_and_maps_do_not_import_execute(module):
    mods = _loaded_after(f"import {module}")
    assert "cusweep.execute" not in mods and "cusweep.plan" not in mods
