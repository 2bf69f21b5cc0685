"""``refine``: a child sweep that zooms around the best design of a store (or extends past the grid edge
it sits on), written as a readable, re-runnable sweep file, computed, and answered like ``best``.

The child sweep is the parent's sweep (its stored text, parsed again) with the axes of the refined dims
(the swept continuous dims ``best`` refines, ``BestResult.refined_dims``) replaced by ranges of the same
number of points: zoomed ``zoom`` times (the parent's local grid spacing divided by ``zoom``) around the
refined optimum, kept inside the parent's range; or, for a dim whose optimum lies on an edge of the grid
(or every edge dim with ``extend``), a window of the parent's spacing centred on that edge, so that half of
it lies past the edge. Log-spaced axes stay log-spaced (the zoom and the window are taken in log space).
Every other axis, and every other key of the sweep, is the parent's.

The library never runs anything itself here except through ``cusweep.execute.run_sweep`` (``run``); the
file is written by ``child_sweep_text`` + the caller, or by ``refine``.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SelectionError, SpecError

if TYPE_CHECKING:
    import xarray as xr

    from .best import BestResult

__all__ = ["RefineResult", "child_axes", "child_sweep_text", "refine", "to_toml"]

#: default zoom factor
ZOOM = 4
#: store units of the dims a child axis may be written for
_UNITS = {"period": "m", "amplitude": "m", "sigma_z": "m", "sigma_r": "m", "thickness": "m", "energy": "eV",
          "photon_energy": "eV"}


@dataclass
class RefineResult:
    """A refinement: the child sweep file and store, the axes changed and why, and the child's best."""

    parent: str
    parent_sweep: str
    sweep_file: str
    store: str
    axes: dict[str, dict[str, Any]]
    reason: str
    best: BestResult
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The child's ``best`` (``BestResult.to_dict()``) with ``refine``: parent, files, axes, reason."""
        return {**self.best.to_dict(),
                "refine": {"parent": {"path": self.parent, "sweep": self.parent_sweep},
                           "sweep_file": self.sweep_file, "store": self.store, "axes": self.axes,
                           "reason": self.reason, "notes": self.notes}}

    to_json = to_dict

    def text(self, *, si: bool = False) -> str:
        head = [f"refine: {self.reason}", f"refine: child sweep {self.sweep_file} computed into {self.store}"]
        head += [f"note: {n}" for n in self.notes]
        return "\n".join(head) + "\n" + self.best.text(si=si)


def _nearest(values: np.ndarray, x: float) -> int:
    return int(np.argmin(np.abs(values - x)))


def _at_end(grid: np.ndarray, x: float, edge: str) -> bool:
    from .best import EDGE_TOLERANCE

    end = grid[0] if edge == "lower" else grid[-1]
    return bool(abs(x - end) <= EDGE_TOLERANCE * max(abs(end), abs(grid[-1] - grid[0])))


def _spacing_of(doc: dict[str, Any], dim: str) -> str:
    raw = doc.get("axes", {}).get(dim, doc.get(dim))
    if isinstance(raw, dict) and raw.get("spacing") == "log":
        return "log"
    return "linear"


def child_axes(ds: xr.Dataset, result: BestResult, *, zoom: float = ZOOM, extend: bool = False
               ) -> tuple[dict[str, dict[str, Any]], str]:
    """The new axes (dim -> ``{"start", "stop", "num", "spacing"}`` in store units) of a child sweep around
    ``result`` (``best`` on ``ds``), and the reason in words.

    SpecError for a zoom <= 1; SelectionError when nothing can be refined or, with ``extend``, when the
    best design lies on no edge of the grid."""
    from .stored import spec_of

    if not (isinstance(zoom, int | float) and math.isfinite(zoom) and zoom > 1):
        raise SpecError(f"zoom: {zoom!r} is not a zoom factor (allowed: a number > 1); give e.g. 4")
    dims = tuple(result.refined_dims)
    if not dims:
        raise SelectionError(f"by: best found nothing to refine ({'; '.join(result.notes)}); sweep a dim "
                             f"{result.by} depends on")
    spec_of(ds)  # a clear error when the store holds no sweep text
    doc = tomllib.loads(str(ds.attrs["sweep"]))
    # the refined optimum on an edge of the grid is extended past it; with extend, also the grid best's edges
    edges = {e["dim"]: e["edge"] for e in result.edges if e["dim"] in dims and (extend or _at_end(
        np.asarray(ds[e["dim"]].values, dtype=np.float64), float(result.refined.point[e["dim"]]), e["edge"]))}
    if extend and not edges:
        raise SelectionError("extend: the best design lies on no edge of the swept grid; drop --extend to "
                             "zoom around it")
    axes: dict[str, dict[str, Any]] = {}
    words = []
    for d in dims:
        grid = np.asarray(ds[d].values, dtype=np.float64)
        n = int(grid.size)
        log = _spacing_of(doc, d) == "log" and grid[0] > 0
        f = np.log if log else (lambda a: a)
        u = np.asarray(f(grid), dtype=np.float64)
        c = float(f(np.float64(result.refined.point[d])))
        i = _nearest(u, c)
        h = float(np.mean(np.diff(u[max(i - 1, 0):i + 2])))  # local spacing (in log for a log axis)
        if d in edges:
            edge = u[0] if edges[d] == "lower" else u[-1]
            half = (n - 1) * h / 2
            lo, hi = edge - half, edge + half
            if not log and lo <= 0 < grid[0]:
                lo = grid[0] / 2
            words.append(f"{d} extended past the {edges[d]} edge of the grid")
        else:
            half = (n - 1) * h / zoom / 2
            lo, hi = c - half, c + half
            if lo < u[0]:
                lo, hi = u[0], u[0] + 2 * half
            if hi > u[-1]:
                lo, hi = u[-1] - 2 * half, u[-1]
            lo = max(lo, u[0])
            words.append(f"{d} zoomed {zoom:g}x")
        start, stop = (math.exp(lo), math.exp(hi)) if log else (float(lo), float(hi))
        axes[d] = {"start": start, "stop": stop, "num": n, "spacing": "log" if log else "linear"}
    where = f" subject to {result.constraint}" + (f", facility {result.facility}" if result.facility else "")
    reason = f"around the best {result.by}{where}: " + ", ".join(words)
    return axes, reason


