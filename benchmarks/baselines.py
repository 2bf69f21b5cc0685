"""The baselines cusweep is measured against, each run as its own process by bench_end_to_end.py:

handwritten  what a careful physicist writes without a framework: the same physics
             (``cusweep.model.evaluate``: the formulary on each output's natural dims), numpy block by block
             over a ``ProcessPoolExecutor(2)``, one ``zarr.create_array`` per output on its natural dims with
             the store's dtype, chunks, fill value and compressor (cusweep.store.compressors), whole-chunk
             writes.
             No ledger, no checksums, no lock, no attrs, no Dask. ``evaluate`` is called as a physicist
             would: plain numpy, each output a new array (the engine passes reused buffers and a
             write-as-you-go sink, ``cusweep.fused``; same values bit for bit).
naive        the textbook xarray + dask way: ``xr.broadcast`` of the five axes to the full grid (dask
             chunks = the same blocks), the same formulas evaluated per chunk on the broadcast arrays
             (``xr.apply_ufunc(dask="parallelized")``, so every intermediate and every output lives on
             the full 5-D grid), ``Dataset.to_zarr`` with the same compressor; dask's default threaded
             scheduler with 2 threads.
scalar       a Python loop over grid points calling the same model on one point at a time (no writes).

Inputs (coordinates, crystal constants) come from ``cusweep.spec.load`` of the same sweep file, so every
approach computes on bit-identical grids; ``--chunks`` is cusweep's plan's chunk shape, passed in by the
caller, so the hand-written store has the same chunks and the comparison is about framework overhead.

    python benchmarks/baselines.py handwritten SWEEP.toml STORE --chunks 8,1000,10,10,10 [--workers 2]
        [--codec cusweep|zstd1|lz4|none] [--dtype float32]   # codec/dtype experiments (default: cusweep's)
    python benchmarks/baselines.py naive SWEEP.toml STORE --chunks 8,1000,10,10,10
    python benchmarks/baselines.py scalar SWEEP.toml --points 10000
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from cusweep.model import Setup, _Inputs, evaluate
from cusweep.quantities import VARIABLES
from cusweep.spec import load


def _fill(name: str) -> Any:
    return False if VARIABLES[name].kind == "bool" else np.nan


def _dtype(name: str, dtype: str) -> Any:
    return np.dtype(bool) if VARIABLES[name].kind == "bool" else np.dtype(dtype)


# ------------------------------------------------------------------------------------------ hand-written

_W: dict[str, Any] = {}  # per worker process: setup, coords, chunks, open arrays


def _init_worker(
    store: str,
    setup: Setup,
    coords: dict[str, np.ndarray],
    chunks: tuple[int, ...],
    outputs: tuple[str, ...],
    dtype: str,
) -> None:
    import zarr

    root = zarr.open_group(store, mode="r+")
    _W.update(
        setup=setup,
        coords=coords,
        chunks=chunks,
        outputs=outputs,
        dtype=dtype,
        arrays={name: root[name] for name in outputs},
    )


def _write_block(index: tuple[int, ...]) -> int:
    setup, coords, chunks = _W["setup"], _W["coords"], _W["chunks"]
    dims = setup.dims
    sl = {
        d: slice(i * c, min((i + 1) * c, len(coords[d]))) for d, i, c in zip(dims, index, chunks, strict=True)
    }
    # outputs whose chunk this block writes: those that vary along every dim where the block index is not 0
    owned = [
        n
        for n in _W["outputs"]
        if all(i == 0 for d, i in zip(dims, index, strict=True) if d not in setup.natural_dims(n))
    ]
    values = evaluate(setup, {d: coords[d][sl[d]] for d in dims}, owned)
    for name, v in values.items():
        region = tuple(sl[d] for d in setup.natural_dims(name))
        _W["arrays"][name][region] = v.astype(_dtype(name, _W["dtype"]), copy=False)
    return math.prod(len(coords[d][sl[d]]) for d in dims)


def compressors(codec: str) -> tuple[Any, ...]:
    """``cusweep`` is the store's codec (cusweep.store.compressors); the others are for experiments."""
    from zarr.codecs import BloscCodec, ZstdCodec

    from cusweep.store import compressors as cusweep_compressors

    return {
        "cusweep": cusweep_compressors(),
        "zstd1": (ZstdCodec(level=1),),
        "lz4": (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),),
        "none": (),
    }[codec]


