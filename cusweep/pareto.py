"""The Pareto front of a store: the grid points where ``where`` holds that no other such point beats in
every objective (maximise some variables, minimise others), computed chunk by chunk.

Each block of the store's chunk grid is read on its own (the mask of ``where`` and the objectives, lazily
broadcast on the store's chunks); the non-dominated points of the block are merged into a running front,
so memory holds one block and the front, whatever the store size. A point with a non-finite objective is
left out. Points equal in every objective are all kept.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import QueryError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ParetoResult", "nondominated", "pareto"]

SENSES = ("max", "min")


def nondominated(values: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the rows of ``values`` (n points x k objectives, all maximised) that no
    other row dominates (>= in every objective and > in one); equal rows are all kept.

    Exact and O(n log n) for two and three objectives (a sort and a sweep over the distinct rows: a
    running maximum for two, a staircase of the (2nd, 3rd) objectives for three), so that a block of
    millions of candidates costs seconds; more objectives take the pairwise culling loop."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    k = values.shape[1]
    if k > 3:
        if n > PREFILTER_MIN:  # drop, vectorised, the rows that a few strong rows dominate (exact: they
            alive = _not_dominated_by_strong_rows(values)  # are dominated); the loop sees the rest
            if not alive.all():
                return np.flatnonzero(alive)[_nondominated_culling(values[alive])]
        return _nondominated_culling(values)
    # distinct rows, in descending lexicographic order: a row's dominators all come before it
    order = np.lexsort(values.T[::-1])[::-1]
    ordered = values[order]
    starts = np.concatenate([[True], np.any(ordered[1:] != ordered[:-1], axis=1)])
    rows = ordered[starts]
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    if k == 1:
        keep = np.zeros(len(rows), dtype=bool)
        keep[0] = True
    elif k == 2:
        # a distinct row is dominated iff an earlier one has a 2nd objective at least as large
        before = np.maximum.accumulate(np.concatenate([[-np.inf], rows[:-1, 1]]))
        keep = rows[:, 1] > before
    else:
        keep = _staircase(rows)
    return np.flatnonzero(keep[inverse])


#: above this many rows of more than three objectives, ``nondominated`` first drops the rows a few strong
#: rows dominate
PREFILTER_MIN = 10_000
#: weighted sums (on objectives scaled to 0..1) whose maximisers serve as strong rows, besides each
#: objective's maximiser
PREFILTER_WEIGHTS = 24


def _not_dominated_by_strong_rows(values: np.ndarray) -> np.ndarray:
    """False for the rows dominated by one of a few strong rows (each objective's maximiser and the
    maximisers of fixed weighted sums of the scaled objectives); a filter that only drops dominated rows."""
    lo, hi = values.min(axis=0), values.max(axis=0)
    scaled = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    weights = np.random.default_rng(0).dirichlet(np.ones(values.shape[1]), PREFILTER_WEIGHTS)
    strong = dict.fromkeys([*np.argmax(scaled @ weights.T, axis=0).tolist(),
                            *np.argmax(values, axis=0).tolist()])
    del scaled
    idx = np.arange(values.shape[0])
    cols = [np.ascontiguousarray(values[:, j]) for j in range(values.shape[1])]
    for i in strong:  # each pass looks only at the rows still alive (the first ones drop most)
        s = values[i]
        le = np.ones(len(idx), dtype=bool)
        lt = np.zeros(len(idx), dtype=bool)
        for j, col in enumerate(cols):
            le &= col <= s[j]
            lt |= col < s[j]
        keep = ~(le & lt)
        idx = idx[keep]
        cols = [c[keep] for c in cols]
    alive = np.zeros(values.shape[0], dtype=bool)
    alive[idx] = True
    return alive


def _staircase(rows: np.ndarray) -> np.ndarray:
    """Distinct rows (3 objectives) in descending lexicographic order -> non-dominated flags. Every earlier
    row is >= in the 1st objective, so a row is dominated iff an earlier row is >= in the 2nd and 3rd: the
    earlier rows kept on a staircase of (2nd, 3rd) sorted by the 2nd ascending (3rd then descending)."""
    import bisect

    b_col = rows[:, 1].tolist()
    c_col = rows[:, 2].tolist()
    keep = np.zeros(len(b_col), dtype=bool)
    stair_b: list[float] = []   # ascending
    stair_c: list[float] = []   # descending along stair_b
    for i, (b, c) in enumerate(zip(b_col, c_col, strict=True)):
        j = bisect.bisect_left(stair_b, b)
        if j < len(stair_b) and stair_c[j] >= c:
            continue  # an earlier row is >= in every objective (and differs: rows are distinct)
        keep[i] = True
        # the staircase entries this row covers (2nd <= b and 3rd <= c) lie just before j; drop them
        lo = j
        while lo > 0 and stair_c[lo - 1] <= c:
            lo -= 1
        if j < len(stair_b) and stair_b[j] == b:  # same 2nd objective, smaller 3rd: covered too
            j += 1
        del stair_b[lo:j], stair_c[lo:j]
        stair_b.insert(lo, b)
        stair_c.insert(lo, c)
    return keep


def _nondominated_culling(values: np.ndarray) -> np.ndarray:
    """The pairwise culling loop (any number of objectives; O(n x front))."""
    order = np.argsort(-values.sum(axis=1), kind="stable")  # likely-dominant points first: fast culls
    pts, idx = values[order], order
    i = 0
    while i < len(pts):
        p = pts[i]
        keep = np.any(pts > p, axis=1) | np.all(pts == p, axis=1)
        keep[i] = True
        i = int(np.count_nonzero(keep[:i])) + 1
        pts, idx = pts[keep], idx[keep]
    return np.sort(idx)


@dataclass
class ParetoResult:
    """The front: ``points`` (one dict per design: every dim, then the objectives, store units), best
    first in the first objective."""

    objectives: list[tuple[str, str]]
    where: str
    dims: list[str]
    points: list[dict[str, Any]]
    units: dict[str, str] = field(default_factory=dict)
    candidates: int = 0

    def to_dict(self) -> dict[str, Any]:
        """``{"objectives": [{"name", "sense"}], "where", "units", "front": [...]}`` in store units."""
        return {"objectives": [{"name": n, "sense": s} for n, s in self.objectives], "where": self.where,
                "candidates": self.candidates, "units": self.units,
                "front": [{k: _jsonable(v) for k, v in p.items()} for p in self.points]}

    to_json = to_dict

    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self.dims, *(n for n, _ in self.objectives)]))

    def csv(self) -> str:
        """One row per design, a header of names with their store units (``period [m]``)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = self.columns()
        w.writerow([f"{c} [{self.units.get(c, '1')}]" for c in cols])
        for p in self.points:
            w.writerow([_jsonable(p[c]) for c in cols])
        return buf.getvalue()

    def text(self, *, si: bool = False) -> str:
        from .display import format_number, header, to_display

        cols = self.columns()
        head = [header(c, self.units.get(c, "1"), si=si) for c in cols]

        def cell(c: str, v: Any) -> str:
            x = to_display(c, v, si=si)
            return format_number(x) if isinstance(x, float) else str(x)
        rows = [head] + [[cell(c, p[c]) for c in cols] for p in self.points]
        widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
        goal = ", ".join(f"{s} {n}" for n, s in self.objectives)
        lines = [f"Pareto front ({goal}) subject to {self.where}: {len(self.points)} non-dominated of "
                 f"{self.candidates} designs"]
        lines += ["  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        return "\n".join(lines)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def pareto(ds: xr.Dataset, objectives: Sequence[tuple[str, str]], *, where: str | None = "feasible"
           ) -> ParetoResult:
    """The non-dominated grid points where ``where`` holds (default ``feasible``) for ``objectives``
    (``(name, "max" | "min")``, at least two), chunk by chunk with a running front.

    QueryError for fewer than two objectives, a bad sense, an unknown or non-numeric name, or a bad
    ``where``."""
    import dask

    from .query import _on_dims, dim_order, parse, pruned_query, resolve, units_of

    where = where or "true"
    parse(where)
    if len(objectives) < 2:
        raise QueryError("maximise/minimise: a Pareto front needs at least two objectives; give e.g. "
                         "--max photons_coh --min amplitude")
    objs: list[tuple[str, str]] = []
    for name, sense in objectives:
        if sense not in SENSES:
            raise QueryError(f"maximise/minimise: sense {sense!r} of {name} (allowed: max, min)")
        n = resolve(ds, name, "objective")
        if ds[n].dtype.kind not in "fiu":
            raise QueryError(f"maximise/minimise: {n} is not numeric; give a numeric variable or dim")
        if any(n == o for o, _ in objs):
            raise QueryError(f"maximise/minimise: {n} given twice; give each objective once")
        objs.append((n, sense))
    sub, _, mask = pruned_query(ds, where)
    dims = list(dim_order(ds))
    units = {d: units_of(ds, d) for d in dims} | {n: units_of(ds, n) for n, _ in objs}
    if mask is None:
        return ParetoResult(objs, where, dims, [], units, 0)
    sdims = list(dim_order(sub))
    arrays = [_on_dims(sub, mask, sdims)] + [_on_dims(sub, sub[n], sdims) for n, _ in objs]
    sign = np.array([1.0 if s == "max" else -1.0 for _, s in objs])
    numblocks = arrays[0].numblocks
    offsets = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) for c in arrays[0].chunks]
    front_vals = np.zeros((0, len(objs)))
    front_idx = np.zeros((0, len(sdims)), dtype=np.int64)
    candidates = 0
    for block in np.ndindex(*numblocks):
        parts = dask.compute(*[a.blocks[block] for a in arrays])
        m = np.asarray(parts[0], dtype=bool)
        candidates += int(np.count_nonzero(m))
        cube = [np.asarray(p, dtype=np.float64) * s for p, s in zip(parts[1:], sign, strict=True)]
        m = m & np.logical_and.reduce([np.isfinite(c) for c in cube])
        m &= ~_dominated_by_a_neighbour(cube, m)
        vals = np.stack([c[m] for c in cube], axis=1)
        local = np.stack([ix + off[b] for ix, off, b in zip(np.nonzero(m), offsets, block, strict=True)],
                         axis=1)
        if vals.shape[0] == 0:
            continue
        k = nondominated(vals)
        vals, local = vals[k], local[k]
        allv = np.concatenate([front_vals, vals])
        alli = np.concatenate([front_idx, local.astype(np.int64)])
        k = nondominated(allv)
        front_vals, front_idx = allv[k], alli[k]
    order = np.argsort(-front_vals[:, 0], kind="stable")
    coords = {d: np.asarray(sub[d].values) for d in sdims}
    points = []
    for j in order:
        p: dict[str, Any] = {}
        for d in dims:
            if d in coords:
                p[d] = _scalar(coords[d][front_idx[j, sdims.index(d)]])
            else:
                p[d] = _scalar(np.asarray(sub[d].values).reshape(-1)[0])
        for (n, _), s, v in zip(objs, sign, front_vals[j], strict=True):
            p[n] = float(v * s)
        points.append(p)
    return ParetoResult(objs, where, dims, points, units, candidates)


def _dominated_by_a_neighbour(cube: list[np.ndarray], m: np.ndarray) -> np.ndarray:
    """Grid points of a block (objectives ``cube``, maximised; candidates ``m``) that a candidate next to
    them along one dim dominates: dominated, so never on the front. A vectorised pass that drops most of
    a smooth grid (a yield growing with bunching: every point but the largest bunching) before the exact
    ``nondominated``."""
    out = np.zeros(m.shape, dtype=bool)
    for axis in range(m.ndim):
        if m.shape[axis] < 2:
            continue
        for here, there in ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None))):
            a = [slice(None)] * m.ndim
            b = [slice(None)] * m.ndim
            a[axis], b[axis] = here, there
            ta, tb = tuple(a), tuple(b)
            ge = m[tb] & m[ta]  # both candidates
            gt = np.zeros_like(ge)
            for c in cube:
                ge &= c[tb] >= c[ta]
                gt |= c[tb] > c[ta]
            out[ta] |= ge & gt
    return out


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
