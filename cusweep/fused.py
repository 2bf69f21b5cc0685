"""One pass per operation, into reused buffers, for the last, full-grid steps of the model (the "5-D
chain"), used by the engine only.

The outputs that span every axis of a block (``n_coh``, ``photons_coh``, ``energy_fraction``,
``feasible``) end in one elementwise product of a factor that does not vary along the block's last axis
(a "row", e.g. everything but ``b²``) with one that varies along it alone (a "column", ``b²``), or of such
a product with another row. Plain numpy writes each into a freshly allocated array: on blocks of 64 MB
that is a fresh ``mmap`` per array, page-faulted and zeroed by the kernel anew on every block, and the
feasibility count does its comparison again. Here each operation writes into a buffer that a worker
thread reuses from block to block (:class:`Buffers`) and the energy margin's condition is evaluated once,
for ``feasible`` and for the run's counters.

**One definition of each formula.** The rows and columns are computed by the formulary's own functions
(:mod:`cusweep.model` calls them with the unit factor, ``x · 1 = x`` exactly), and the functions here do
the formula's own last operations, in its order, with the same numpy ufuncs, so the values are bit for bit
those of plain numpy (``tests/test_fused.py`` checks this on random inputs with NaN, inf, signed zeros and
subnormals, and on whole blocks through ``cusweep.model.evaluate``).

Compiled loops (numba) were measured too (benchmarks/README.md, "Run speed (issue 15)"): the chain took
16 ms instead of 35 ms per 8 x 10^6-point block, but importing numba and loading its cache adds ~105 MB of
resident memory and ~0.5 s of CPU to every worker, which the 1 GB budget of a run cannot afford.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

#: blocks smaller than this (points) are computed with plain numpy: reused buffers pay only on large
#: blocks (a small block's arrays come from the heap, not from fresh mmaps)
MIN_POINTS = 1 << 20


class Buffers:
    """Arrays reused from one block to the next, per thread (a worker may run several tasks at once).

    :meth:`start` (at the start of each block) makes every array of the thread free again; :meth:`take`
    hands out a free array of a shape and dtype (allocating one only when none is free); :meth:`give`
    frees one early (an output already written, ``evaluate(sink=)``). An array taken for a block is
    overwritten by a later block in the same thread: callers that keep results must copy them."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _state(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        d = self._local.__dict__
        return d.setdefault("free", []), d.setdefault("taken", [])

    def start(self) -> None:
        free, taken = self._state()
        free.extend(taken)
        taken.clear()

    def take(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        free, taken = self._state()
        dtype = np.dtype(dtype)
        i = next((i for i, a in enumerate(free) if a.shape == shape and a.dtype == dtype), None)
        if i is None:
            # arrays of another block layout are dropped (memory); those of this layout are kept
            free[:] = [a for a in free if a.shape == shape]
            a = np.empty(shape, dtype=dtype)
        else:
            a = free.pop(i)
        taken.append(a)
        return a

    def give(self, a: np.ndarray) -> bool:
        """Free ``a`` before the block ends (True if it is one of these buffers)."""
        free, taken = self._state()
        for i, t in enumerate(taken):
            if t is a:
                free.append(taken.pop(i))
                return True
        return False


#: the engine's buffers (cusweep.execute.compute_block)
BUFFERS = Buffers()


def split(shape: tuple[int, ...], row: Any, col: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(row as a contiguous 1-D array over the block's leading axes, col as a 1-D array over its last
    axis), or None when ``row`` varies along the last axis or ``col`` along any other (then this path
    does not apply)."""
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


def outer(shape: tuple[int, ...], row: Any, col: Any, buffers: Buffers) -> np.ndarray | None:
    """``row * col`` on the block ``shape`` (a row times a column, see :func:`split`), or None when this
    does not apply. The result is a buffer of ``buffers``."""
    parts = split(shape, row, col)
    if parts is None:
        return None
    out = buffers.take(shape, np.float64)
    np.multiply(parts[0][:, None], parts[1], out=out.reshape(-1, shape[-1]))
    return out


def energy_chain(
    shape: tuple[int, ...], row: Any, col: Any, scale: Any, ok: Any, strict: bool, buffers: Buffers
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """``photons = row * col``, ``fraction = photons * scale``, the margin's condition ``fraction < 1``
    (``<= 1`` when not ``strict``) and ``feasible = ok & condition``, each in one pass into a buffer;
    returns (photons, fraction, feasible, points where the condition fails), or None when this does not
    apply (``scale`` and ``ok`` must be rows too)."""
    parts = split(shape, row, col)
    s, o = split(shape, scale, 1.0), split(shape, np.asarray(ok, dtype=np.float64), 1.0)
    if parts is None or s is None or o is None:
        return None
    m = shape[-1]
    photons = buffers.take(shape, np.float64)
    fraction = buffers.take(shape, np.float64)
    feasible = buffers.take(shape, np.bool_)
    p2, f2, ok2 = photons.reshape(-1, m), fraction.reshape(-1, m), feasible.reshape(-1, m)
    np.multiply(parts[0][:, None], parts[1], out=p2)
    np.multiply(p2, s[0][:, None], out=f2)
    (np.less if strict else np.less_equal)(f2, 1.0, out=ok2)
    fails = math.prod(shape) - int(np.count_nonzero(ok2))
    np.logical_and(ok2, (o[0] != 0.0)[:, None], out=ok2)
    return photons, fraction, feasible, fails