def _quantity(dim: str, x: float) -> str:
    return f"{x!r} {_UNITS[dim]}" if dim in _UNITS else repr(x)


def child_sweep_text(ds: xr.Dataset, axes: dict[str, dict[str, Any]], *, parent: str, reason: str) -> str:
    """The child sweep file: the parent's stored sweep with ``axes`` replaced, a new name and a comment
    header recording the parent store, its sweep and the reason."""
    doc = tomllib.loads(str(ds.attrs["sweep"]))
    parent_name = str(doc.get("name", ds.attrs.get("name", "sweep")))
    doc["name"] = f"{parent_name}-refined"
    section = doc.setdefault("axes", {})
    for d, a in axes.items():
        raw = {"start": _quantity(d, a["start"]), "stop": _quantity(d, a["stop"]), "num": a["num"]}
        if a["spacing"] == "log":
            raw["spacing"] = "log"
        if d in doc and d not in section:
            del doc[d]
        section[d] = raw
    header = [f"# refined from the store {parent} (sweep {parent_name!r})",
              f"# reason: {reason}", "# re-run with: cusweep run THIS_FILE --store CHILD.zarr", ""]
    return "\n".join(header) + to_toml(doc)


def to_toml(doc: dict[str, Any]) -> str:
    """TOML of scalars, lists, inline tables, tables and arrays of tables (what sweep files use)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for k, v in doc.items():
        if isinstance(v, dict) and k == "axes":
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in tables:
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]"] + [f"{_key(a)} = {_value(b)}" for a, b in v.items()]
        else:
            for item in v:
                lines += ["", f"[[{_key(k)}]]"] + [f"{_key(a)} = {_value(b)}" for a, b in item.items()]
    return "\n".join(lines) + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v) if not isinstance(v, float) or math.isfinite(v) else ("nan" if math.isnan(v) else
                                                                               ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(a)} = {_value(b)}" for a, b in v.items()) + " }"
    raise SpecError(f"sweep: cannot write {v!r} to a sweep file")


def refine(parent: str, by: str, output: str, *, where: str | None = None, facility: str | None = None,
           zoom: float = ZOOM, extend: bool = False, client: Any = None, **run: Any) -> RefineResult:
    """Zoom around (or extend past the edge of) the best ``by`` of the store ``parent``: write the child
    sweep file next to ``output`` (``output`` with ``.toml`` for ``.zarr``), compute it into ``output``
    (``cusweep.execute.run_sweep``; ``run``: its keywords, e.g. workers), record ``parent`` in the child
    store's attrs, and answer its best. SpecError (nothing written) for bad input."""
    from . import store as _store
    from .best import best
    from .execute import run_sweep
    from .spec import loads
    from .stored import StoredSweep

    sweep = StoredSweep(parent)
    if os.path.abspath(str(output)) == os.path.abspath(sweep.path):
        raise SpecError(f"output: {output} is the parent store; give a new path for the child, e.g. "
                        f"{sweep.path.removesuffix('.zarr')}-refined.zarr")
    result = best(sweep.ds, by, where=where, facility=facility, setup=sweep.setup)
    axes, reason = child_axes(sweep.ds, result, zoom=zoom, extend=extend)
    text = child_sweep_text(sweep.ds, axes, parent=sweep.path, reason=reason)
    sweep_file = sweep_path_for(str(output))
    if os.path.exists(sweep_file):
        with open(sweep_file, encoding="utf-8") as fh:  # noqa: PTH123
            mine = fh.read().startswith("# refined from the store ")
        if not mine:
            raise SpecError(f"output: {sweep_file} exists and is not a child sweep written by refine; give "
                            "another -o path (the child sweep file is written beside the child store)")
    child_spec = loads(text, source=sweep_file)  # a bad child is refused before anything is written
    if _store.exists(str(output)):
        from .plan import make_plan

        _store.check_target(str(output), make_plan(child_spec))  # another sweep's store is refused here
    with open(sweep_file, "w", encoding="utf-8") as fh:  # noqa: PTH123
        fh.write(text)
    run_sweep(child_spec, str(output), client, **run)
    import zarr

    group = zarr.open_group(_store._store_arg(str(output)), mode="r+")
    group.attrs["parent"] = {"path": sweep.path, "sweep": sweep.name}
    child = StoredSweep(str(output))
    answer = best(child.ds, result.by, where=where, facility=facility, setup=child.setup)
    return RefineResult(parent=sweep.path, parent_sweep=sweep.name, sweep_file=sweep_file, store=str(output),
                        axes=axes, reason=reason, best=answer)


def sweep_path_for(output: str) -> str:
    """The child sweep file written next to the child store: ``child.zarr`` -> ``child.toml``."""
    base = output.rstrip("/")
    return (base.removesuffix(".zarr") if base.endswith(".zarr") else base) + ".toml"