def handwritten(
    sweep: str, store: str, chunks: tuple[int, ...], workers: int = 2, codec: str = "cusweep", dtype: str = ""
) -> dict[str, Any]:
    import zarr

    t0 = time.perf_counter()
    spec = load(sweep)
    setup = Setup.from_spec(spec)
    dims, coords, outputs = setup.dims, {d: np.asarray(spec.coords[d]) for d in spec.dims}, spec.outputs
    shape = tuple(len(coords[d]) for d in dims)
    root = zarr.open_group(store, mode="w", zarr_format=3)
    for d in dims:
        root.create_array(
            d,
            data=coords[d],
            chunks=(len(coords[d]),),
            dimension_names=[d],
            compressors=compressors("cusweep"),
        )
    for name in outputs:
        vdims = setup.natural_dims(name)
        root.create_array(
            name,
            shape=tuple(shape[dims.index(d)] for d in vdims),
            chunks=tuple(chunks[dims.index(d)] for d in vdims),
            dtype=_dtype(name, dtype or spec.dtype),
            fill_value=_fill(name),
            compressors=compressors(codec),
            dimension_names=list(vdims),
        )
    grid = [range(-(-n // c)) for n, c in zip(shape, chunks, strict=True)]
    t1 = time.perf_counter()
    with ProcessPoolExecutor(
        workers,
        initializer=_init_worker,
        initargs=(store, setup, coords, tuple(chunks), tuple(outputs), dtype or spec.dtype),
    ) as ex:
        points = sum(ex.map(_write_block, itertools.product(*grid)))
    t2 = time.perf_counter()
    return {"points": points, "setup_s": t1 - t0, "blocks_s": t2 - t1, "blocks": math.prod(map(len, grid))}


# ------------------------------------------------------------------------------------------ naive


class _FullInputs(_Inputs):
    """The model's formulas with every input already broadcast to the full block (the naive way)."""

    def __init__(self, setup: Setup, grids: dict[str, np.ndarray]):
        self.setup = setup
        self.ndim = len(setup.dims)
        self.shape = next(iter(grids.values())).shape
        self._memo = {}
        self._axis = dict(grids)


def _naive_kernel(*grids: np.ndarray, setup: Setup, outputs: tuple[str, ...], dtype: str) -> tuple:
    inputs = _FullInputs(setup, dict(zip(setup.dims, grids, strict=True)))
    out = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for name in outputs:
            v = np.broadcast_to(np.asarray(inputs["out_" + name]), inputs.shape)
            out.append(np.array(v, dtype=_dtype(name, dtype)))
    return tuple(out)


def naive(sweep: str, store: str, chunks: tuple[int, ...], workers: int = 2) -> dict[str, Any]:
    import dask
    import xarray as xr
    t0 = time.perf_counter()
    spec = load(sweep)
    setup = Setup.from_spec(spec)
    dims, outputs = setup.dims, tuple(spec.outputs)
    axes = [
        xr.DataArray(np.asarray(spec.coords[d]), dims=d, coords={d: np.asarray(spec.coords[d])}).chunk({d: c})
        for d, c in zip(dims, chunks, strict=True)
    ]
    grids = xr.broadcast(*axes)  # every axis on the full 5-D grid
    results = xr.apply_ufunc(
        _naive_kernel,
        *grids,
        kwargs={"setup": setup, "outputs": outputs, "dtype": spec.dtype},
        dask="parallelized",
        output_core_dims=[[] for _ in outputs],
        output_dtypes=[_dtype(n, spec.dtype) for n in outputs],
    )
    ds = xr.Dataset(dict(zip(outputs, results, strict=True)))
    encoding = {n: {"compressors": compressors("cusweep")} for n in outputs}
    with dask.config.set(scheduler="threads", num_workers=workers):
        ds.to_zarr(store, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    return {"points": spec.size, "blocks_s": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------ scalar loop


def scalar(sweep: str, points: int, seed: int = 0) -> dict[str, Any]:
    """The model called on one grid point at a time, ``points`` points spread over the grid."""
    spec = load(sweep)
    setup = Setup.from_spec(spec)
    dims, outputs = setup.dims, tuple(spec.outputs)
    rng = np.random.default_rng(seed)
    idx = {d: rng.integers(0, len(spec.coords[d]), points) for d in dims}
    coords = {d: np.asarray(spec.coords[d]) for d in dims}
    results = {n: np.empty(points, dtype=_dtype(n, spec.dtype)) for n in outputs}
    t0 = time.perf_counter()
    for i in range(points):
        point = {d: coords[d][idx[d][i] : idx[d][i] + 1] for d in dims}
        values = evaluate(setup, point, outputs)
        for n in outputs:
            results[n][i] = values[n].reshape(-1)[0]
    seconds = time.perf_counter() - t0
    return {"points": points, "blocks_s": seconds, "points_per_s": points / seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("handwritten", "naive", "scalar"))
    p.add_argument("sweep")
    p.add_argument("store", nargs="?")
    p.add_argument("--chunks", help="chunk shape, comma-separated (cusweep's plan's)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--points", type=int, default=10_000, help="scalar: points to evaluate")
    p.add_argument(
        "--codec",
        choices=("cusweep", "zstd1", "lz4", "none"),
        default="cusweep",
        help="handwritten: compressor (default: cusweep's; others for experiments)",
    )
    p.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="",
        help="handwritten: float dtype (default: the sweep's)",
    )
    a = p.parse_args(argv)
    if a.kind == "scalar":
        result = scalar(a.sweep, a.points)
    else:
        if not (a.store and a.chunks):
            p.error(f"{a.kind} needs STORE and --chunks")
        chunks = tuple(int(c) for c in a.chunks.split(","))
        if a.kind == "handwritten":
            result = handwritten(a.sweep, a.store, chunks, a.workers, codec=a.codec, dtype=a.dtype)
        else:
            result = naive(a.sweep, a.store, chunks, a.workers)
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
