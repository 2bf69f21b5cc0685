"""Ranking and listing grid points of a store, block by block: the K best points by a variable
(``top_points``), the first points where an expression holds (``list_points``), every such point as a
stream of row batches (``iter_points``, bounded memory whatever the store size), and the values at those
points (``records``). Built on the expression language of ``cusweep.query``.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import QueryError
from .query import (
    BlockPlan,
    Reader,
    _is_bool,
    _is_str,
    _offsets,
    _on_dims,
    block_mask,
    block_values,
    dim_order,
    map_blocks,
    names_in,
    parse,
    plan_blocks,
    pruned_query,
    resolve,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["columns_for", "iter_blocks", "iter_points", "list_blocks", "list_points", "no_points",
           "rank_variable", "records", "top_blocks", "top_points", "values_at"]

#: grid points read per batch when streaming every matching point (``iter_points``)
ROWS_PER_BATCH = 65536
#: blocks of the mask evaluated per dask.compute when listing points
BLOCKS_PER_BATCH = 8


def _unprune(points: dict[str, np.ndarray], keep: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Indices into a pruned dataset (:func:`cusweep.query.pruned_query`) as indices into the full one."""
    return {d: (np.asarray(keep[d], dtype=np.int64)[v] if d in keep else v) for d, v in points.items()}


def _no_points(ds: xr.Dataset) -> dict[str, np.ndarray]:
    return {d: np.empty(0, dtype=np.int64) for d in dim_order(ds)}


def _block_topk(score: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...], k: int,
                ascending: bool) -> tuple[np.ndarray, np.ndarray]:
    """The k best finite scores of one block (ties by flat index) and their flat indices in ``shape``."""
    flat = np.asarray(score).reshape(-1)
    idx = np.flatnonzero(~np.isnan(flat))
    if idx.size == 0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    vals = flat[idx].astype(np.float64)
    key = vals if ascending else -vals
    if idx.size > k:
        kth = np.partition(key, k - 1)[k - 1]
        keep = key <= kth
        idx, vals, key = idx[keep], vals[keep], key[keep]
    local = np.unravel_index(idx, score.shape)
    glob = np.ravel_multi_index(tuple(li + o for li, o in zip(local, offset, strict=True)), shape)
    order = np.lexsort((glob, key))[:k]
    return vals[order], np.asarray(glob[order], dtype=np.int64)


def _block_hits(mask: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...], need: int) -> np.ndarray:
    idx = np.flatnonzero(np.asarray(mask).reshape(-1))[:need]
    if idx.size == 0:
        return np.empty(0, dtype=np.int64)
    local = np.unravel_index(idx, mask.shape)
    return np.asarray(np.ravel_multi_index(tuple(li + o for li, o in zip(local, offset, strict=True)), shape),
                      dtype=np.int64)


