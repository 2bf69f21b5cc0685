"""Compiled loops for the last, full-grid steps of the model (the "5-D chain"), used by the engine only.

The outputs that span every axis of a block (``n_coh``, ``photons_coh``, ``energy_fraction``,
``feasible``) end in one elementwise product of a factor that does not vary along the block's last axis
(a "row", e.g. everything but ``b²``) with one that varies along it alone (a "column", ``b²``), or of such
a product with another row. numpy computes these with an inner loop as short as the last axis (10 points
on the 10^9-point sweep) and one pass over memory per operation, each into a freshly page-faulted array;
these loops make one pass, into buffers a worker thread reuses from block to block (:class:`Buffers`).

**One definition of each formula.** The rows and columns are computed by the formulary's own functions
(:mod:`cusweep.model` calls them with the unit factor, ``x · 1 = x`` exactly), and each loop here does
the formula's own last operations, in its order, on IEEE doubles (no fast-math, no fused multiply-add), so
the values are bit for bit those of plain numpy. ``tests/test_fused.py`` checks this on random inputs
(NaN, inf, zeros, subnormals included) and on whole blocks through ``cusweep.model.evaluate``.

numba is imported on first use (``available``); without it the model falls back to plain numpy.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np

#: blocks smaller than this (points) are computed with plain numpy: the loops pay only on large blocks
#: (and importing numba costs ~0.5 s per process)
MIN_POINTS = 1 << 20


@functools.lru_cache(maxsize=1)
def _kernels() -> dict[str, Any] | None:
    try:
        import numba
    except ImportError:  # optional speed-up: plain numpy computes the same values
        return None

    jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")

    @jit
    def outer(rows, cols, out):  # pragma: no cover (compiled)
        n, m = out.shape
        for i in range(n):
            r = rows[i]
            for j in range(m):
                out[i, j] = r * cols[j]

    @jit
    def energy_chain(rows, cols, scale, ok, strict, photons, fraction, feasible):  # pragma: no cover
        n, m = photons.shape
        fails = 0
        for i in range(n):
            r = rows[i]
            s = scale[i]
            o = ok[i]
            for j in range(m):
                p = r * cols[j]
                f = p * s
                photons[i, j] = p
                fraction[i, j] = f
                holds = (f < 1.0) if strict else (f <= 1.0)
                if not holds:
                    fails += 1
                feasible[i, j] = o and holds
        return fails

    return {"outer": outer, "energy_chain": energy_chain}


def installed() -> bool:
    """True when numba can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def warm_up() -> bool:
    """Import numba and load (or compile) the loops for the argument types the engine uses, so that the
    first block does not pay for it; False without numba."""
    kernels = _kernels()
    if kernels is None:
        return False
    one, out, flag = np.ones(1), np.empty((1, 1)), np.empty((1, 1), dtype=np.bool_)
    kernels["outer"](one, one, out)
    kernels["energy_chain"](one, one, one, one != 0.0, True, out, np.empty((1, 1)), flag)
    return True


def dask_setup(worker: Any = None) -> None:
    """distributed's preload hook (``LocalCluster(preload=["cusweep.fused"])``): :func:`warm_up` as the
    worker starts, while the coordinator writes the store's template."""
    warm_up()


def available() -> bool:
    """True when numba is installed (the loops compile, or load from numba's cache, on first call)."""
    return _kernels() is not None


class Buffers:
    """Output arrays reused from one block to the next, one set per thread (a worker may run several
    tasks at once). The arrays returned by :func:`outer` and :func:`energy_chain` are overwritten by the
    next call with the same name in the same thread: callers that keep them must copy them."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        pool = self._local.__dict__.setdefault("pool", {})
        a = pool.get(name)
        if a is None or a.shape != shape or a.dtype != np.dtype(dtype):
            pool.pop(name, None)  # free the old one first (memory)
            a = pool[name] = np.empty(shape, dtype=dtype)
        return a


#: the engine's buffers (cusweep.execute.compute_block)
BUFFERS = Buffers()


def split(shape: tuple[int, ...], row: Any, col: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(row as a contiguous 1-D array over the block's leading axes, col as a 1-D array over its last
    axis), or None when ``row`` varies along the last axis or ``col`` along any other (then the loops do
    not apply)."""
    if len(shape) < 2:
        return None
    r, c = np.asarray(row, dtype=np.float64), np.asarray(col, dtype=np.float64)
    r = r.reshape((1,) * (len(shape) - r.ndim) + r.shape)
    c = c.reshape((1,) * (len(shape) - c.ndim) + c.shape)
    if r.ndim != len(shape) or c.ndim != len(shape) or r.shape[-1] != 1 or any(n != 1 for n in c.shape[:-1]):
        return None
    try:
        r = np.broadcast_to(r, shape[:-1] + (1,))
        c = np.broadcast_to(c, (1,) * (len(shape) - 1) + shape[-1:])
    except ValueError:
        return None
    return np.ascontiguousarray(r).reshape(-1), np.ascontiguousarray(c).reshape(-1)


def outer(shape: tuple[int, ...], row: Any, col: Any, name: str, buffers: Buffers) -> np.ndarray | None:
    """``row * col`` on the block ``shape`` (a row times a column, see :func:`split`), or None when the
    loops do not apply. The result is a buffer of ``buffers``."""
    kernels = _kernels()
    parts = split(shape, row, col)
    if kernels is None or parts is None:
        return None
    out = buffers.get(name, shape, np.float64)
    kernels["outer"](parts[0], parts[1], out.reshape(-1, shape[-1]))
    return out


def energy_chain(
    shape: tuple[int, ...], row: Any, col: Any, scale: Any, ok: Any, strict: bool, buffers: Buffers
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """In one pass: ``photons = row * col``, ``fraction = photons * scale``, the margin's condition
    ``fraction < 1`` (``<= 1`` when not ``strict``) and ``feasible = ok & condition``; returns
    (photons, fraction, feasible, points where the condition fails), or None when the loops do not apply
    (``scale`` and ``ok`` must be rows too)."""
    kernels = _kernels()
    parts = split(shape, row, col)
    if kernels is None or parts is None:
        return None
    s, o = split(shape, scale, 1.0), split(shape, np.asarray(ok, dtype=np.float64), 1.0)
    if s is None or o is None:
        return None
    photons = buffers.get("photons", shape, np.float64)
    fraction = buffers.get("fraction", shape, np.float64)
    feasible = buffers.get("feasible", shape, np.bool_)
    m = shape[-1]
    fails = kernels["energy_chain"](
        parts[0], parts[1], s[0], o[0] != 0.0, bool(strict),
        photons.reshape(-1, m), fraction.reshape(-1, m), feasible.reshape(-1, m),
    )
    return photons, fraction, feasible, int(fails)
