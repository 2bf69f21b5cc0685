"""SweepSpec -> Plan: dims, coords, chunking, block keys, output schema, cost. Pure and printable.

A block is one Zarr chunk of the full grid. Every variable is chunked like the grid along its own dims,
so a block owns (writes) the chunk of a lower-dimensional variable exactly when its index is 0 along
every dim that variable does not carry: one writer per chunk, every chunk written by exactly one block.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .model import CRYSTAL_FIELDS, Setup
from .quantities import COORDS, VARIABLES

if TYPE_CHECKING:
    import xarray as xr

    from .spec import SweepSpec

#: a few thousand block tasks at most (engine-notes §3)
MAX_BLOCKS = 4096
#: largest block [MB] a worker holds (spec.CHUNK_MB_MAX); a grid that needs more blocks is refused
_MAX_BLOCK_MB = 1024.0
#: rough single-core model throughput [points/s] and store write rate [bytes/s], for the dry-run estimate
_POINTS_PER_S = 1.5e8
_WRITE_BYTES_PER_S = 2.0e8


@dataclass(frozen=True)
class Plan:
    """Everything needed to compute and store a sweep; picklable (sent to workers)."""

    name: str
    text: str
    fingerprint: str
    setup: Setup
    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    chunks: tuple[int, ...]
    outputs: tuple[str, ...]
    var_dims: dict[str, tuple[str, ...]]
    dtype: str
    chunk_mb: float
    notes: tuple[str, ...] = field(default=())
    #: the fixed inputs the sweep uses, for people: (name, value in display units, where it came from)
    inputs: tuple[tuple[str, str, str], ...] = field(default=())

    # ---- geometry
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.coords[d]) for d in self.dims)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def block_grid(self) -> tuple[int, ...]:
        return tuple(-(-n // c) for n, c in zip(self.shape, self.chunks, strict=True))

    @property
    def n_blocks(self) -> int:
        return math.prod(self.block_grid)

    def block_index(self, block_id: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(block_id, self.block_grid))

    def block_id(self, index: tuple[int, ...]) -> int:
        return int(np.ravel_multi_index(index, self.block_grid))

    def block_ids(self) -> Iterator[int]:
        return iter(range(self.n_blocks))

    def block_slices(self, index: tuple[int, ...]) -> dict[str, slice]:
        return {
            d: slice(i * c, min((i + 1) * c, n))
            for d, i, c, n in zip(self.dims, index, self.chunks, self.shape, strict=True)
        }

    def block_coords(self, index: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {d: self.coords[d][s] for d, s in self.block_slices(index).items()}

    def block_points(self, index: tuple[int, ...]) -> int:
        return math.prod(s.stop - s.start for s in self.block_slices(index).values())

    def var_chunks(self, name: str) -> tuple[int, ...]:
        return tuple(self.chunks[self.dims.index(d)] for d in self.var_dims[name])

    def var_shape(self, name: str) -> tuple[int, ...]:
        return tuple(len(self.coords[d]) for d in self.var_dims[name])

    def owned_outputs(self, index: tuple[int, ...]) -> tuple[str, ...]:
        """The variables whose chunk this block writes (index 0 along every dim they do not carry)."""
        return tuple(
            name
            for name in self.outputs
            if all(i == 0 for d, i in zip(self.dims, index, strict=True) if d not in self.var_dims[name])
        )

    @property
    def layout_token(self) -> str:
        """Identifies the stored arrays' layout: the sweep's fingerprint and the block chunking."""
        return f"{self.fingerprint}-{'x'.join(map(str, self.chunks))}"

    def with_chunks(self, chunks: tuple[int, ...]) -> Plan:
        """The same plan on another block layout (to resume a store written with another chunk_mb)."""
        chunks = tuple(int(c) for c in chunks)
        fits = len(chunks) == len(self.dims) and all(
            1 <= c <= n for c, n in zip(chunks, self.shape, strict=True)
        )
        if not fits:
            raise ValueError(f"chunks {chunks} do not fit the grid {self.shape}")
        return replace(self, chunks=chunks)

    def var_block_slices(self, name: str, index: tuple[int, ...]) -> tuple[slice, ...]:
        sl = self.block_slices(index)
        return tuple(sl[d] for d in self.var_dims[name])

    # ---- cost
    def itemsize(self, name: str) -> int:
        return 1 if VARIABLES[name].kind == "bool" else np.dtype(self.dtype).itemsize

    def bytes_total(self) -> int:
        return sum(math.prod(self.var_shape(n)) * self.itemsize(n) for n in self.outputs)

    def bytes_per_block(self) -> int:
        return sum(math.prod(self.var_chunks(n)) * self.itemsize(n) for n in self.outputs)

    def default_workers(self) -> int:
        """LocalCluster workers when none are given: the usable CPUs, bounded by memory per worker."""
        from .cpus import default_workers

        return default_workers(self.bytes_per_block())

    def estimate_seconds(self, workers: int | None = None) -> float:
        """Estimated wall time with ``workers`` processes (default: :meth:`default_workers`)."""
        workers = self.default_workers() if workers is None else workers
        compute = self.size / _POINTS_PER_S
        write = self.bytes_total() / _WRITE_BYTES_PER_S
        return (compute + write) / max(1, workers)

    def describe(self, workers: int | None = None) -> str:
        """The dry-run text: dims, sizes, chunking, blocks, bytes, time estimate (with ``workers`` processes,
        default: :meth:`default_workers`)."""
        workers = self.default_workers() if workers is None else workers
        lines = [
            f"sweep {self.name!r}: {self.size:,} grid points in {self.n_blocks:,} blocks "
            f"(block grid {' x '.join(map(str, self.block_grid))})"
        ]
        lines.append(f"{'dim':<14}{'size':>12} {'chunk':>10}  range")
        for d, n, c in zip(self.dims, self.shape, self.chunks, strict=True):
            lines.append(f"{d:<14}{n:>12,} {c:>10,}  {_range_text(d, self.coords[d])}")
        lines.append(f"{'variable':<22}{'dims':<48}{'MB':>10}")
        for name in self.outputs:
            mb = math.prod(self.var_shape(name)) * self.itemsize(name) / 1e6
            lines.append(f"{name:<22}{'(' + ', '.join(self.var_dims[name]) + ')':<48}{mb:>10.3f}")
        lines.append(
            f"store size (uncompressed): {self.bytes_total() / 1e6:,.1f} MB; "
            f"block size {self.bytes_per_block() / 1e6:.1f} MB (target {self.chunk_mb:g} MB), "
            f"dtype {self.dtype}"
        )
        mode = "tuned (resonance at the soft edge)" if self.setup.tuned else "detuned (photon_energy given)"
        lines.append(f"resonance: {mode}; length model: {self.setup.length_model}")
        if self.inputs:
            lines.append(f"{'input':<20}{'value':<34}from")
            lines.extend(f"{n:<20}{v:<34}{src}" for n, v, src in self.inputs)
        lines.append(f"estimated time with {workers} worker(s): {_duration(self.estimate_seconds(workers))}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    # ---- lazy dataset
    def to_dataset(self) -> xr.Dataset:
        """The whole sweep as a lazy xarray.Dataset; dask chunks = blocks, one task per variable chunk.

        ``plan.to_dataset().sel(...).compute()`` evaluates only the chunks it needs, without a store.
        """
        import dask.array as da
        import xarray as xr
        from dask.highlevelgraph import HighLevelGraph

        data_vars = {}
        for name in self.outputs:
            vdims = self.var_dims[name]
            grid = [self.block_grid[self.dims.index(d)] for d in vdims]
            key = f"cusweep-{name}-{self.fingerprint[:16]}"
            layer = {}
            for sub in itertools.product(*[range(g) for g in grid]):
                full = tuple(sub[vdims.index(d)] if d in vdims else 0 for d in self.dims)
                layer[(key, *sub)] = (_chunk_of, self, full, name)
            chunks = tuple(_chunk_tuple(len(self.coords[d]), self.chunks[self.dims.index(d)]) for d in vdims)
            dtype = bool if VARIABLES[name].kind == "bool" else np.dtype(self.dtype)
            graph = HighLevelGraph.from_collections(key, layer, dependencies=())  # type: ignore[arg-type]
            data_vars[name] = xr.Variable(
                vdims, da.Array(graph, key, chunks, dtype=dtype), attrs=self.var_attrs(name)
            )
        # crystal names as variable-length UTF-8 (Zarr 3 has no stable fixed-width string type)
        coords = {
            d: xr.Variable((d,), self.coords[d].astype(object) if d == "crystal" else self.coords[d],
                           attrs=_attrs(COORDS[d]))
            for d in self.dims
        }
        ds = xr.Dataset(data_vars, coords=coords)
        ds.attrs.update(self.group_attrs())
        return ds

    def var_attrs(self, name: str) -> dict[str, str]:
        """The stored attrs of variable ``name`` (its source names the formula this sweep uses)."""
        from .formulary.channeling import SOURCE_DECHANNELING
        from .quantities import variable_attrs

        return variable_attrs(
            name,
            tuned=self.setup.tuned,
            length_model=self.setup.length_model,
            dechanneling_source=SOURCE_DECHANNELING[self.setup.dechanneling_model],
            point_like=self.setup.point_like,
            dielectric=self.setup.dielectric,
        )

    def group_attrs(self) -> dict[str, Any]:
        from . import __version__
        from .quantities import REFERENCES

        return {
            "cusweep_version": __version__,
            "sweep": self.text,
            "references": REFERENCES,
            "fingerprint": self.fingerprint,
            "block_chunks": [int(c) for c in self.chunks],
            "name": self.name,
            "scalars": _json_scalars(self.setup.scalars),
            "length_model": self.setup.length_model,
            "dechanneling_model": self.setup.dechanneling_model,
            "crystals": {n: _json_crystal(c) for n, c in self.setup.crystals.items()},
        }


def _chunk_of(plan: Plan, index: tuple[int, ...], name: str) -> np.ndarray:
    from .model import evaluate

    coords = plan.block_coords(index)
    # dims the variable does not carry: any single value gives the same result
    coords = {d: (v if d in plan.var_dims[name] else v[:1]) for d, v in coords.items()}
    value = evaluate(plan.setup, coords, [name])[name]
    return value if value.dtype == bool else value.astype(plan.dtype, copy=False)


def _attrs(q: Any) -> dict[str, str]:
    from .quantities import attrs

    return attrs(q)


def _chunk_tuple(n: int, c: int) -> tuple[int, ...]:
    return tuple(min(c, n - s) for s in range(0, n, c))


def choose_chunks(shape: tuple[int, ...], itemsize: int, chunk_mb: float) -> tuple[int, ...]:
    """Chunk the grid for blocks of about ``chunk_mb`` MB of the full-dimensional variable, splitting the
    leading dims first (trailing dims stay whole, so a block is contiguous), with near-equal blocks."""
    target = max(1, int(chunk_mb * 1e6 // itemsize))
    chunks = list(shape)
    for i in range(len(shape)):
        if math.prod(chunks) <= target:
            break
        rest = math.prod(chunks[i + 1 :])
        chunks[i] = max(1, target // rest)
    # even out: same number of blocks along each dim, smallest chunk that gives it
    return tuple(-(-n // -(-n // c)) for n, c in zip(shape, chunks, strict=True))


def make_plan(spec: SweepSpec) -> Plan:
    """Build the Plan of a validated SweepSpec (pure; no I/O)."""
    setup = Setup.from_spec(spec)
    dims = tuple(spec.dims)
    shape = tuple(len(spec.coords[d]) for d in dims)
    itemsize = np.dtype(spec.dtype).itemsize
    chunk_mb = float(spec.chunk_mb)
    notes = []
    # mid-size sweeps: blocks of at least 16 MB but up to 8 of them, so every worker has work
    full_mb = math.prod(shape) * itemsize / 1e6
    if chunk_mb > 16 and full_mb / chunk_mb < 8:
        chunk_mb = max(16.0, min(chunk_mb, full_mb / 8))
    chunks = choose_chunks(shape, itemsize, chunk_mb)
    while math.prod(-(-n // c) for n, c in zip(shape, chunks, strict=True)) > MAX_BLOCKS:
        chunk_mb *= 2
        chunks = choose_chunks(shape, itemsize, chunk_mb)
    if chunk_mb > _MAX_BLOCK_MB:
        from .errors import SpecError

        most = MAX_BLOCKS * _MAX_BLOCK_MB * 1e6 / itemsize
        raise SpecError(
            f"axes: {math.prod(shape):.3g} grid points would need blocks of {chunk_mb:,.0f} MB to stay "
            f"within {MAX_BLOCKS} blocks (at most {_MAX_BLOCK_MB:g} MB each: {most:.2g} points in "
            f"{spec.dtype}); reduce the axes' num, or split the sweep into several sweep files"
        )
    if chunk_mb > spec.chunk_mb:
        notes.append(
            f"chunk_mb raised from {spec.chunk_mb:g} to {chunk_mb:g} to keep at most {MAX_BLOCKS} blocks"
        )
    outputs = tuple(spec.outputs)
    var_dims = {name: setup.natural_dims(name) for name in outputs}
    coords = {d: np.asarray(spec.coords[d]).copy() for d in dims}
    return Plan(
        name=spec.name,
        text=spec.text,
        fingerprint=spec.fingerprint(),
        setup=setup,
        dims=dims,
        coords=coords,
        chunks=chunks,
        outputs=outputs,
        var_dims=var_dims,
        dtype=spec.dtype,
        chunk_mb=chunk_mb,
        notes=tuple(spec.notes) + tuple(notes),
        inputs=inputs_of(spec),
    )


#: the fixed inputs listed by the dry run and the run's first line, in this order
INPUTS = ("crystal", "thickness", "n_positrons", "energy", "sigma_z", "photon_energy", "sigma_r",
          "length_model", "dechanneling_model", "dielectric")


def inputs_of(spec: SweepSpec) -> tuple[tuple[str, str, str], ...]:
    """(name, value for people in display units, source) of every fixed input of ``spec`` (a swept one
    shows its range), source from ``spec.provenance``."""
    out = []
    for name in INPUTS:
        source = spec.provenance.get(name, "sweep file")
        if name in ("length_model", "dechanneling_model"):
            value = str(getattr(spec, name))
        elif name == "dielectric":
            value = spec.dielectric
        elif name in spec.coords:
            value = _range_text(name, np.asarray(spec.coords[name]))
        elif spec.scalars.get(name) is None:
            value = {"photon_energy": "tuned (each design's resonance)",
                     "sigma_r": "none (point-like bunch)"}.get(name, "-")
        elif name == "crystal":
            value = str(spec.scalars[name])
        else:
            value = _range_text(name, np.array([float(spec.scalars[name])]))  # type: ignore[arg-type]
        if name in ("energy", "sigma_z") and source == "sweep file":
            continue  # axes of the sweep, listed with the dims
        out.append((name, value, source))
    return tuple(out)


def inputs_line(plan: Plan) -> str:
    """The fixed inputs in one line: ``crystal diamond-110 (sweep file), thickness 1.4 mm (...), ...``."""
    return "inputs: " + ", ".join(f"{n} = {v} ({src})" for n, v, src in plan.inputs)


def _range_text(dim: str, values: np.ndarray) -> str:
    """A dim's grid for people, in display units (``cusweep.display``): ``5 µm .. 40 µm``."""
    from .display import format_value

    if dim == "crystal":
        return ", ".join(map(str, values))
    units = COORDS[dim].units
    f = lambda v: format_value(dim, float(v), plain=False, units=units)
    if len(values) == 1:
        return f(values[0])
    return f"{f(values[0])} .. {f(values[-1])}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _json_scalars(scalars: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in scalars.items():
        if v is None or isinstance(v, str):
            out[k] = v
        else:
            out[k] = float(v)
    return out


def _json_crystal(c: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in ("name", *CRYSTAL_FIELDS, "source"):
        v = getattr(c, f, None)
        if isinstance(v, float | np.floating):
            out[f] = float(v) if math.isfinite(v) else None  # attrs are JSON: no NaN (zarr #3478)
        else:
            out[f] = v
    return out