def _expand(ds: xr.Dataset, sub_dims: Sequence[str], flat: np.ndarray, limit: int | None
            ) -> dict[str, np.ndarray]:
    """Full-grid index arrays (dim -> indices) of the grid points under the sub-grid points ``flat``
    (flat indices over ``sub_dims``), each expanded over the other dims in C order; at most ``limit``."""
    dims = dim_order(ds)
    other = [d for d in dims if d not in sub_dims]
    other_shape = tuple(int(ds.sizes[d]) for d in other)
    mult = math.prod(other_shape)
    n_sub = len(flat) if limit is None else min(len(flat), -(-limit // max(mult, 1)))
    flat = np.asarray(flat[:n_sub], dtype=np.int64)
    sub_idx = np.unravel_index(flat, tuple(int(ds.sizes[d]) for d in sub_dims)) if sub_dims else ()
    reps = np.repeat(np.arange(len(flat)), mult)
    tile = np.tile(np.arange(mult), len(flat))
    other_idx = np.unravel_index(tile, other_shape) if other else ()
    out = {}
    for d in dims:
        if d in sub_dims:
            out[d] = np.asarray(sub_idx[list(sub_dims).index(d)])[reps]
        else:
            out[d] = np.asarray(other_idx[other.index(d)])
    if limit is not None:
        out = {d: v[:limit] for d, v in out.items()}
    return out


def top_points(ds: xr.Dataset, expr: str, by: str, k: int, *, ascending: bool = False
               ) -> dict[str, np.ndarray]:
    """Full-grid indices (dim -> index array, best first) of the ``k`` grid points where ``expr`` holds
    with the largest (``ascending``: smallest) finite ``by``. Ties keep grid order. Chunk-wise: every block
    contributes its own k best, merged at the end."""
    import dask

    if k < 1:
        raise QueryError(f"top: n={k}: give a positive number of points")
    by = rank_variable(ds, by)
    full = ds
    ds, keep, mask = pruned_query(ds, expr)
    if mask is None:
        return _no_points(full)
    value = ds[by]
    sub = [d for d in dim_order(ds) if d in mask.dims or d in value.dims]
    shape = tuple(int(ds.sizes[d]) for d in sub)
    import dask.array as da

    m = _on_dims(ds, mask, sub)
    v = _on_dims(ds, value, sub)
    score = da.where(m, v.astype(np.float64), np.nan)
    offsets = _offsets(score.chunks)
    blocks = score.to_delayed(optimize_graph=True)
    tasks = [dask.delayed(_block_topk)(blocks[i], tuple(int(offsets[a][j]) for a, j in enumerate(i)), shape,
                                       k, ascending) for i in np.ndindex(blocks.shape)]
    parts = dask.compute(*tasks)
    vals = np.concatenate([p[0] for p in parts]) if parts else np.empty(0)
    flat = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, dtype=np.int64)
    order = np.lexsort((flat, vals if ascending else -vals))[:k]
    return _unprune(_expand(ds, sub, flat[order], k), keep)


def top_blocks(meta: Any, expr: str, by: str, k: int, chunks: dict[str, tuple[int, ...]], read: Reader, *,
               ascending: bool = False, workers: int = 1) -> dict[str, np.ndarray]:
    """:func:`top_points` block by block with numpy on ``workers`` threads (``cusweep.query.count_blocks``'s
    path: ``meta`` describes the store, ``read`` reads a variable on a block): the same points in the same
    order (ties keep grid order), at most ``workers`` blocks in memory."""
    if k < 1:
        raise QueryError(f"top: n={k}: give a positive number of points")
    by = rank_variable(meta, by)
    plan = plan_blocks(meta, expr, chunks, also=[by])
    if plan is None:
        return _no_points(meta)
    bound = Bound(k)
    parts = map_blocks(lambda b: top_one(meta, expr, plan, b, read, by, k, ascending, bound), plan.blocks,
                       workers)
    return merge_top(meta, plan, parts, k, ascending)


class Bound:
    """The ``k`` best ranking keys (``-value``, or ``value`` with ``ascending``) of the blocks ranked so far
    on this thread pool or in this batch of a process pool: once ``k`` are known, a grid point whose key is
    above the k-th (``limit``) cannot be among the ``k`` best, and a block whose ranking variable has no
    key at or below it is skipped without reading the rest of the query's variables. Ties with the k-th
    are kept (grid order decides them at the merge). Pickles empty (each batch of a process pool starts
    afresh)."""

    def __init__(self, k: int) -> None:
        import threading

        self.k = k
        self.keys = np.empty(0)
        self.lock = threading.Lock()

    def limit(self) -> float | None:
        """The k-th best key so far; None until ``k`` keys are known."""
        keys = self.keys
        return float(keys.max()) if keys.size >= self.k else None

    def add(self, keys: np.ndarray) -> None:
        if keys.size == 0:
            return
        with self.lock:
            both = np.concatenate([self.keys, keys])
            if both.size > self.k:
                both = np.partition(both, self.k - 1)[:self.k]
            self.keys = both

    def __getstate__(self) -> dict[str, Any]:
        return {"k": self.k}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["k"])  # type: ignore[misc]


