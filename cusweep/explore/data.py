"""The explorer's one door to a store: open it lazily, read one 2-D slice (strided when large), the boundary
fields on that slice (the model's feasibility margins, ``cusweep.feasibility.CONSTRAINTS``), every variable
at one grid point, and the best feasible point of a slice.

Every store access of the explorer goes through :class:`StoreView`; nothing here draws or prints.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import feasibility
from ..display import DISPLAY, format_value
from ..errors import CusweepError, SpecError
from ..photon_line import LINE_OUTPUTS
from ..query import TEXT_KINDS, dim_order, units_of

if TYPE_CHECKING:
    import xarray as xr

    from ..model import Setup

__all__ = ["CUBE_CACHE_BYTES", "CUBE_MIN_BLOCKS", "MAX_CELLS", "Check", "CubeCache", "Slice", "StoreView",
           "stride_for"]

#: a plotted axis longer than this is strided (every k-th grid value) before the slice is shipped
MAX_CELLS = 1000
#: a 2-D slice that crosses more stored blocks than this is read as slider-axis cubes (``StoreView._raw``)
CUBE_MIN_BLOCKS = 4
#: threads decoding blocks for a slice the page waits for (the background refresh uses one)
READ_THREADS = max(1, min(2, os.cpu_count() or 1))
#: model first: the stored values confirm the model's when every float is within this many units in the last
#: place of the stored dtype (numpy's vectorised loops can differ in the last bit between a block and a slice)
CHECK_ULPS = 4
#: the default bound of the slider-axis cube cache [bytes] (least recently used cubes are evicted first)
CUBE_CACHE_BYTES = 512 * 1024**2


def stride_for(n: int, max_cells: int = MAX_CELLS) -> int:
    """The stride that keeps at most ``max_cells`` of ``n`` grid values."""
    return max(1, math.ceil(n / max_cells))


class Check:
    """The store's confirmation of a slice the model answered first (``Slice.source == "model"``).

    ``state``: "pending" while the background thread reads the slice from the store, then "confirmed" (the
    stored values are the model's: bitwise, or within ``CHECK_ULPS`` and then ``bitwise`` is False),
    "differs" (``differs`` names the variables whose stored values
    are not the model's; the view never uses the model again) or "abandoned" (another slice was asked for
    before the read finished)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names  #: the variables computed by the model
        self.state = "pending"
        self.differs: list[str] = []
        self.bitwise = True  #: confirmed with every value bitwise equal (else within ``CHECK_ULPS``)
        self.done = threading.Event()  #: set when the state leaves "pending"

    def finish(self, state: str) -> None:
        self.state = state
        self.done.set()


@dataclass
class Slice:
    """A 2-D slice of one variable in display units, on the (y, x) grid (strided by ``sx``, ``sy``)."""

    var: str
    x: str
    y: str
    at: dict[str, int]  #: every other dim -> grid index
    xi: np.ndarray  #: grid indices along x of the columns
    yi: np.ndarray  #: grid indices along y of the rows
    z: np.ndarray  #: (ny, nx) float64 in display units (bool as 0/1, NaN where undefined)
    infeasible: np.ndarray | None  #: (ny, nx) bool, None when the store has no ``feasible``
    #: (ny, nx) bool: True where the design does not radiate at the facility's photon energy (the condition
    #: of ``best --facility``, ``cusweep.photon_line.on_line_mask``); None when no photon energy is asked for
    off_line: np.ndarray | None = None
    #: "store" (read from the store) or "model" (computed by cusweep's model; ``check`` confirms it)
    source: str = "store"
    check: Check | None = None
    #: the boundary fields (``StoreView.margins``) when the model computed them with the slice, else None
    margins: dict[str, np.ndarray] | None = None


class CubeCache:
    """Slider-axis cubes by key, bounded to ``max_bytes`` (least recently used evicted first; a cube larger
    than half the bound is never kept). Thread-safe: the background refresh fills it while the page reads."""

    def __init__(self, max_bytes: int = CUBE_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self._cubes: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def fits(self, nbytes: int) -> bool:
        return 2 * nbytes <= self.max_bytes

    def get(self, key: tuple[Any, ...]) -> np.ndarray | None:
        with self._lock:
            cube = self._cubes.get(key)
            if cube is not None:
                self._cubes.move_to_end(key)
            return cube

    def __contains__(self, key: tuple[Any, ...]) -> bool:
        with self._lock:
            return key in self._cubes

    def __len__(self) -> int:
        return len(self._cubes)

    def put(self, key: tuple[Any, ...], cube: np.ndarray) -> None:
        if not self.fits(cube.nbytes):
            return
        with self._lock:
            old = self._cubes.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            while self._cubes and self.nbytes + cube.nbytes > self.max_bytes:
                self.nbytes -= self._cubes.popitem(last=False)[1].nbytes
            self._cubes[key] = cube
            self.nbytes += cube.nbytes

    def clear(self) -> None:
        with self._lock:
            self._cubes.clear()
            self.nbytes = 0


@dataclass(frozen=True)
class _Plan:
    """How one (x, y) slice of one variable is read as cubes: per slider dim its block range and key."""

    name: str
    x: str
    y: str
    xi: np.ndarray
    yi: np.ndarray
    fixed: tuple[tuple[str, int], ...]  #: the variable's other dims -> grid index
    ranges: tuple[tuple[str, int, int], ...]  #: cube dims: (dim, start, stop) of the block holding the index
    keys: tuple[tuple[Any, ...], ...]  #: one cache key per cube dim


class StoreView:
    """A store opened lazily for the explorer (dims, coordinates, labels, slices, points).

    A 2-D slice that crosses more than ``cube_min_blocks`` stored blocks is read as *slider-axis cubes*:
    each block of the slice is decoded once and, for every other dim d, the slice's values over all of d
    within that block (the other dims at their indices) are kept, one (y, x, d) cube per d, in a
    :class:`CubeCache` of ``cache_bytes``. A later move of one slider is answered from memory; after it, the
    cubes of the new position are read in a background thread (one at a time, abandoned at the next read).

    *Model first*: a slice that would read blocks for cubes (its first view, a second slider moved before
    the refresh is done) is computed by cusweep's model on the slice's coordinates when the store was written
    by this cusweep version from a sweep the model reproduces (``model_note`` says why not otherwise); the
    background thread then reads the slice from the store (filling the cubes) and compares
    (:class:`Check`). When the store disagrees, ``model_refused`` says so and the model is not used again."""

    def __init__(self, path: str, cache_bytes: int = CUBE_CACHE_BYTES,
                 cube_min_blocks: int = CUBE_MIN_BLOCKS) -> None:
        from ..stored import StoredSweep

        self.path = str(path)
        self.sweep = StoredSweep(self.path)
        self.ds: xr.Dataset = self.sweep.ds
        self.dims: tuple[str, ...] = dim_order(self.ds)
        self.variables: list[str] = [str(v) for v in self.ds.data_vars if str(v) not in self.dims]
        if not self.variables:
            raise SpecError(f"STORE: {self.path} holds no variables; run `cusweep run SWEEP.toml --store "
                            "PATH`")
        self._setup: Setup | None = None
        self.setup_note = ""
        try:
            self._setup = self.sweep.setup
        except CusweepError as exc:
            self.setup_note = f"no boundary lines: {exc}"
        self._coords = {d: np.asarray(self.ds[d].values) for d in self.dims}
        self.cubes = CubeCache(cache_bytes)
        self.cube_min_blocks = int(cube_min_blocks)
        self._generation = 0  # bumped by every slice read: a running refresh stops at its next block
        self._gen_lock = threading.Lock()
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._refresher: threading.Thread | None = None
        self._pending: list[_Plan] = []  # the cube readings of the last slice, for the refresh
        # model first: the check of the last slice (its Check, the model's values by variable)
        self._check: tuple[Check, dict[str, np.ndarray]] | None = None
        self._checking: Check | None = None  # the check the running background thread makes
        self.model_refused = ""  # why the model is no longer used (the store disagreed with it)
        self._outputs: set[str] = set()  # the stored sweep's outputs (set by _model_note)
        self.model_note = self._model_note()

    def _model_note(self) -> str:
        """Why slices are never computed by the model first ("" when they may be)."""
        from .. import __version__

        written = self.ds.attrs.get("cusweep_version")
        if written != __version__:
            return f"the store was written by cusweep {written or '(unknown)'}, this is {__version__}"
        if self._setup is None:
            return self.setup_note or "the store's sweep does not load"
        try:
            self._outputs = set(self.sweep.spec.outputs)
        except CusweepError as exc:
            return str(exc)
        return ""

    def model_gives(self, name: str) -> bool:
        """True when slices of ``name`` may be computed by the model first (this cusweep wrote the store,
        its sweep loads, the model outputs ``name``, and the store has not disagreed with the model)."""
        from ..quantities import VARIABLES

        return (not self.model_note and not self.model_refused and name in VARIABLES
                and name in self._outputs and self.ds[name].dtype.kind in "fb")

    # ---------------------------------------------------------------- names, units, labels

    def size(self, dim: str) -> int:
        return int(self.ds.sizes[dim])

    def coord(self, dim: str) -> np.ndarray:
        """The grid values of ``dim`` in store units (strings for a label dim such as crystal)."""
        return self._coords[dim]

    def is_label_dim(self, dim: str) -> bool:
        return self._coords[dim].dtype.kind in TEXT_KINDS

    def is_bool(self, name: str) -> bool:
        return bool(self.ds[name].dtype == bool)

    def factor(self, name: str) -> float:
        """Store units per display unit (1e-6 for a period shown in µm)."""
        return DISPLAY[name][1] if name in DISPLAY else 1.0

    def unit(self, name: str) -> str:
        """The display unit of ``name`` ("" when dimensionless)."""
        if name in DISPLAY:
            return DISPLAY[name][0]
        u = units_of(self.ds, name)
        return "" if u in ("1", "", "dimensionless") else u

    def long_name(self, name: str) -> str:
        return str(self.ds[name].attrs.get("long_name", name))

    def label(self, name: str) -> str:
        """``long name [unit]``."""
        unit = self.unit(name)
        return f"{self.long_name(name)} [{unit}]" if unit else self.long_name(name)

    def value_text(self, dim: str, i: int) -> str:
        """The grid value ``i`` of ``dim`` for people (``13.6 GeV``)."""
        v = self._coords[dim][i]
        if isinstance(v, str | np.str_):
            return str(v)
        return format_value(dim, float(v), plain=False)

    def display_coord(self, dim: str) -> np.ndarray:
        """The grid values of a numeric dim in display units."""
        return np.asarray(self._coords[dim], dtype=np.float64) / self.factor(dim)

    # ---------------------------------------------------------------- reading

    def slice(self, var: str, x: str, y: str, at: Mapping[str, int], max_cells: int = MAX_CELLS,
              photon_energy: float | None = None, refresh: bool = True, model_first: bool = False,
              background: bool = True) -> Slice:
        """``var`` over dims ``x`` (columns) and ``y`` (rows) at the grid indices ``at`` of the other dims,
        each axis strided to at most ``max_cells`` values. Reads only the chunks of that slice.

        ``photon_energy`` [eV]: also mark the designs that do not radiate there (``Slice.off_line``: their
        resonance_energy is farther than the line width 1/(2 n_periods) from it; a facility's condition in a
        tuned store, ``cusweep.select.facility_photon``).

        ``model_first``: when the slice would read blocks for cubes and ``model_gives`` every variable to
        read, compute them by the model (``Slice.source == "model"``); the background thread started by
        ``refresh_cubes`` reads them from the store and fills ``Slice.check``. ``background=False``: a read
        on the side (``best_in_slice``) that neither stops the running background thread nor starts one."""
        xi = np.arange(0, self.size(x), stride_for(self.size(x), max_cells))
        yi = np.arange(0, self.size(y), stride_for(self.size(y), max_cells))
        fixed = {d: int(at[d]) for d in self.dims if d not in (x, y)}
        if background:
            with self._gen_lock:
                self._generation += 1  # a running refresh of another position stops at its next block
        names = [var]
        if "feasible" in self.ds.data_vars:
            names.append("feasible")
        if photon_energy is not None and all(n in self.ds.data_vars for n in LINE_OUTPUTS):
            names += LINE_OUTPUTS
        plans = {n: self._plan(n, x, y, fixed, xi, yi) for n in dict.fromkeys(names)}
        model: dict[str, np.ndarray] = {}
        margins: dict[str, np.ndarray] | None = None
        if model_first and background:
            slow = [n for n, p in plans.items() if p is not None and self._from_cubes(p) is None]
            if slow and all(self.model_gives(n) for n in slow):  # the boundary lines in the same evaluation
                model, margins = self._evaluate(slow, x, y, fixed, xi, yi, margins=True)
        z = self._grid(var, x, y, fixed, xi, yi, model) / self.factor(var)
        infeasible = None
        if "feasible" in self.ds.data_vars:
            infeasible = self._grid("feasible", x, y, fixed, xi, yi, model) < 0.5
        off_line = None
        if photon_energy is not None:
            off_line = self._off_line(photon_energy, x, y, fixed, xi, yi, model)
        check = Check(list(model)) if model else None
        if background:
            self._pending = [p for p in plans.values() if p is not None]
            self._check = (check, model) if check is not None else None
            if refresh:  # else the caller starts it (``refresh_cubes``) when done with the slice
                self.refresh_cubes()
        return Slice(var, x, y, fixed, xi, yi, z, infeasible, off_line, "model" if model else "store", check,
                     margins)

    # ---------------------------------------------------------------- slider-axis cubes

    def _plan(self, name: str, x: str, y: str, fixed: Mapping[str, int], xi: np.ndarray,
              yi: np.ndarray) -> _Plan | None:
        """The cube reading of this slice, or None when a plain read is as good (few blocks, no slider dim
        of ``name``, or cubes too large for the cache)."""
        arr = self.ds[name]
        dims = [str(d) for d in arr.dims]
        if arr.chunks is None or x not in dims or y not in dims:
            return None
        chunks = dict(zip(dims, arr.chunks, strict=True))
        if _blocks_hit(chunks[x], xi) * _blocks_hit(chunks[y], yi) <= self.cube_min_blocks:
            return None
        own = {d: int(fixed[d]) for d in dims if d in fixed}
        base = (name, x, y, _slice_key(xi), _slice_key(yi))
        ranges, keys = [], []
        for d, i in own.items():
            if self.size(d) < 2:
                continue
            start, stop = _block_of(chunks[d], i)
            if not self.cubes.fits(len(xi) * len(yi) * (stop - start) * arr.dtype.itemsize):
                continue
            ranges.append((d, start, stop))
            keys.append((*base, d, start, tuple((e, j) for e, j in sorted(own.items()) if e != d)))
        if not ranges:
            return None
        return _Plan(name, x, y, xi, yi, tuple(sorted(own.items())), tuple(ranges), tuple(keys))

    def _from_cubes(self, plan: _Plan) -> np.ndarray | None:
        """The (ny, nx) slice from a cached cube, None when no cube holds it."""
        fixed = dict(plan.fixed)
        for (d, start, _stop), key in zip(plan.ranges, plan.keys, strict=True):
            cube = self.cubes.get(key)
            if cube is not None:
                return cube[:, :, fixed[d] - start]
        return None

    def _read_cubes(self, plan: _Plan, only_missing: bool = False,
                    cancelled: Callable[[], bool] = lambda: False, workers: int = 1) -> np.ndarray | None:
        """Decode each block of the slice once (``workers`` threads, one block in memory per thread), fill
        the cubes of every slider dim and return the (ny, nx) slice in the stored dtype; None when
        ``cancelled`` (checked before each block) turns true, nothing cached then."""
        arr = self.ds[plan.name]
        dims = [str(d) for d in arr.dims]
        chunks = dict(zip(dims, arr.chunks or (), strict=True))
        fixed = dict(plan.fixed)
        wanted = [(r, k) for r, k in zip(plan.ranges, plan.keys, strict=True)
                  if not (only_missing and k in self.cubes)]
        cube_dims = [d for d, _, _ in plan.ranges]
        ny, nx = len(plan.yi), len(plan.xi)
        cubes = [np.empty((ny, nx, stop - start), dtype=arr.dtype) for (_, start, stop), _ in wanted]
        out = np.empty((ny, nx), dtype=arr.dtype)
        sel: dict[str, Any] = {d: i for d, i in fixed.items() if d not in cube_dims}
        sel.update({d: slice(start, stop) for d, start, stop in plan.ranges})
        at_block = tuple(fixed[d] - start for d, start, _ in plan.ranges)
        def one_block(where: tuple[slice, slice, slice, slice]) -> bool:
            """Decode one block, fill its part of ``out`` and of the cubes (disjoint: threads may share)."""
            rows, ysel, cols, xsel = where
            if cancelled():
                return False
            part = arr.isel({**sel, plan.y: ysel, plan.x: xsel}).transpose(plan.y, plan.x, *cube_dims)
            block = _values(part.data)
            at_yx: list[Any] = [slice(None), slice(None), *at_block]
            out[rows, cols] = block[tuple(at_yx)]
            for ((d, _, _), _), cube in zip(wanted, cubes, strict=True):
                idx = list(at_yx)
                idx[2 + cube_dims.index(d)] = slice(None)
                cube[rows, cols] = block[tuple(idx)]
            return True

        blocks = [(rows, ysel, cols, xsel) for rows, ysel in _block_parts(chunks[plan.y], plan.yi)
                  for cols, xsel in _block_parts(chunks[plan.x], plan.xi)]
        if workers > 1:  # blocks decoded side by side (Blosc releases the GIL), `workers` in memory at once
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix=threading.current_thread().name) as pool:
                done = all(list(pool.map(one_block, blocks)))
        else:
            done = all(one_block(b) for b in blocks)
        if not done:
            return None
        for (_, key), cube in zip(wanted, cubes, strict=True):
            self.cubes.put(key, cube)
        return out

    def refresh_cubes(self, on_checked: Callable[[Check], None] | None = None) -> None:
        """Read, in a daemon thread, the cubes of the last slice not yet cached (after a slider move: the
        cubes along the other sliders at the new position). One refresh at a time; the next slice read
        stops it. When the last slice was computed by the model, the thread first reads it from the store
        (in ``READ_THREADS`` threads), compares, sets its ``Check`` and calls ``on_checked(check)`` (in the
        thread; also when abandoned)."""
        plans = self._pending
        check, model = self._check if self._check is not None else (None, {})
        self._check = None
        if not plans or (check is None and all(k in self.cubes for p in plans for k in p.keys)):
            return
        plans = sorted(plans, key=lambda p: p.name not in model)  # the model's variables first
        with self._gen_lock:
            generation = self._generation

        def stale() -> bool:
            return self._generation != generation

        def run() -> None:
            with self._refresh_lock:
                self._checking = check
                try:
                    differs = []
                    for plan in plans:
                        checked = plan.name in model
                        if not checked and all(k in self.cubes for k in plan.keys):
                            continue
                        if stale():
                            return
                        values = self._from_cubes(plan) if checked else None
                        if values is None:
                            values = self._read_cubes(plan, only_missing=True, cancelled=stale,
                                                      workers=READ_THREADS if checked else 1)
                        if values is None:
                            return
                        if checked:
                            agree, bitwise = _agree(values, model[plan.name])
                            if not agree:
                                differs.append(plan.name)
                            elif not bitwise and check is not None:
                                check.bitwise = False
                    if check is not None:
                        if differs:
                            self.model_refused = (f"the stored {', '.join(differs)} differ from cusweep's "
                                                  "model on a slice")
                            check.differs = differs
                        check.finish("differs" if differs else "confirmed")
                        if on_checked is not None:
                            on_checked(check)
                finally:
                    self._checking = None
                    if check is not None and check.state == "pending":
                        check.finish("abandoned")
                        if on_checked is not None:
                            on_checked(check)

        self._refresher = threading.Thread(target=run, name="cusweep-explore-cubes", daemon=True)
        self._refresher.start()

    def cubed(self, s: Slice) -> bool:
        """True when the slice ``s`` is read as slider-axis cubes (a move of one slider answered from memory
        once they are cached)."""
        return self._plan(s.var, s.x, s.y, s.at, s.xi, s.yi) is not None

    def wait_refresh(self, timeout: float | None = None) -> bool:
        """Wait for the background cube refresh (if any); True when none is running any more."""
        t = self._refresher
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def _off_line(self, photon_energy: float, x: str, y: str, fixed: Mapping[str, int], xi: np.ndarray,
                  yi: np.ndarray, model: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """(ny, nx) bool: the slice's designs whose resonance misses ``photon_energy``
        (``cusweep.photon_line.on_line_mask``, the
        one definition; the stored resonance_energy and n_periods of the slice alone)."""
        from ..photon_line import on_line, on_line_mask

        if (all(n in self.ds.data_vars for n in LINE_OUTPUTS)
                and any(self._plan(n, x, y, fixed, xi, yi) is not None for n in LINE_OUTPUTS)):
            # the stored values, through the cubes (stored dtype: the same arithmetic as the plain read)
            re, n_periods = (_on_yx(*self._raw(n, x, y, fixed, xi, yi, model), x, y, len(yi), len(xi),
                                    cast=False)
                             for n in LINE_OUTPUTS)
            return ~np.asarray(on_line(re, n_periods, photon_energy), dtype=bool)
        sub = self.ds.isel({**{d: [i] for d, i in fixed.items()}, x: _as_slice(xi), y: _as_slice(yi)})
        mask = on_line_mask(sub, self._setup, photon_energy)
        mask = mask.isel({d: 0 for d in fixed if d in mask.dims})
        return _on_yx(np.asarray(mask.values), [str(d) for d in mask.dims], x, y, len(yi), len(xi)) < 0.5

    def _grid(self, name: str, x: str, y: str, fixed: Mapping[str, int], xi: np.ndarray,
              yi: np.ndarray, model: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        values, dims = self._raw(name, x, y, fixed, xi, yi, model)
        return _on_yx(values, dims, x, y, len(yi), len(xi))

    def _raw(self, name: str, x: str, y: str, fixed: Mapping[str, int], xi: np.ndarray,
             yi: np.ndarray, model: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
        """The stored values of the slice (stored dtype) and their dims (a subset of {x, y}): the model's
        when ``model`` holds ``name``, else from a cube when one holds it, else read as cubes when the slice
        crosses many blocks, else read plainly."""
        if model and name in model:
            return model[name], [y, x]
        plan = self._plan(name, x, y, fixed, xi, yi)
        if plan is not None:
            values = self._from_cubes(plan)
            if values is None:
                values = self._read_cubes(plan, workers=READ_THREADS)
            assert values is not None
            return values, [y, x]
        arr = self.ds[name]
        sel: dict[str, Any] = {d: i for d, i in fixed.items() if d in arr.dims}
        for d, idx in ((x, xi), (y, yi)):
            if d in arr.dims:
                sel[d] = _as_slice(idx)
        values = np.asarray(arr.isel(sel).values)
        return values, [str(d) for d in arr.dims if d not in fixed]

    def decoded_bytes(self, var: str, x: str, y: str) -> int:
        """Bytes of stored chunks decoded to read one (x, y) slice of ``var`` (chunks are decoded whole)."""
        arr = self.ds[var]
        chunks = arr.chunks
        if chunks is None:
            return int(arr.nbytes)
        total = arr.dtype.itemsize
        for d, c in zip(arr.dims, chunks, strict=True):
            total *= int(sum(c)) if d in (x, y) else int(max(c))
        return int(total)

    def whole_chunk_dims(self, var: str) -> list[str]:
        """The dims of ``var`` that one stored chunk spans entirely (slices over them read fewest chunks)."""
        arr = self.ds[var]
        if arr.chunks is None:
            return [str(d) for d in arr.dims]
        return [str(d) for d, c in zip(arr.dims, arr.chunks, strict=True) if len(c) == 1 and c[0] > 1]

    def margins(self, x: str, y: str, at: Mapping[str, int], xi: np.ndarray,
                yi: np.ndarray) -> dict[str, np.ndarray]:
        """Constraint name -> its margin (must stay below 1) on the (y, x) grid of a slice, evaluated by the
        model from the store's setup (only the slice's coordinates); {} when the store lacks the setup."""
        if self._setup is None:
            return {}
        return self._evaluate([], x, y, at, xi, yi, margins=True)[1]

    def _evaluate(self, names: list[str], x: str, y: str, at: Mapping[str, int], xi: np.ndarray,
                  yi: np.ndarray, margins: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """One evaluation of the model on the slice's coordinates (intermediates shared): ``names`` each as
        (ny, nx) in the stored dtype (as a run casts them before writing), and with ``margins`` the margin of
        every constraint (float64, as ``margins``)."""
        from ..model import evaluate
        from ..quantities import VARIABLES

        assert self._setup is not None
        coords = {}
        for d in self._setup.dims:
            c = self._coords[d]
            coords[d] = c[xi] if d == x else c[yi] if d == y else c[int(at[d]):int(at[d]) + 1]
        wanted = {c.name: c.margin for c in feasibility.CONSTRAINTS if margins and c.margin in VARIABLES}
        values = evaluate(self._setup, coords, tuple(dict.fromkeys([*names, *wanted.values()])))

        def on_yx(name: str) -> np.ndarray:
            natural = list(self._setup.natural_dims(name))  # type: ignore[union-attr]
            keep = [d for d in natural if d in (x, y)]
            arr = np.asarray(values[name])
            # drop the length-1 axes of the fixed dims, keep x/y
            arr = arr.reshape([arr.shape[natural.index(d)] for d in keep])
            return _on_yx(arr, keep, x, y, len(yi), len(xi), cast=False)

        out = {}
        for name in names:
            arr, dtype = on_yx(name), self.ds[name].dtype
            out[name] = arr if arr.dtype == dtype else arr.astype(dtype)
        return out, {c: on_yx(m).astype(np.float64) for c, m in wanted.items()}

    def point(self, at: Mapping[str, int]) -> dict[str, Any]:
        """Every stored variable at the grid point ``at`` (dim -> index, every dim): store units, bool for
        flags, in the store's variable order. One read of each variable's chunk, computed together."""
        import dask

        parts = []
        for name in self.variables:
            arr = self.ds[name]
            parts.append(arr.isel({d: int(at[str(d)]) for d in arr.dims}).data)
        values = dask.compute(*parts)
        out: dict[str, Any] = {}
        for name, v in zip(self.variables, values, strict=True):
            x = np.asarray(v).reshape(-1)[0]
            out[name] = bool(x) if self.is_bool(name) else float(x)
        return out

    def best_in_slice(self, var: str, x: str, y: str, at: Mapping[str, int],
                      photon_energy: float | None = None) -> dict[str, int] | None:
        """The grid point (dim -> index) where ``var`` is largest over the feasible points of the full
        (unstrided) slice (and, with ``photon_energy``, those radiating there); None when no point of the
        slice qualifies with a finite value. Always the stored values: a running check of the page's slice
        (model first) is waited for, its read filling the cubes this read then uses."""
        if self._checking is not None:
            self.wait_refresh()
        full = self.slice(var, x, y, at, max_cells=max(self.size(x), self.size(y)),
                          photon_energy=photon_energy, background=False)
        z = np.where(np.isfinite(full.z), full.z, -np.inf)
        for excluded in (full.infeasible, full.off_line):
            if excluded is not None:
                z = np.where(excluded, -np.inf, z)
        if not np.isfinite(z).any():
            return None
        j, i = np.unravel_index(int(np.argmax(z)), z.shape)
        return {**full.at, x: int(full.xi[i]), y: int(full.yi[j])}


def _agree(stored: np.ndarray, model: np.ndarray) -> tuple[bool, bool]:
    """(agree, bitwise): the stored values of a slice against the model's. Floats agree within
    ``CHECK_ULPS`` units in the last place of the stored dtype (NaN and infinities at the same cells, of the
    same sign); flags only when equal."""
    if stored.dtype != model.dtype or stored.shape != model.shape:
        return False, False
    if stored.dtype.kind != "f":
        same = bool(np.array_equal(stored, model))
        return same, same
    kind = np.dtype(f"u{stored.dtype.itemsize}")
    if np.array_equal(stored.view(kind), model.view(kind)):
        return True, True
    a, b = stored.astype(np.float64), model.astype(np.float64)
    finite = np.isfinite(a)
    if not (np.array_equal(finite, np.isfinite(b))
            and np.array_equal(a[~finite], b[~finite], equal_nan=True)):
        return False, False
    rtol = CHECK_ULPS * float(np.finfo(stored.dtype).eps)
    return bool(np.all(np.abs(a - b)[finite] <= rtol * np.maximum(np.abs(a), np.abs(b))[finite])), False


def _values(data: Any) -> np.ndarray:
    """A lazy block region as numpy, computed in this thread (no scheduler: it is one block)."""
    if hasattr(data, "compute"):
        return np.asarray(data.compute(scheduler="synchronous"))
    return np.asarray(data)


def _bounds(chunks: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(chunks)])


def _blocks_hit(chunks: tuple[int, ...], idx: np.ndarray) -> int:
    """How many of the blocks along a dim hold at least one of the indices ``idx``."""
    return len(np.unique(np.searchsorted(_bounds(chunks), idx, side="right")))


def _block_of(chunks: tuple[int, ...], i: int) -> tuple[int, int]:
    """(start, stop) of the block along a dim that holds index ``i``."""
    b = _bounds(chunks)
    k = int(np.searchsorted(b, i, side="right")) - 1
    return int(b[k]), int(b[k + 1])


def _block_parts(chunks: tuple[int, ...], idx: np.ndarray) -> list[tuple[slice, slice]]:
    """Per block holding some of the (evenly strided) indices ``idx``: (positions in ``idx``, the grid slice
    of those indices)."""
    b = _bounds(chunks)
    which = np.searchsorted(b, idx, side="right")
    parts = []
    for k in np.unique(which):
        pos = np.flatnonzero(which == k)
        parts.append((slice(int(pos[0]), int(pos[-1]) + 1), _as_slice(idx[pos])))
    return parts


def _slice_key(idx: np.ndarray) -> tuple[int, int, int]:
    s = _as_slice(idx)
    return (s.start, s.stop, s.step)


def _as_slice(idx: np.ndarray) -> slice:
    step = int(idx[1] - idx[0]) if len(idx) > 1 else 1
    return slice(int(idx[0]), int(idx[-1]) + 1, step)


def _on_yx(values: np.ndarray, dims: list[str], x: str, y: str, ny: int, nx: int,
           cast: bool = True) -> np.ndarray:
    """``values`` on ``dims`` (a subset of {x, y}) as a (ny, nx) float64 array (broadcast along the missing
    ones; bool as 0/1); in their own dtype with ``cast=False``."""
    values = np.asarray(values)
    dims = list(dims)
    for d in (y, x):
        if d not in dims:
            values = values[np.newaxis, ...]
            dims.insert(0, d)
    values = np.moveaxis(values, [dims.index(y), dims.index(x)], [0, 1])
    return np.broadcast_to(values.astype(np.float64) if cast else values, (ny, nx)).copy()
