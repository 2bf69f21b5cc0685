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
    other row dominates (>= in every objective and > in one); equal rows are all kept."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
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
        vals = np.stack([np.asarray(p, dtype=np.float64)[m] for p in parts[1:]], axis=1) * sign
        finite = np.all(np.isfinite(vals), axis=1)
        candidates += int(np.count_nonzero(m))
        local = np.stack([ix[finite] + off[b] for ix, off, b in zip(np.nonzero(m), offsets, block,
                                                                    strict=True)], axis=1)
        vals = vals[finite]
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


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
