"""cusweep: design-space sweeps of coherent X-ray crystalline-undulator radiation from an FEL-modulated
positron bunch (arXiv:2412.10205), on Dask, into labelled Zarr stores.

>>> import cusweep                                                      # doctest: +SKIP
>>> summary = cusweep.run_sweep("sweeps/paper_sec5.toml", "sec5.zarr")  # doctest: +SKIP
>>> sweep = cusweep.open("sec5.zarr")                                   # doctest: +SKIP
>>> sweep.top("feasible", by="n_coh", n=5)                              # doctest: +SKIP
>>> sweep.best(by="n_coh", facility="lcls").text()                      # doctest: +SKIP

Heavy dependencies (dask, distributed, xarray, zarr) load only when a function that needs them is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CusweepError,
    NoFeasibleDesign,
    NotAStoreError,
    PhysicsWarning,
    QueryError,
    SelectionError,
    SpecError,
    StoreError,
)

if TYPE_CHECKING:
    import os

    import xarray as xr

    from .execute import RunSummary
    from .infer import Design, Inference
    from .plan import Plan
    from .spec import SweepSpec
    from .stored import StoredSweep

__version__ = "0.1.0"

__all__ = [
    "CusweepError",
    "NoFeasibleDesign",
    "NotAStoreError",
    "PhysicsWarning",
    "QueryError",
    "SelectionError",
    "SpecError",
    "StoreError",
    "StoredSweep",
    "__version__",
    "infer_b",
    "load_spec",
    "make_plan",
    "open",
    "query",
    "run_sweep",
]


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Load and validate a sweep file (``cusweep.spec.load``); SpecError names the key and value."""
    from .spec import load

    return load(path)


def make_plan(spec: SweepSpec) -> Plan:
    """The Plan of a SweepSpec (``cusweep.plan.make_plan``); ``.to_dataset()`` is the lazy sweep."""
    from .plan import make_plan as _make_plan

    return _make_plan(spec)


def run_sweep(spec_or_path: Any, store: str, client: Any = None, **kwargs: Any) -> RunSummary:
    """Compute a sweep into a store, resuming an unfinished one (``cusweep.execute.run_sweep``)."""
    from .execute import run_sweep as _run

    return _run(spec_or_path, store, client, **kwargs)


def open(path: str | os.PathLike[str]) -> StoredSweep:  # noqa: A001  (the contract's name: cusweep.open)
    """Open a written store: a ``StoredSweep`` (``sweep.ds`` is the lazy ``xarray.Dataset``)."""
    from .stored import StoredSweep

    return StoredSweep(str(path))


def query(ds: xr.Dataset | StoredSweep, expr: str) -> xr.DataArray:
    """Boolean mask (lazy xarray.DataArray) of the grid points where ``expr`` holds."""
    from .query import query as _query
    from .stored import StoredSweep

    return _query(ds.ds if isinstance(ds, StoredSweep) else ds, expr)


def infer_b(measured: float | None = None, *, gain: float | None = None, sweep: Any = None,
            store: Any = None, at: Any = (), error: float = 0.0,
            rel_errors: dict[str, float] | None = None, design: Design | None = None) -> Inference:
    """The modulation depth b (with its 1-sigma) from a measured coherent photon number (``measured``) or
    gain (``gain``) at a design point: ``design``, or one picked from a sweep file (``sweep``, a path or
    SweepSpec), a store (``store``, a path or StoredSweep) or ``at`` alone (``cusweep.infer``)."""
    from . import infer

    if design is None:
        if sweep is not None and store is not None:
            raise SpecError("infer_b: give the design point with one of sweep, store or at, not both sweep "
                            "and store")
        if sweep is not None:
            from .spec import SweepSpec, load

            design = infer.design_from_spec(sweep if isinstance(sweep, SweepSpec) else load(sweep), at)
        elif store is not None:
            ds = store.ds if hasattr(store, "ds") else open(store).ds
            design = infer.design_from_store(ds, at)
        elif at:
            design = infer.design_from_flags(list(at))
        else:
            raise SpecError("infer_b: give the design point: sweep=PATH, store=PATH with at=..., or at=[...]")
    return infer.infer_b(design, measured=measured, gain=gain, error=error, rel_errors=rel_errors)


def __getattr__(name: str) -> Any:
    if name == "StoredSweep":
        from .stored import StoredSweep

        return StoredSweep
    raise AttributeError(f"module 'cusweep' has no attribute {name!r}")
