"""The explorer's one door to a store: open it lazily, read one 2-D slice (strided when large), the boundary
fields on that slice (the model's feasibility margins, ``cusweep.feasibility.CONSTRAINTS``), every variable
at one grid point, and the best feasible point of a slice.

Every store access of the explorer goes through :class:`StoreView`; nothing here draws or prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import feasibility
from ..display import DISPLAY, format_value
from ..errors import CusweepError, SpecError
from ..query import TEXT_KINDS, dim_order, units_of

if TYPE_CHECKING:
    import xarray as xr

    from ..model import Setup

__all__ = ["MAX_CELLS", "Slice", "StoreView", "stride_for"]

#: a plotted axis longer than this is strided (every k-th grid value) before the slice is shipped
MAX_CELLS = 1000


def stride_for(n: int, max_cells: int = MAX_CELLS) -> int:
    """The stride that keeps at most ``max_cells`` of ``n`` grid values."""
    return max(1, math.ceil(n / max_cells))


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


class StoreView:
    """A store opened lazily for the explorer (dims, coordinates, labels, slices, points)."""

    def __init__(self, path: str) -> None:
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
              photon_energy: float | None = None) -> Slice:
        """``var`` over dims ``x`` (columns) and ``y`` (rows) at the grid indices ``at`` of the other dims,
        each axis strided to at most ``max_cells`` values. Reads only the chunks of that slice.

        ``photon_energy`` [eV]: also mark the designs that do not radiate there (``Slice.off_line``: their
        resonance_energy is farther than the line width 1/(2 n_periods) from it; a facility's condition in a
        tuned store, ``cusweep.select.facility_photon``)."""
        xi = np.arange(0, self.size(x), stride_for(self.size(x), max_cells))
        yi = np.arange(0, self.size(y), stride_for(self.size(y), max_cells))
        fixed = {d: int(at[d]) for d in self.dims if d not in (x, y)}
        z = self._grid(var, x, y, fixed, xi, yi) / self.factor(var)
        infeasible = None
        if "feasible" in self.ds.data_vars:
            infeasible = self._grid("feasible", x, y, fixed, xi, yi) < 0.5
        off_line = None
        if photon_energy is not None:
            off_line = self._off_line(photon_energy, x, y, fixed, xi, yi)
        return Slice(var, x, y, fixed, xi, yi, z, infeasible, off_line)

    def _off_line(self, photon_energy: float, x: str, y: str, fixed: Mapping[str, int], xi: np.ndarray,
                  yi: np.ndarray) -> np.ndarray:
        """(ny, nx) bool: the slice's designs whose resonance misses ``photon_energy``
        (``cusweep.photon_line.on_line_mask``, the
        one definition; the stored resonance_energy and n_periods of the slice alone)."""
        from ..photon_line import on_line_mask

        sub = self.ds.isel({**{d: [i] for d, i in fixed.items()}, x: _as_slice(xi), y: _as_slice(yi)})
        mask = on_line_mask(sub, self._setup, photon_energy)
        mask = mask.isel({d: 0 for d in fixed if d in mask.dims})
        return _on_yx(np.asarray(mask.values), [str(d) for d in mask.dims], x, y, len(yi), len(xi)) < 0.5

    def _grid(self, name: str, x: str, y: str, fixed: Mapping[str, int], xi: np.ndarray,
              yi: np.ndarray) -> np.ndarray:
        arr = self.ds[name]
        sel: dict[str, Any] = {d: i for d, i in fixed.items() if d in arr.dims}
        for d, idx in ((x, xi), (y, yi)):
            if d in arr.dims:
                sel[d] = _as_slice(idx)
        values = np.asarray(arr.isel(sel).values)
        return _on_yx(values, [str(d) for d in arr.dims if d not in fixed], x, y, len(yi), len(xi))

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
        from ..model import evaluate
        from ..quantities import VARIABLES

        coords = {}
        for d in self._setup.dims:
            c = self._coords[d]
            coords[d] = c[xi] if d == x else c[yi] if d == y else c[int(at[d]):int(at[d]) + 1]
        wanted = {c.name: c.margin for c in feasibility.CONSTRAINTS if c.margin in VARIABLES}
        values = evaluate(self._setup, coords, tuple(dict.fromkeys(wanted.values())))
        out = {}
        for name, margin in wanted.items():
            keep = [d for d in self._setup.natural_dims(margin) if d in (x, y)]
            arr = np.asarray(values[margin], dtype=np.float64)
            kept = list(self._setup.natural_dims(margin))
            # drop the length-1 axes of the fixed dims, keep x/y
            arr = arr.reshape([arr.shape[kept.index(d)] for d in kept if d in keep] or [])
            out[name] = _on_yx(arr, keep, x, y, len(yi), len(xi))
        return out

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
        slice qualifies with a finite value."""
        full = self.slice(var, x, y, at, max_cells=max(self.size(x), self.size(y)),
                          photon_energy=photon_energy)
        z = np.where(np.isfinite(full.z), full.z, -np.inf)
        for excluded in (full.infeasible, full.off_line):
            if excluded is not None:
                z = np.where(excluded, -np.inf, z)
        if not np.isfinite(z).any():
            return None
        j, i = np.unravel_index(int(np.argmax(z)), z.shape)
        return {**full.at, x: int(full.xi[i]), y: int(full.yi[j])}


def _as_slice(idx: np.ndarray) -> slice:
    step = int(idx[1] - idx[0]) if len(idx) > 1 else 1
    return slice(int(idx[0]), int(idx[-1]) + 1, step)


def _on_yx(values: np.ndarray, dims: list[str], x: str, y: str, ny: int, nx: int) -> np.ndarray:
    """``values`` on ``dims`` (a subset of {x, y}) as a (ny, nx) float64 array (broadcast along the missing
    ones; bool as 0/1)."""
    values = np.asarray(values)
    dims = list(dims)
    for d in (y, x):
        if d not in dims:
            values = values[np.newaxis, ...]
            dims.insert(0, d)
    values = np.moveaxis(values, [dims.index(y), dims.index(x)], [0, 1])
    return np.broadcast_to(values.astype(np.float64), (ny, nx)).copy()
