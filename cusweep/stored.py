"""``StoredSweep``: the one object for a written store (``cusweep.open(path)``).

It opens the store once (one local-or-remote decision, one lazy ``xarray.Dataset``), rebuilds the sweep
and the model setup by one route (the sweep file text kept in the store's attrs, parsed by
``cusweep.spec`` and turned into a ``model.Setup`` exactly as a run does), holds the ledger (status,
verify, repair, the run lock), selects grid points by ``at=`` values or a facility preset, evaluates the
model at a point or on a slice, and answers the questions users ask of a store: ``query``, ``count``,
``top``, ``best``, ``map``, ``report``.

>>> sweep = cusweep.open("sec5.zarr")                        # doctest: +SKIP
>>> sweep.status().text()                                    # doctest: +SKIP
'sec5.zarr: 12/12 blocks done, complete'
>>> sweep.top("feasible", by="n_coh", n=5)                    # doctest: +SKIP

Reading never imports the executor (``cusweep.execute``) or the planner; ``status``, ``verify`` and
``repair`` load the plan (the block layout) when called.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from . import store
from .errors import NotAStoreError, StoreError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

    from .best import BestResult, PerResult
    from .model import Setup
    from .pareto import ParetoResult
    from .plan import Plan
    from .query import BlockPlan
    from .refine import RefineResult
    from .report import Report
    from .robust import RobustResult
    from .skeleton import Skeleton
    from .spec import SweepSpec

__all__ = ["Selection", "Status", "StoredSweep", "open", "setup_of", "spec_of"]


# ------------------------------------------------------------------------------------------ one route


@functools.lru_cache(maxsize=8)
def _spec_from_text(text: str, source: str) -> SweepSpec:
    from .spec import loads

    return loads(text, source=source)


def spec_of(ds: xr.Dataset, source: str = "the store") -> SweepSpec:
    """The validated sweep a store was made from: its sweep file text (group attr ``sweep``), parsed again.

    Every reader rebuilds the sweep this way (and the model setup from it, ``setup_of``), as a run does
    from the file, so inline crystals, facility presets and models are those of the run."""
    text = ds.attrs.get("sweep")
    if not text:
        raise StoreError(f"{source}: the store's attrs hold no sweep text (not a cusweep store, or made by a "
                         "cusweep older than 0.1); recompute it with `cusweep run`")
    return _spec_from_text(str(text), f"{source} (stored sweep)")


@functools.lru_cache(maxsize=8)
def _setup_from_text(text: str, source: str) -> Setup:
    from .model import Setup, attenuation_tables
    from .quantities import ABSORPTION_OUTPUTS

    spec = _spec_from_text(text, source)
    setup = Setup.from_spec(spec)
    if not setup.attenuation and any(n in spec.outputs for n in ABSORPTION_OUTPUTS):
        setup = dataclasses.replace(setup, attenuation=attenuation_tables(spec))
    return setup


def setup_of(ds: xr.Dataset, source: str = "the store") -> Setup:
    """The model ``Setup`` of the sweep a store (or a plan's lazy dataset) holds: ``Setup.from_spec`` of
    the stored sweep, the route a run takes (cached per sweep text)."""
    spec_of(ds, source)  # a clear error when there is no sweep text
    return _setup_from_text(str(ds.attrs["sweep"]), f"{source} (stored sweep)")


def evaluate_point(setup: Setup, point: Mapping[str, Any], outputs: Sequence[str]) -> dict[str, Any]:
    """The model's outputs at one design point (dim -> value in store units, every dim of the setup), as
    Python scalars (bool or float)."""
    from .model import evaluate

    coords = {d: np.asarray([point[d]]) for d in setup.dims}
    values = evaluate(setup, coords, tuple(outputs))
    out: dict[str, Any] = {}
    for k, v in values.items():
        x = np.asarray(v).reshape(-1)[0]
        out[k] = bool(x) if np.asarray(v).dtype == bool else float(x)
    return out


# ------------------------------------------------------------------------------------------ results


@dataclass
class Status:
    """Blocks done of a store, and damaged blocks (chunk files missing or, after ``verify``, checksums
    that do not match)."""

    path: str
    done: int
    total: int
    damaged: list[int] = field(default_factory=list)
    verified: bool = False

    @property
    def complete(self) -> bool:
        return self.done == self.total and not self.damaged

    def text(self) -> str:
        state = "complete" if self.done == self.total else \
            "incomplete (rerun `cusweep run` with the same sweep to resume)"
        lines = [f"{self.path}: {self.done}/{self.total} blocks done, {state}"]
        fix = f"run `cusweep run SWEEP --store {self.path} --repair`"
        if self.damaged and self.verified:
            lines.append(f"{self.path}: {len(self.damaged)} block(s) fail their checksum: "
                         f"{self.damaged[:20]}; {fix}")
        elif self.damaged:
            lines.append(f"{self.path}: damaged: {len(self.damaged)} done block(s) have chunk files missing: "
                         f"{self.damaged[:20]}; {fix}")
        elif self.verified:
            lines.append(f"{self.path}: every done block matches its checksum")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.path, "done": self.done, "total": self.total, "complete": self.complete,
                "damaged": list(self.damaged), "verified": self.verified}


@dataclass
class Selection:
    """Grid indices chosen by ``at=`` values and/or a facility preset, with notes on what was defaulted or
    approximated."""

    index: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def values(self, ds: xr.Dataset) -> dict[str, Any]:
        from .select import scalar

        return {d: scalar(np.asarray(ds[d].values)[i]) for d, i in self.index.items()}


# ------------------------------------------------------------------------------------------ the object


class StoredSweep:
    """A sweep written to a Zarr store: the lazy dataset with everything that belongs to it.

    Attributes
    ----------
    path : the store's path or URL
    local : True for a directory on this machine, False for an fsspec URL (s3://...)

    ``ds`` is the lazy ``xarray.Dataset`` of the sweep (store units; ``units`` in each variable's attrs).
    """

    def __init__(self, path: str | Any):
        self.path = str(path)
        self.local = store.is_local(self.path)
        if not store.exists(self.path):
            raise NotAStoreError(
                f"STORE: {self.path} is not a cusweep store (no Zarr group there); run `cusweep run "
                f"SWEEP.toml --store {self.path}` first"
            )

    def __repr__(self) -> str:
        dims = ", ".join(f"{d}={n}" for d, n in self.ds.sizes.items())
        return f"StoredSweep({self.path!r}, dims=({dims}), variables={len(self.ds.data_vars)})"

    @functools.cached_property
    def ds(self) -> xr.Dataset:
        """The lazy ``xarray.Dataset`` of the sweep (opened on first use; StoreError when an array of the
        store was deleted)."""
        return store.open_store(self.path)

    @functools.cached_property
    def skeleton(self) -> Skeleton:
        """The store's coordinates and the names, dims, dtypes and attrs of its variables, read with zarr
        alone (:func:`skeleton`): enough to resolve names and units and to evaluate coordinate-only terms
        of a query, without Dask and without reading a chunk of data."""
        return skeleton(self.path)

    @functools.cached_property
    def attrs(self) -> dict[str, Any]:
        """The store's group attributes (read once, without opening the dataset)."""
        return store.group_attrs(self.path)

    # -- the sweep, its model and its layout
    @functools.cached_property
    def spec(self) -> SweepSpec:
        """The validated sweep the store was made from (from its stored sweep text)."""
        text = self.attrs.get("sweep")
        if not text:
            raise StoreError(f"{self.path}: the store's attrs hold no sweep text (not a cusweep store, or "
                             "made by a cusweep older than 0.1); recompute it with `cusweep run`")
        return _spec_from_text(str(text), f"{self.path} (stored sweep)")

    @functools.cached_property
    def setup(self) -> Setup:
        """The model setup of the sweep (``Setup.from_spec`` of ``spec``, as a run builds it)."""
        self.spec  # noqa: B018  (a clear error when there is no sweep text)
        return _setup_from_text(str(self.attrs["sweep"]), f"{self.path} (stored sweep)")

    @functools.cached_property
    def plan(self) -> Plan:
        """The plan of the stored sweep on the store's block layout (StoreError when the stored sweep no
        longer gives the stored fingerprint, e.g. after a cusweep upgrade that changed the model)."""
        return plan_of(self.path, self.spec, self.attrs.get("fingerprint"))

    @property
    def name(self) -> str:
        return str(self.attrs.get("name", self.spec.name))

    @property
    def dims(self) -> tuple[str, ...]:
        from .query import dim_order

        return dim_order(self.ds)

    # -- display units
    def units(self, name: str, *, si: bool = False) -> str:
        """The unit ``name`` is shown in (``cusweep.display``; ``si``: its store units); "" if none."""
        from .display import display_unit
        from .query import resolve, units_of

        name = resolve(self.ds, name)
        return display_unit(name, units_of(self.ds, name), si=si)

    def format(self, name: str, value: Any, *, si: bool = False) -> str:
        """A store value of ``name`` for people, in its display unit: ``14 µm``."""
        from .display import format_value
        from .query import resolve, units_of

        name = resolve(self.ds, name)
        return format_value(name, value, plain=False, si=si, units=units_of(self.ds, name))

    # -- ledger
    def done(self) -> np.ndarray:
        """The completion ledger: one bool per block."""
        return store.done_mask(self.path)

    @property
    def complete(self) -> bool:
        done = self.done()
        return bool(done.all())

    def status(self, *, check_files: bool = True) -> Status:
        """Blocks done / total; with ``check_files`` (local stores) also the done blocks whose chunk files
        are missing."""
        done = self.done()
        n = int(done.sum())
        damaged = store.missing_chunks(self.path, self.plan) if (check_files and n) else []
        return Status(self.path, n, int(done.size), list(damaged))

    def verify(self) -> Status:
        """Recompute every done block's checksum: the status with the damaged blocks listed."""
        from .execute import verify

        done = self.done()
        return Status(self.path, int(done.sum()), int(done.size), list(verify(self.path)), verified=True)

    def repair(self) -> list[int]:
        """Clear the ledger of damaged blocks (under the run lock) so the next run recomputes them."""
        from .execute import repair

        with self.lock():
            return list(repair(self.path))

    def run_log(self) -> list[dict[str, Any]]:
        """The store's run log: one record per run, oldest first (start, end, host, user, versions, workers,
        shard, blocks_computed, exit)."""
        from .shards import run_log

        return run_log(self.path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's run lock (StoreError at once when a run holds it)."""
        with store.lock(self.path):
            yield

    # -- selection and the model
    def select(self, at: Mapping[str, Any] | Sequence[str] | None = None, facility: str | None = None
               ) -> Selection:
        """Grid indices of ``at`` values (nearest grid value, ``{"energy": "13.6 GeV"}`` or
        ``["energy=13.6 GeV"]``) and of a facility preset (energy, n_positrons, sigma_z)."""
        from .errors import SelectionError
        from .select import facility_at, parse_at

        index: dict[str, int] = {}
        notes: list[str] = []
        if facility:
            index, notes = facility_at(self.ds, facility)
        given = parse_at(self.ds, at or {})
        clash = sorted(set(given) & set(index))
        if clash:
            raise SelectionError(f"at {clash[0]}: facility {facility} fixes {clash[0]} already; drop one")
        index.update(given)
        return Selection(index, notes)

    def evaluate(self, point: Mapping[str, Any], outputs: Sequence[str]) -> dict[str, Any]:
        """The model at one design point (dim -> value in store units; every dim of the store)."""
        return evaluate_point(self.setup, point, outputs)

    def evaluate_on(self, coords: Mapping[str, Any], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """The model on a sub-grid (dim -> coordinate array, every dim of the store), each output on its
        natural dims broadcast over all of them, in the store's dim order."""
        from .model import evaluate

        arrays = {d: np.asarray(coords[d]) for d in self.setup.dims}
        shape = tuple(len(arrays[d]) for d in self.setup.dims)
        values = evaluate(self.setup, arrays, tuple(outputs))
        out = {}
        for k, v in values.items():
            keep = self.setup.natural_dims(k)
            own = [n if d in keep else 1 for d, n in zip(self.setup.dims, shape, strict=True)]
            out[k] = np.broadcast_to(np.asarray(v).reshape(own), shape)
        return out

    # -- questions
    def query(self, expr: str) -> xr.DataArray:
        """Lazy boolean mask of the grid points where ``expr`` holds (``cusweep.query``)."""
        from .query import query

        return query(self.ds, expr)

    def count(self, expr: str) -> int:
        """Number of grid points where ``expr`` holds (block by block: :meth:`block_count`)."""
        return self.block_count(expr)

    @functools.cached_property
    def _chunks(self) -> dict[str, tuple[int, ...]]:
        """dim -> the stored chunk sizes along it (from the data variables' chunk shapes)."""
        import zarr

        root = zarr.open_group(store._store_arg(self.path), mode="r")
        out: dict[str, tuple[int, ...]] = {}
        for name, var in self.skeleton.data_vars.items():
            if not var.dims:
                continue
            array: Any = root[name]
            for d, n, c in zip(var.dims, var.shape, array.chunks, strict=True):
                out.setdefault(d, tuple(min(c, n - o) for o in range(0, n, c)))
        return out

    def read_block(self) -> Any:
        """A reader for :func:`cusweep.query.count_blocks`: a variable at sorted index arrays (one per dim,
        within one stored chunk each), read with zarr into numpy (a contiguous run as a slice)."""
        import zarr

        root = zarr.open_group(store._store_arg(self.path), mode="r")
        arrays: dict[str, Any] = {}

        def read(name: str, index: tuple[np.ndarray, ...]) -> np.ndarray:
            if name not in arrays:
                arrays[name] = root[name]
            spans = tuple(slice(int(i[0]), int(i[-1]) + 1) if i.size else slice(0, 0) for i in index)
            values = np.asarray(arrays[name][spans])
            for axis, (i, span) in enumerate(zip(index, spans, strict=True)):
                if i.size != span.stop - span.start:  # not contiguous: the allowed indices of the span
                    values = np.take(values, i - span.start, axis=axis)
            return values

        return read

    @functools.cached_property
    def _reader(self) -> Any:
        return self.read_block()

    @functools.lru_cache(maxsize=8)  # noqa: B019  (one plan per expression and object)
    def _plan(self, expr: str, also: tuple[str, ...] = (), at: _At = ()) -> BlockPlan | None:
        from .query import plan_blocks

        return plan_blocks(self.skeleton, expr, self._chunks, also=also, at=dict(at))

    def block_count(self, expr: str, *, workers: int | None = None, processes: bool = False,
                    at: Mapping[str, Any] | None = None) -> int:
        """:meth:`count` block by block: zarr into numpy on ``workers`` threads (default: the usable CPUs),
        the query's coordinate-only terms applied first (none of the store is read when they allow no grid
        value), at most a few blocks in memory. ``processes``: on a pool of ``workers`` processes
        (forkserver) instead, for big stores of small blocks, where zarr's own Python per chunk would make
        the threads wait for each other (the command line's choice; a library call from a script without
        a main guard keeps threads). ``at``: dim -> the grid index (or indices) the points must have."""
        key = _at_key(at)
        plan = self._plan(expr, (), key)
        if plan is None:
            return 0
        return sum(_map(_CountTask(self.path, expr, key), plan.blocks, workers, processes)) * plan.mult

    def block_top(self, expr: str, by: str, n: int, *, ascending: bool = False, workers: int | None = None,
                  processes: bool = False, at: Mapping[str, Any] | None = None, also: Sequence[str] = (),
                  extra: Any = None) -> dict[str, np.ndarray]:
        """Full-grid indices of the ``n`` best points (``cusweep.top.top_points``), block by block as
        :meth:`block_count` reads them. ``at`` as in :meth:`block_count`; ``extra``: a further condition on
        each block's values (``cusweep.top.top_one``; picklable for ``processes``) reading the variables
        ``also``."""
        from .errors import QueryError
        from .top import Bound, _no_points, merge_top, rank_variable

        if n < 1:
            raise QueryError(f"top: n={n}: give a positive number of points")
        meta: Any = self.skeleton
        by = rank_variable(meta, by)
        key = _at_key(at)
        names = tuple(dict.fromkeys((by, *also)))
        plan = self._plan(expr, names, key)
        if plan is None:
            return _no_points(meta)
        task = _TopTask(self.path, expr, by, n, ascending, Bound(n), names, key, extra)
        return merge_top(meta, plan, _map(task, plan.blocks, workers, processes), n, ascending)

    def list_points(self, expr: str, limit: int | None, *, workers: int | None = None
                    ) -> tuple[dict[str, np.ndarray], bool]:
        """``cusweep.top.list_points`` block by block (zarr into numpy on ``workers`` threads, default the
        usable CPUs): full-grid indices of the first ``limit`` (None: all) points where ``expr`` holds, and
        whether more exist."""
        from .cpus import usable_cpus
        from .top import list_blocks

        return list_blocks(self.skeleton, expr, self._plan(expr), self._reader, limit,
                           workers=usable_cpus() if workers is None else workers)

    def iter_points(self, expr: str, *, batch: int | None = None, workers: int | None = None
                    ) -> Iterator[dict[str, np.ndarray]]:
        """``cusweep.top.iter_points`` block by block: every point where ``expr`` holds, as batches of
        full-grid index arrays (bounded memory)."""
        from .cpus import usable_cpus
        from .top import ROWS_PER_BATCH, iter_blocks

        return iter_blocks(self.skeleton, expr, self._plan(expr), self._reader,
                           batch=ROWS_PER_BATCH if batch is None else batch,
                           workers=usable_cpus() if workers is None else workers)

    def values_at(self, points: Mapping[str, np.ndarray], columns: Sequence[str]) -> dict[str, np.ndarray]:
        """``cusweep.top.values_at`` read with zarr alone (coordinates from :attr:`skeleton`, variables by
        zarr's coordinate selection): the values of ``columns`` at the grid points ``points`` (dim -> index
        array), without opening the xarray dataset."""
        import zarr

        meta: Any = self.skeleton
        n = len(next(iter(points.values()))) if points else 0
        root = zarr.open_group(store._store_arg(self.path), mode="r")
        out: dict[str, np.ndarray] = {}
        for c in columns:
            var = meta[c]
            if n == 0:
                out[c] = np.empty(0, dtype=var.dtype)
            elif c in meta.coords:
                out[c] = np.asarray(var.values)[points[c]]
            elif not var.dims:
                whole: Any = root[c]
                out[c] = np.repeat(np.asarray(whole[...]), n)
            else:
                array: Any = root[c]
                out[c] = np.asarray(array.vindex[tuple(np.asarray(points[d]) for d in var.dims)])
        return out

    def top(self, expr: str = "feasible", by: str = "n_coh", n: int = 10, *, ascending: bool = False,
            columns: Sequence[str] = (), si: bool = False) -> pd.DataFrame:
        """The ``n`` grid points where ``expr`` holds with the largest (``ascending``: smallest) finite
        ``by``, best first, as a pandas DataFrame: every dim, then the variables named in ``expr``, ``by``
        and ``columns``, in display units (µm, Å, GeV, keV; ``si=True``: store units), the unit in each
        column's name (``period [µm]``)."""
        import pandas as pd

        from .display import header, to_display
        from .query import units_of
        from .top import columns_for, records

        cols = columns_for(self.ds, expr, by, columns)
        rows = records(self.ds, self.block_top(expr, by, n, ascending=ascending), cols)
        data = {header(c, units_of(self.ds, c), si=si): [to_display(c, r[c], si=si) for r in rows]
                for c in cols}
        return pd.DataFrame(data)

    @overload
    def best(self, by: str = ..., *, where: str | None = ..., facility: str | None = ...,
             per: None = ..., processes: bool = ...) -> BestResult: ...

    @overload
    def best(self, by: str = ..., *, where: str | None = ..., facility: str | None = ...,
             per: str, processes: bool = ...) -> PerResult: ...

    def best(self, by: str = "n_coh", *, where: str | None = None, facility: str | None = None,
             per: str | None = None, processes: bool = False) -> BestResult | PerResult:
        """The feasible design maximising ``by`` (and satisfying ``where``), on the grid and refined
        off-grid (``cusweep.best``); with ``per`` (a dim, or "facility"), one for every value of it
        (``cusweep.best.best_per``: a ``PerResult``). The grid is read block by block (zarr into numpy)
        on threads, or with ``processes`` on a process pool (as :meth:`block_count`)."""
        from .best import best, best_per

        if per is not None:
            return best_per(self, by, per, where=where, facility=facility, setup=self.setup,
                            processes=processes)
        return best(self, by, where=where, facility=facility, setup=self.setup, processes=processes)

    def refine(self, by: str, output: str, *, where: str | None = None, facility: str | None = None,
               zoom: float = 4, extend: bool = False, client: Any = None, **run: Any) -> RefineResult:
        """Zoom around (or extend past the grid edge of) the best ``by`` in a child sweep written beside
        ``output`` (``CHILD.toml``), computed into ``output``, its best answered (``cusweep.refine``)."""
        from .refine import refine

        return refine(self.path, by, output, where=where, facility=facility, zoom=zoom, extend=extend,
                      client=client, **run)

    def pareto(self, objectives: Sequence[tuple[str, str]], *, where: str | None = "feasible"
               ) -> ParetoResult:
        """The non-dominated grid points where ``where`` holds for ``objectives`` (``(name, "max" |
        "min")``, at least two), chunk by chunk (``cusweep.pareto``)."""
        from .pareto import pareto

        return pareto(self.ds, objectives, where=where)

    def map(self, x: str = "period", y: str = "amplitude", var: str = "n_coh",
            at: Mapping[str, Any] | Sequence[str] | None = None, facility: str | None = None,
            **style: Any) -> Figure:
        """The feasibility map of ``var`` over ``x`` and ``y`` (``cusweep.maps.map_figure``; ``style``:
        its keywords vmin, vmax, clip, marks, contours); what was defaulted is in ``fig.cusweep["notes"]``."""
        from .maps import map_figure

        notes: list[str] = []
        fig = map_figure(self.ds, x, y, var, at=at, facility=facility, notes=notes, **style)
        fig.cusweep["notes"] = notes  # type: ignore[attr-defined]
        return fig

    def robust(self, by: str = "photons_coh", x: str = "period", y: str = "amplitude",
               vary: Sequence[str] | str = ("potential_depth",), *,
               at: Mapping[str, Any] | Sequence[str] | None = None, facility: str | None = None,
               samples: int = 200, seed: int = 0, max_elements: int | None = None) -> RobustResult:
        """P(feasible) and the 5/50/95 % quantiles of ``by`` over the ``x``-``y`` slice under uncertain
        inputs ``vary`` (``["potential_depth=22..25eV", "sigma_z=10%"]``), by Monte Carlo on the model
        (``cusweep.robust.robust``; seeded, memory bounded by ``max_elements`` sample x design values)."""
        from .robust import MAX_ELEMENTS, robust

        return robust(self.ds, self.setup, by, x, y, vary, at=at, facility=facility, samples=samples,
                      seed=seed, max_elements=MAX_ELEMENTS if max_elements is None else max_elements)

    def report(self, outdir: str, var: str | None = None, *, fmt: str = "png") -> Report:
        """Per-facility maps and a summary table in ``outdir`` (``cusweep.report``), best by ``var``
        (default: ``photons_coh`` where the store holds it, else ``n_coh``)."""
        from .report import report

        return report(self, outdir, var, fmt=fmt)


@functools.lru_cache(maxsize=4)
def _opened(path: str) -> StoredSweep:
    """The StoredSweep of ``path`` in this process (block tasks on a process pool open the store once)."""
    return StoredSweep(path)


#: grid indices a block plan is restricted to, hashable: ((dim, (index, ...)), ...)
_At = tuple[tuple[str, tuple[int, ...]], ...]


def _at_key(at: Mapping[str, Any] | None) -> _At:
    """``at`` (dim -> an index or indices) as a hashable plan key."""
    return tuple(sorted((str(d), tuple(int(i) for i in np.atleast_1d(np.asarray(v, dtype=np.int64))))
                        for d, v in (at or {}).items()))


@dataclass(frozen=True)
class _CountTask:
    """Count one block where the query holds (picklable: runs on threads or on a process pool)."""

    path: str
    expr: str
    at: _At = ()

    def __call__(self, block: Mapping[str, np.ndarray]) -> int:
        from .query import block_mask, block_values

        s = _opened(self.path)
        plan = s._plan(self.expr, (), self.at)
        assert plan is not None
        values = block_values(s.skeleton, plan, block, s._reader)
        return int(np.count_nonzero(block_mask(s.skeleton, self.expr, plan, values)))


@dataclass(frozen=True)
class _TopTask:
    """The k best points of one block (``cusweep.top.top_one``; picklable like ``_CountTask``)."""

    path: str
    expr: str
    by: str
    k: int
    ascending: bool
    bound: Any = None  # a cusweep.top.Bound shared by the blocks of one thread pool or one pickled batch
    names: tuple[str, ...] = ()  # the plan's extra names (by first; default: by)
    at: _At = ()
    extra: Any = None  # a picklable condition on the block's values (cusweep.top.top_one)

    def __call__(self, block: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        from .top import top_one

        s = _opened(self.path)
        plan = s._plan(self.expr, self.names or (self.by,), self.at)
        assert plan is not None
        return top_one(s.skeleton, self.expr, plan, block, s._reader, self.by, self.k, self.ascending,
                       self.bound, self.extra)


def _map(task: Any, blocks: Sequence[Any], workers: int | None, processes: bool) -> list[Any]:
    """``[task(b) for b in blocks]`` on ``workers`` threads (``cusweep.query.map_blocks``) or processes."""
    from .cpus import usable_cpus
    from .query import map_blocks

    workers = usable_cpus() if workers is None else workers
    if not processes or workers <= 1 or len(blocks) < 2 * workers:
        return map_blocks(task, blocks, workers)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        return list(pool.map(task, blocks, chunksize=max(1, len(blocks) // (workers * 16))))


def skeleton(path: str) -> Skeleton:
    """The store at ``path`` as a ``cusweep.skeleton.Skeleton``: its coordinates (read) and, for every data
    variable, its dims, shape, dtype and attrs (no chunk read). Read from the consolidated metadata with
    zarr alone (neither xarray nor Dask is imported), with the checks of ``store.open_store``: a template
    cut short, a deleted array and altered coordinates are refused (StoreError). Enough for names, units,
    dims and coordinate-only terms (``cusweep.query.prune``)."""
    import os

    import zarr

    from .skeleton import Axis, Placeholder, Skeleton

    if not store.exists(path):
        raise NotAStoreError(
            f"STORE: {path} is not a cusweep store (no Zarr group there); "
            "run `cusweep run SWEEP.toml --store PATH` first"
        )
    root = zarr.open_group(store._store_arg(path), mode="r")
    if store.META_GROUP in root.keys() and not store.template_complete(path):
        store.open_store(path)  # raises its StoreError (a template cut short)
    arrays = {str(k): a for k, a in root.arrays() if str(k) not in store.BOOKKEEPING}
    if store.is_local(path):
        top = store._local(path)
        gone = [n for n in arrays if not os.path.exists(os.path.join(top, n, "zarr.json"))]
        if gone:
            raise StoreError(
                f"{path}: the array(s) {', '.join(gone)} are missing (deleted from the store); the "
                "store is damaged: rerun `cusweep run SWEEP.toml --store STORE --overwrite`"
            )

    def dims_of(a: Any) -> tuple[str, ...]:
        return tuple(str(d) for d in (a.metadata.dimension_names or ()))

    def attrs_of(a: Any) -> dict[str, Any]:
        return {k: v for k, v in a.attrs.items() if k != "_FillValue"}

    sizes: dict[str, int] = {}
    for a in arrays.values():
        for d, n in zip(dims_of(a), a.shape, strict=True):
            sizes.setdefault(d, int(n))
    coords = {d: Axis(arrays[d][...], d, attrs_of(arrays[d]))
              for d in sizes if d in arrays and dims_of(arrays[d]) == (d,)}
    if store.coords_altered(path, {d: v.values for d, v in coords.items()}):
        store.open_store(path)  # raises its StoreError (altered coordinates)
    data = {n: Placeholder(dims_of(a), tuple(int(x) for x in a.shape), a.dtype, attrs_of(a))
            for n, a in arrays.items() if n not in coords}
    return Skeleton(coords, data, dict(root.attrs), sizes)


def plan_of(path: str, spec: SweepSpec, fingerprint: Any) -> Plan:
    """The plan of the stored sweep ``spec`` on the block layout of the store at ``path``, with the outputs
    the store holds."""
    from .plan import make_plan

    plan = make_plan(spec)
    if fingerprint is not None and plan.fingerprint != fingerprint:
        raise StoreError(
            f"{path}: the stored sweep no longer gives the same plan (cusweep version change?); cannot verify"
        )
    held = store.stored_outputs(path, plan)
    if held != plan.outputs:  # a default sweep stored by a cusweep with fewer outputs
        plan = dataclasses.replace(plan, outputs=held, var_dims={n: plan.var_dims[n] for n in held})
    return plan.with_chunks(store.stored_chunks(path, plan))


def open(path: str | Any) -> StoredSweep:  # noqa: A001  (the contract's name: cusweep.open(path))
    """Open a written store: a ``StoredSweep`` (NotAStoreError when ``path`` holds no cusweep store)."""
    return StoredSweep(path)