def top_one(meta: Any, expr: str, plan: BlockPlan, block: Mapping[str, np.ndarray], read: Reader, by: str,
            k: int, ascending: bool, bound: Bound | None = None,
            extra: Callable[[Any], Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best finite ``by`` of one block where the query holds (ties by grid index): their values
    and flat indices over ``plan.sub`` on the full grid. ``bound``: the best keys of the blocks ranked
    before (:class:`Bound`, updated here); the block's ranking variable is read first and the block is
    skipped when none of its values can enter the ``k`` best. ``extra``: a condition beyond the query,
    called with the block's values (:func:`cusweep.query.block_values`; the plan must read what it needs)
    and returning a mask that broadcasts over the block (``cusweep.best.OnLine``)."""
    first = block_values(meta, plan, block, read, names=[by])
    own = np.ascontiguousarray(first[by])  # on its own dims, length 1 along the block's others
    if own.shape == tuple(int(block[d].size) for d in plan.sub):
        return _top_one_same(meta, expr, plan, block, read, by, first, own, k, ascending, bound, extra)
    key = own.reshape(-1).astype(np.float64)
    if not ascending:
        key = -key
    limit = bound.limit() if bound is not None else None
    pool = None
    if limit is not None:
        pool = np.flatnonzero(key <= limit)  # NaN compares False
        if pool.size == 0:
            return np.empty(0), np.empty(0, dtype=np.int64)
    rest = [n for n in plan.names if n != by]
    values = block_values(meta, plan, block, read, names=rest)
    if by not in plan.sub:  # a coordinate is in ``values`` already
        values.data_vars[by] = first[by]
    mask = block_mask(meta, expr, plan, values)
    if extra is not None:
        mask = np.logical_and(mask, extra(values))
    spread = tuple(i for i, (a, b) in enumerate(zip(own.shape, mask.shape, strict=True)) if a == 1 and b != 1)
    lead = mask.ndim - len(spread)
    if spread != tuple(range(lead, mask.ndim)) or not mask.flags.c_contiguous:
        vals, glob = _top_one_full(plan, block, own, mask, spread, k, ascending, meta)
    else:
        vals, glob = _top_one_rows(plan, block, own, key, mask, pool, k, ascending, meta)
    if bound is not None:
        bound.add(vals if ascending else -vals)
    return vals, glob


def _top_one_same(meta: Any, expr: str, plan: BlockPlan, block: Mapping[str, np.ndarray], read: Reader,
                  by: str, first: Any, own: np.ndarray, k: int, ascending: bool, bound: Bound | None,
                  extra: Callable[[Any], Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_one` when ``by`` has every dim of the block (``best``'s case): a threshold first (the
    running k-th best of :class:`Bound`: the block is skipped when no value reaches it; else the block's
    own k-th best value where the mask holds), then one comparison over the block; only the points at or
    beyond it (ties included) are ranked."""
    value = own.reshape(-1)
    limit = bound.limit() if bound is not None else None
    hit = None
    if limit is not None:
        thr = limit if ascending else -limit
        with np.errstate(invalid="ignore"):
            hit = value <= thr if ascending else value >= thr  # NaN compares False
        if not hit.any():
            return np.empty(0), np.empty(0, dtype=np.int64)
    values = block_values(meta, plan, block, read, names=[n for n in plan.names if n != by])
    if by not in plan.sub:
        values.data_vars[by] = first[by]
    mask = block_mask(meta, expr, plan, values)
    if extra is not None:
        mask = np.logical_and(mask, extra(values))
    ok = np.ascontiguousarray(mask).reshape(-1)
    if hit is None:
        inside = value[ok]
        inside = inside[~np.isnan(inside)]
        if inside.size == 0:
            return np.empty(0), np.empty(0, dtype=np.int64)
        j = min(k, inside.size)
        thr = np.partition(inside, j - 1)[j - 1] if ascending else np.partition(inside, inside.size - j)[
            inside.size - j]
        with np.errstate(invalid="ignore"):
            hit = value <= thr if ascending else value >= thr  # NaN compares False
    hit &= ok
    idx = np.flatnonzero(hit)
    vals = value[idx].astype(np.float64)
    key = vals if ascending else -vals
    if idx.size > k:  # keep the k best (and every tie with the k-th: grid order decides below)
        keep = key <= np.partition(key, k - 1)[k - 1]
        idx, vals, key = idx[keep], vals[keep], key[keep]
    at = np.unravel_index(idx, mask.shape)
    shape = tuple(int(meta.sizes[d]) for d in plan.sub)
    glob = np.ravel_multi_index(tuple(block[d][i] for d, i in zip(plan.sub, at, strict=True)), shape)
    order = np.lexsort((glob, key))[:k]
    vals, glob = vals[order], np.asarray(glob[order], dtype=np.int64)
    if bound is not None:
        bound.add(vals if ascending else -vals)
    return vals, glob


def _top_one_rows(plan: BlockPlan, block: Mapping[str, np.ndarray], own: np.ndarray, key: np.ndarray,
                  mask: np.ndarray, pool: np.ndarray | None, k: int, ascending: bool, meta: Any
                  ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_one` when the dims ``by`` lacks are the block's last (the mask as one row of grid points
    per value of ``by``): only the rows of the best values are looked at, not the whole mask."""
    m = mask.size // max(key.size, 1)
    rows = mask.reshape(key.size, m)
    if pool is None:
        pool = np.flatnonzero(~np.isnan(key))
    hits = None
    if pool.size > k:  # the k best values first: enough when k of their rows hold somewhere
        pk = key[pool]
        best = pool[pk <= np.partition(pk, k - 1)[k - 1]]
        hit = rows[best].any(axis=1)
        if np.count_nonzero(hit) >= k:
            hits = best[hit]
    if hits is None:
        if pool.size * 4 < key.size:  # a few rows: gather them
            hits = pool[rows[pool].any(axis=1)]
        else:
            hits = pool[_any_over(rows, (1,)).reshape(-1)[pool]]
    hk = key[hits]
    if hits.size > k:
        hits = hits[hk <= np.partition(hk, k - 1)[k - 1]]
    r, j = np.nonzero(rows[hits])
    at = np.unravel_index(hits[r] * m + j, mask.shape)
    vals = own.reshape(-1)[hits[r]].astype(np.float64)
    shape = tuple(int(meta.sizes[d]) for d in plan.sub)
    glob = np.ravel_multi_index(tuple(block[d][i] for d, i in zip(plan.sub, at, strict=True)), shape)
    order = np.lexsort((glob, vals if ascending else -vals))[:k]
    return vals[order], np.asarray(glob[order], dtype=np.int64)


def _top_one_full(plan: BlockPlan, block: Mapping[str, np.ndarray], own: np.ndarray, mask: np.ndarray,
                  spread: tuple[int, ...], k: int, ascending: bool, meta: Any
                  ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_one` on the whole mask (any layout)."""
    shape = tuple(int(meta.sizes[d]) for d in plan.sub)
    ok = np.isnan(own)
    np.logical_not(ok, out=ok)
    ok = ok & mask  # (broadcast over the block)
    # the best values of ``by`` where some grid point holds: the k best grid points lie under them
    hit = _any_over(ok, spread) if spread else ok
    oidx = np.flatnonzero(hit)
    okey = own.reshape(-1)[oidx].astype(np.float64)
    okey = okey if ascending else -okey
    if oidx.size > k:
        kth = np.partition(okey, k - 1)[k - 1]
        oidx = oidx[okey <= kth]
    if spread:
        chosen = np.zeros(own.shape, dtype=bool)
        chosen.reshape(-1)[oidx] = True
        idx = np.flatnonzero(ok & chosen)
    else:
        idx = oidx
    at = np.unravel_index(idx, mask.shape)
    vals = np.broadcast_to(own, mask.shape)[at].astype(np.float64)
    key = vals if ascending else -vals
    glob = np.ravel_multi_index(tuple(block[d][i] for d, i in zip(plan.sub, at, strict=True)), shape)
    order = np.lexsort((glob, key))[:k]
    return vals[order], np.asarray(glob[order], dtype=np.int64)


def _any_over(ok: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``ok.any(axis=axes, keepdims=True)``; over a few trailing axes as ORs of strided columns (numpy's
    reduction over a short last axis is ~5x slower)."""
    lead = ok.ndim - len(axes)
    m = math.prod(ok.shape[lead:])
    if axes != tuple(range(lead, ok.ndim)) or m > 64 or not ok.flags.c_contiguous:
        return np.asarray(ok.any(axis=axes, keepdims=True))
    cols = ok.reshape(-1, m)
    out = cols[:, 0].copy()
    for j in range(1, m):
        out |= cols[:, j]
    return out.reshape(ok.shape[:lead] + (1,) * len(axes))


def merge_top(meta: Any, plan: BlockPlan, parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int,
              ascending: bool) -> dict[str, np.ndarray]:
    """The ``k`` best of the blocks' bests (:func:`top_one`) as full-grid index arrays (dim -> indices),
    best first, over every dim (the others expanded over their allowed values)."""
    vals = np.concatenate([p[0] for p in parts]) if parts else np.empty(0)
    flat = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, dtype=np.int64)
    order = np.lexsort((flat, vals if ascending else -vals))[:k]
    grid, keep = _plan_grid(meta, plan)
    return _unprune(_expand(grid, plan.sub, flat[order], k), keep)


def _plan_grid(meta: Any, plan: BlockPlan) -> tuple[Any, dict[str, np.ndarray]]:
    """The grid a plan's sub-grid points are expanded on (the dims of ``plan.sub`` whole, flat indices over
    them as the blocks give; the others at their allowed values), and the allowed indices of those others
    (for :func:`_unprune`)."""
    allowed = {d: plan.keep.get(d, np.arange(int(meta.sizes[d]))) for d in dim_order(meta)}
    grid = types.SimpleNamespace(sizes={d: int(meta.sizes[d]) if d in plan.sub else int(allowed[d].size)
                                        for d in dim_order(meta)})
    return grid, {d: allowed[d] for d in dim_order(meta) if d not in plan.sub}


def hits_one(meta: Any, expr: str, plan: BlockPlan, block: Mapping[str, np.ndarray], read: Reader, cap: int
             ) -> np.ndarray:
    """The first ``cap`` grid points of one block where the query holds (block order is grid order within a
    block): their flat indices over ``plan.sub`` on the full grid (the block path of ``_block_hits``)."""
    mask = block_mask(meta, expr, plan, block_values(meta, plan, block, read))
    idx = np.flatnonzero(mask)[:cap]
    if idx.size == 0 or not plan.sub:
        return np.asarray(idx, dtype=np.int64)
    local = np.unravel_index(idx, mask.shape)
    shape = tuple(int(meta.sizes[d]) for d in plan.sub)
    return np.asarray(np.ravel_multi_index(tuple(block[d][i] for d, i in zip(plan.sub, local, strict=True)),
                                           shape), dtype=np.int64)


def _hit_batches_blocks(meta: Any, expr: str, plan: BlockPlan, read: Reader, cap: int, workers: int
                        ) -> Iterator[np.ndarray]:
    """:func:`_hit_batches` on the block path: the hits (at most ``cap`` per block) of ``BLOCKS_PER_BATCH``
    blocks at a time, in block order, sorted within each batch."""
    for start in range(0, len(plan.blocks), BLOCKS_PER_BATCH):
        parts = map_blocks(lambda b: hits_one(meta, expr, plan, b, read, cap),
                           plan.blocks[start:start + BLOCKS_PER_BATCH], workers)
        found = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
        if found.size:
            yield found


def list_blocks(meta: Any, expr: str, plan: BlockPlan | None, read: Reader, limit: int | None, *,
                workers: int = 1) -> tuple[dict[str, np.ndarray], bool]:
    """:func:`list_points` block by block (``plan``: ``cusweep.query.plan_blocks`` of ``expr``; ``read``:
    zarr into numpy on ``workers`` threads): the same points, visiting the same blocks and stopping after
    the same batch."""
    if plan is None:
        return _no_points(meta), False
    grid, keep = _plan_grid(meta, plan)
    other = plan.mult
    if other == 0:
        return _unprune(_expand(grid, plan.sub, np.empty(0, dtype=np.int64), 0), keep), False
    need = None if limit is None else -(-(limit + 1) // other)  # sub-grid hits for limit + 1 points
    cap = need if need is not None else math.prod(int(meta.sizes[d]) for d in plan.sub)
    found: list[np.ndarray] = []
    n_found = 0
    for part in _hit_batches_blocks(meta, expr, plan, read, cap, workers):
        found.append(part)
        n_found += part.size
        if need is not None and n_found >= need:
            break
    flat = np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    more = limit is not None and flat.size * other > limit
    return _unprune(_expand(grid, plan.sub, flat, limit), keep), more


def iter_blocks(meta: Any, expr: str, plan: BlockPlan | None, read: Reader, *, batch: int = ROWS_PER_BATCH,
                workers: int = 1) -> Iterator[dict[str, np.ndarray]]:
    """:func:`iter_points` block by block (as :func:`list_blocks` reads them): the same batches of points."""
    if plan is None:
        return
    grid, keep = _plan_grid(meta, plan)
    cap = math.prod(int(meta.sizes[d]) for d in plan.sub)
    yield from _rows_of(_hit_batches_blocks(meta, expr, plan, read, cap, workers), list(plan.sub),
                        dim_order(meta), grid.sizes, keep, batch)


def _rows_of(batches: Iterator[np.ndarray], sub: Sequence[str], dims: Sequence[str], sizes: Mapping[Any, int],
             keep: Mapping[str, np.ndarray], batch: int) -> Iterator[dict[str, np.ndarray]]:
    """The sub-grid hits of each of ``batches`` (flat indices over ``sub``) expanded over the other dims (C
    order, their ``sizes``), ``batch`` points at a time, as full-grid index arrays; no batch is read when
    some other dim is empty."""
    other = [d for d in dims if d not in sub]
    other_shape = tuple(int(sizes[d]) for d in other)
    sub_shape = tuple(int(sizes[d]) for d in sub)
    mult = math.prod(other_shape)
    if mult == 0:
        return
    for flat in batches:
        n = len(flat) * mult
        for start in range(0, n, batch):
            idx = np.arange(start, min(n, start + batch), dtype=np.int64)
            s_i, o_i = np.divmod(idx, mult)
            sub_idx = np.unravel_index(flat[s_i], sub_shape) if sub else ()
            other_idx = np.unravel_index(o_i, other_shape) if other else ()
            yield _unprune({d: np.asarray(sub_idx[list(sub).index(d)] if d in sub
                                          else other_idx[list(other).index(d)], dtype=np.int64)
                            for d in dims}, keep)


def rank_variable(ds: xr.Dataset, by: str) -> str:
    """The store name of the variable to rank by; QueryError when it is unknown or not numeric."""
    by = resolve(ds, by, "variable to rank by")
    if _is_bool(ds, by) or _is_str(ds, by):
        raise QueryError(f"by: {by} is not numeric; rank by a numeric variable, e.g. by=\"n_coh\"")
    return by


def no_points(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Empty index arrays of every dim: no grid point."""
    return _no_points(ds)


def list_points(ds: xr.Dataset, expr: str, limit: int | None) -> tuple[dict[str, np.ndarray], bool]:
    """Full-grid indices of the first ``limit`` (None: all) grid points where ``expr`` holds, found block
    by block (stops early), and whether more exist."""
    import dask

    full = ds
    ds, keep, mask = pruned_query(ds, expr)
    if mask is None:
        return _no_points(full), False
    sub = [str(d) for d in mask.dims]
    other = math.prod(int(n) for d, n in ds.sizes.items() if d not in sub)
    if other == 0:
        return _expand(ds, sub, np.empty(0, dtype=np.int64), 0), False
    need = None if limit is None else -(-(limit + 1) // other)  # sub-grid hits for limit + 1 points
    if not sub:
        hit = bool(np.asarray(mask.values))
        flat = np.zeros(1 if hit else 0, dtype=np.int64)
    else:
        shape = tuple(int(ds.sizes[d]) for d in sub)
        m = _on_dims(ds, mask, sub)
        offsets = _offsets(m.chunks)
        blocks = m.to_delayed(optimize_graph=True)
        ids = list(np.ndindex(blocks.shape))
        found: list[np.ndarray] = []
        n_found = 0
        batch = 8
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            cap = need if need is not None else int(np.prod(shape))
            parts = dask.compute(*[dask.delayed(_block_hits)(
                blocks[i], tuple(int(offsets[a][j]) for a, j in enumerate(i)), shape, cap) for i in chunk])
            for p in parts:
                found.append(p)
                n_found += len(p)
            if need is not None and n_found >= need:
                break
        # blocks are visited in block order: report the hits found in grid (C) order
        flat = np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    total_hint = len(flat) * other
    more = limit is not None and total_hint > limit
    return _unprune(_expand(ds, sub, flat, limit), keep), more


def values_at(ds: xr.Dataset, points: Mapping[str, np.ndarray], columns: Sequence[str]
              ) -> dict[str, np.ndarray]:
    """Values (store units; bools, str labels) of ``columns`` at the grid points ``points`` (dim -> index
    array), one array per column; the variables are read chunk-wise with vectorised indexing."""
    n = len(next(iter(points.values()))) if points else 0
    if n == 0:  # nothing to read (and Dask not imported: a query no grid value matches answers at once)
        return {c: np.empty(0, dtype=ds[c].dtype) for c in columns}
    import dask

    lazy: dict[str, Any] = {}
    for c in columns:
        arr = ds[c]
        if c in ds.sizes and arr.dims == (c,):
            lazy[c] = np.asarray(arr.values)[points[c]] if n else np.empty(0)
            continue
        data = arr.data
        index = tuple(points[str(d)] for d in arr.dims)
        if not arr.dims:
            lazy[c] = np.repeat(np.asarray(arr.values), n)
        elif hasattr(data, "vindex"):
            lazy[c] = data.vindex[index] if n else np.empty(0, dtype=arr.dtype)
        else:
            lazy[c] = np.asarray(data)[index]
    keys = list(lazy)
    values = dask.compute(*[lazy[key] for key in keys])
    return {k: np.asarray(v) for k, v in zip(keys, values, strict=True)}


def records(ds: xr.Dataset, points: Mapping[str, np.ndarray], columns: Sequence[str]) -> list[dict[str, Any]]:
    """``values_at`` as one dict per point (Python scalars: bool, float, str)."""
    cols = values_at(ds, points, columns)
    n = len(next(iter(points.values()))) if points else 0
    lists = {c: [_py(x) for x in cols[c].tolist()] if cols[c].dtype.kind in "OUST" else cols[c].tolist()
             for c in columns}
    return [{c: lists[c][i] for c in columns} for i in range(n)]


def _py(x: Any) -> Any:
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating | float):
        return float(x)
    if isinstance(x, bytes):
        return x.decode()
    return x if isinstance(x, str) else str(x)


def columns_for(ds: xr.Dataset, expr: str, by: str | None = None, extra: Sequence[str] = (), *,
                by_what: str = "variable to rank by", extra_what: str = "column") -> list[str]:
    """Every dim, then every variable named in ``expr``, ``by`` and ``extra`` (resolved, no duplicates);
    ``by_what``/``extra_what`` name them in the error for an unknown name."""
    cols = list(dim_order(ds))
    named = [resolve(ds, n) for n in names_in(parse(expr))]
    if by:
        named.append(resolve(ds, by, by_what))
    named += [resolve(ds, v, extra_what) for v in extra]
    for n in named:
        if n not in cols:
            cols.append(n)
    return cols


def _hit_batches(ds: xr.Dataset, mask: xr.DataArray, sub: Sequence[str]) -> Iterator[np.ndarray]:
    """Flat indices (over ``sub``, the mask's dims) of the points where ``mask`` holds, a few blocks at a
    time, in block order (grid order within each batch)."""
    import dask

    if not sub:
        if bool(np.asarray(mask.values)):
            yield np.zeros(1, dtype=np.int64)
        return
    shape = tuple(int(ds.sizes[d]) for d in sub)
    m = _on_dims(ds, mask, sub)
    offsets = _offsets(m.chunks)
    blocks = m.to_delayed(optimize_graph=True)
    ids = list(np.ndindex(blocks.shape))
    cap = int(np.prod(shape))
    for start in range(0, len(ids), BLOCKS_PER_BATCH):
        chunk = ids[start:start + BLOCKS_PER_BATCH]
        parts = dask.compute(*[dask.delayed(_block_hits)(
            blocks[i], tuple(int(offsets[a][j]) for a, j in enumerate(i)), shape, cap) for i in chunk])
        found = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
        if found.size:
            yield found


def iter_points(ds: xr.Dataset, expr: str, *, batch: int = ROWS_PER_BATCH) -> Iterator[dict[str, np.ndarray]]:
    """Every grid point where ``expr`` holds, as full-grid index arrays (dim -> indices) of at most
    ``batch`` points each: the mask is evaluated a few blocks at a time and each sub-grid hit is expanded
    over the dims the expression does not involve piece by piece, so memory stays bounded by ``batch``
    whatever the number of matching points. Points come block by block (grid order within a block)."""
    ds, keep, mask = pruned_query(ds, expr)
    if mask is None:
        return
    sub = [str(d) for d in mask.dims]
    yield from _rows_of(_hit_batches(ds, mask, sub), sub, dim_order(ds), ds.sizes, keep, batch)


def points_of(ds: xr.Dataset, point: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Index arrays of one grid point given by grid values (dim -> value) or indices (dim -> int)."""
    out = {}
    for d in dim_order(ds):
        v = point[d]
        if isinstance(v, int | np.integer):
            out[d] = np.asarray([int(v)])
        else:
            out[d] = np.asarray([int(np.flatnonzero(np.asarray(ds[d].values) == v)[0])])
    return out
