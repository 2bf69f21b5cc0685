"""cusweep: design-space sweeps of coherent X-ray crystalline-undulator radiation from an FEL-modulated
positron bunch (arXiv:2412.10205), on Dask, into labelled Zarr stores.

Heavy dependencies (dask, distributed, xarray, zarr) load only when a function that needs them is called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_spec", "make_plan", "open", "query", "run_sweep"]


def load_spec(path: Any) -> Any:
    """Load and validate a sweep file (see ``cusweep.spec.load``)."""
    from .spec import load

    return load(path)


def make_plan(spec: Any) -> Any:
    """The Plan of a SweepSpec (see ``cusweep.plan.make_plan``); ``.to_dataset()`` is the lazy sweep."""
    from .plan import make_plan as _make_plan

    return _make_plan(spec)


def run_sweep(spec_or_path: Any, store: str, client: Any = None, **kwargs: Any) -> Any:
    """Compute a sweep into a store (see ``cusweep.execute.run_sweep``)."""
    from .execute import run_sweep as _run

    return _run(spec_or_path, store, client, **kwargs)


def open(path: str) -> Any:  # noqa: A001  (the contract's name: cusweep.open(path))
    """Open a store lazily as an ``xarray.Dataset``."""
    from .store import open_store

    return open_store(path)


def query(ds: Any, expr: str) -> Any:
    """Boolean mask (lazy xarray.DataArray) of the grid points where ``expr`` holds."""
    from .query import query as _query

    return _query(ds, expr)
