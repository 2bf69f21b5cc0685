"""The best design: maximise a variable subject to ``feasible`` (and user constraints), first on the grid
of a store (chunk-wise), then refined off-grid in the continuous CU parameters with scipy.optimize.

Refinement: SLSQP over every swept numeric dim the variable depends on (period, amplitude, energy, sigma_z,
thickness, photon_energy; not bunching or n_positrons, not the dims fixed by ``facility`` or by an
equality in ``where``), in log space within the grid's bounds (linear for a dim whose grid starts at 0),
from the best few grid points; the other dims stay at the grid-best values.
The model is re-evaluated through ``cusweep.model.evaluate`` with the Setup of the stored sweep
(``cusweep.stored.setup_of``, the route a run takes); every constraint of ``cusweep.feasibility`` becomes
an inequality on its margin (the model quantity that must stay below 1), kept a small distance inside,
plus ``where`` comparisons of a variable or dim with a number. The refined design is re-checked with the
full ``where`` expression; if the optimiser finds nothing better or leaves the region, the grid design
is reported as the refined one, with a note.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import feasibility
from .display import format_number, format_value
from .errors import NoFeasibleDesign, QueryError, SpecError
from .photon_line import LINE_CONDITION, LINE_OUTPUTS, line_ratio, on_line, on_line_mask
from .quantities import VARIABLES
from .query import And, Compare, Name, Num, convert, dim_order, parse, resolve, units_of
from .select import facility_at, facility_photon, ridge_sweep_text, scalar
from .stored import evaluate_point, setup_of
from .top import top_points

if TYPE_CHECKING:
    import xarray as xr

    from .model import Setup
    from .stored import StoredSweep

__all__ = ["BestResult", "Design", "OnLine", "PerResult", "best", "best_per", "evaluate_point", "line_ratio",
           "margins", "setup_from_store"]

#: constraints are kept this far (relative) inside their boundary, so the refined design is feasible
MARGIN = 1e-6
#: a refined value this close (relative) to the end of its dim's grid lies on the edge
EDGE_TOLERANCE = 1e-9
#: grid points the refinement starts from
STARTS = 8
#: dims never refined: the yields grow monotonically with them (as b^2 and Nb^2), so the largest grid value
#: is already the best, and b is what the experiment measures (`cusweep infer-b`), not a design choice
NOT_REFINED = ("bunching", "n_positrons")
#: model outputs every design is evaluated with: the margins of every constraint, and feasible
_NEEDED = (*feasibility.MARGINS, "feasible")


#: the grid indices of a facility preset (``cusweep.select.facility_at``; kept under its former name)
facility_selection = facility_at


def margin_label(c: feasibility.Constraint) -> str:
    """How a margin is shown: ``channeling: q/q_ch < 1``."""
    return f"{c.name}: {c.ratio} {'<' if c.strict else '<='} 1"


# ------------------------------------------------------------------------------------------ the model


def setup_from_store(ds: xr.Dataset, *, attenuation: bool = False) -> Setup:
    """The model Setup of the sweep a store was made from (``cusweep.stored.setup_of``); ``attenuation``
    adds photon attenuation tables when the stored sweep did not need them."""
    setup = setup_of(ds)
    if attenuation and not setup.attenuation:
        import dataclasses

        from .model import attenuation_tables
        from .stored import spec_of

        setup = dataclasses.replace(setup, attenuation=attenuation_tables(spec_of(ds)))
    return setup


def margins(values: Mapping[str, Any]) -> dict[str, float]:
    """The margin of every constraint of ``cusweep.feasibility`` at a point, keyed by its ratio
    (``q/q_ch``, ``C``, ...): each must stay below 1 (at most 1 where not strict) for a feasible design."""
    return {c.ratio: float(values[c.margin]) for c in feasibility.CONSTRAINTS}


# ------------------------------------------------------------------------------------------ best


@dataclass
class Design:
    """One design: its point (dim -> store value), the value maximised, the margins and feasibility."""

    point: dict[str, Any]
    value: float
    margins: dict[str, float]
    feasible: bool


@dataclass
class BestResult:
    """The best design on the grid and refined off the grid; ``text()`` for people (display units),
    ``to_dict()`` for machines (store units)."""

    by: str
    constraint: str
    grid: Design
    refined: Design
    refined_dims: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    facility: str | None = None
    edges: list[dict[str, str]] = field(default_factory=list)
    #: the facility's photon-energy condition (a tuned store): photon_energy, condition, the line ratio
    #: 2n|E_r/E_ph - 1| (<= 1) and resonance_energy of the grid and refined designs; None without it
    line: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"by", "grid", "refined", "edges", "constraints", ...}``, values in store units."""
        def design(d: Design) -> dict[str, Any]:
            return {**{k: _jsonable(v) for k, v in d.point.items()}, self.by: _jsonable(d.value),
                    "margins": {k: _jsonable(v) for k, v in d.margins.items()}, "feasible": d.feasible}

        constraints = {c.name: {"condition": c.text, "margin": c.ratio, "strict": c.strict,
                                "grid": _jsonable(self.grid.margins.get(c.ratio)),
                                "refined": _jsonable(self.refined.margins.get(c.ratio)), "source": c.source}
                       for c in feasibility.CONSTRAINTS}
        return {"by": self.by, "maximised_subject_to": self.constraint, "facility": self.facility,
                "grid": design(self.grid), "refined": design(self.refined),
                "refined_dims": list(self.refined_dims), "edges": list(self.edges),
                "photon_energy_condition": _jsonable_tree(self.line),
                "constraints": constraints, "units": "store units (m, eV, 1)", "notes": self.notes}

    to_json = to_dict

    def text(self, *, si: bool = False) -> str:
        """The two designs side by side in display units (``si``: store units), with the margins."""
        rows = [("", "grid", "refined")]
        for d in self.grid.point:
            fixed = "" if d in self.refined_dims else " (fixed)"
            rows.append((d, format_value(d, self.grid.point[d], plain=False, si=si, units=_units(d)),
                         format_value(d, self.refined.point[d], plain=False, si=si, units=_units(d)) + fixed))
        gain = ""
        if self.grid.value and math.isfinite(self.grid.value):
            gain = f"  ({(self.refined.value / self.grid.value - 1):+.2%})"
        u = _units(self.by)
        rows.append((self.by, format_value(self.by, self.grid.value, plain=False, si=si, units=u),
                     format_value(self.by, self.refined.value, plain=False, si=si, units=u) + gain))
        for c in feasibility.CONSTRAINTS:
            if c.ratio in self.grid.margins:
                rows.append((margin_label(c), format_number(self.grid.margins[c.ratio]),
                             format_number(self.refined.margins[c.ratio])))
        if self.line is not None:
            r = self.line["resonance_energy"]
            rows.append(("resonance_energy", format_value("resonance_energy", r["grid"], plain=False, si=si,
                                                          units="eV"),
                         format_value("resonance_energy", r["refined"], plain=False, si=si, units="eV")))
            rows.append(("photon energy: 2n|E_r/E_ph - 1| <= 1", format_number(self.line["grid"]),
                         format_number(self.line["refined"])))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        head = f"best {self.by} (maximised) subject to {self.constraint}"
        if self.facility:
            head += f"; facility {self.facility}"
        if self.line is not None:
            pe = format_value("photon_energy", self.line["photon_energy"], plain=False)
            head += f", radiating at its {pe} (resonance within the line width 1/(2n))"
        lines = [head] + [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
        if self.refined_dims:
            lines.append(f"refined: SLSQP over {', '.join(self.refined_dims)} (log space, within the grid's "
                         "bounds), other dims at the grid values; margins must stay below 1")
        else:
            lines.append("refined: nothing to refine (see the note); margins must stay below 1")
        for e in self.edges:
            which = "refined design's" if e.get("design") == "refined" else "grid's best"
            lines.append(f"edge: the {which} {e['dim']} is at the {e['edge']} end of the swept range: the "
                         f"answer may be an artefact of the grid; sweep {e['dim']} past it for better "
                         "designs")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _units(name: str) -> str:
    q = VARIABLES.get(name)
    if q is not None:
        return q.units
    from .quantities import COORDS

    return COORDS[name].units if name in COORDS else "1"


def _jsonable_tree(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable_tree(x) for k, x in v.items()}
    return _jsonable(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclass(frozen=True)
class OnLine:
    """The facility's photon-energy condition (``cusweep.photon_line.on_line``) on a block of the store read
    for ``best`` (``cusweep.top.top_one``'s ``extra``; picklable for a process pool): True where the stored
    ``resonance_energy`` lies within the line width ``1/(2 n_periods)`` of ``photon_energy``."""

    photon_energy: float

    def __call__(self, values: Any) -> Any:
        return on_line(np.asarray(values["resonance_energy"]), np.asarray(values["n_periods"]),
                       self.photon_energy)


def best(ds: xr.Dataset | StoredSweep, by: str = "n_coh", *, where: str | None = None,
         facility: str | None = None, setup: Setup | None = None, at: Mapping[str, int] | None = None,
         processes: bool = False) -> BestResult:
    """The design maximising ``by`` where ``feasible`` (and ``where``) holds: on the grid, then refined.

    ``ds``: a ``StoredSweep`` (``cusweep.open``): the grid is read block by block, zarr into numpy on
    threads, only the chunks the facility preset, ``at`` and the coordinate-only terms of ``where`` allow
    (the path of ``query --top``); or any ``xarray.Dataset`` (lazily, through Dask). ``setup``: the model
    setup of the store (default: rebuilt from the stored sweep, ``setup_of``). ``at``: dim -> grid index
    fixed (``best_per``'s values). ``processes``: read the blocks of a ``StoredSweep`` on a process pool
    instead of threads (``StoredSweep.block_top``; the command line's choice for big stores). SpecError
    for a bad ``by``/``where``/``facility``; NoFeasibleDesign when no grid point qualifies."""
    sweep = ds if hasattr(ds, "skeleton") else None
    meta: Any = sweep.skeleton if sweep is not None else ds
    by = resolve(meta, by, "variable to maximise")
    if by in meta.sizes or meta[by].dtype == bool:
        raise QueryError(f"best: by={by}: give a numeric variable to maximise, e.g. by=n_coh")
    if "feasible" not in meta.data_vars:
        raise SpecError("best: the store has no 'feasible' variable; recompute it with the default outputs")
    expr = "feasible" if not where else f"feasible and ({where})"
    parse(expr)
    notes: list[str] = []
    fix: dict[str, int] = {str(d): int(i) for d, i in (at or {}).items()}
    target: float | None = None  # the facility's photon energy the designs must radiate at (tuned store)
    if facility:
        fac_at, fnotes = facility_at(meta, facility)
        photon = facility_photon(meta, facility)
        notes += fnotes + photon.notes
        fix.update(fac_at)
        if photon.on_line and photon.photon_energy is not None:
            target = photon.photon_energy
    if setup is None:
        setup = setup_of(meta)
    dims = dim_order(meta)
    sizes = {d: 1 if d in fix else int(meta.sizes[d]) for d in dims}
    blocks = sweep is not None and (target is None or all(n in meta.data_vars for n in LINE_OUTPUTS))
    if blocks:
        assert sweep is not None
        line_kw: dict[str, Any] = {} if target is None else {"also": LINE_OUTPUTS, "extra": OnLine(target)}
        pts = sweep.block_top(expr, by, STARTS, at=fix, processes=processes, **line_kw)
        empty = len(pts[dims[0]]) == 0
        off_line = empty and target is not None and bool(len(sweep.block_top(expr, by, 1, at=fix)[dims[0]]))
        stored = float(sweep.values_at({d: v[:1] for d, v in pts.items()}, [by])[by][0]) if not empty else 0.0
    else:
        full: Any = sweep.ds if sweep is not None else ds
        sub = full.isel({d: [i] for d, i in fix.items()})
        plain = sub
        if target is not None:
            sub = sub.assign({by: sub[by].where(on_line_mask(sub, setup, target))})
        pts = top_points(sub, expr, by, STARTS)
        empty = len(pts[dims[0]]) == 0
        off_line = empty and target is not None and bool(top_points(plain, expr, by, 1)[dims[0]].size)
        stored = 0.0 if empty else float(sub[by].isel({d: int(pts[str(d)][0]) for d in sub[by].dims}).values)
        pts = {d: np.full(v.shape, fix[d], dtype=np.int64) if d in fix else v for d, v in pts.items()}
    if empty:
        at_text = f" at {facility}" if facility else ""
        if off_line:
            raise NoFeasibleDesign(
                f"best: no grid point satisfying {expr}{at_text} radiates at {facility}'s photon energy "
                f"{format_value('photon_energy', target)} (resonance_energy within the line width "
                f"1/(2 n_periods)); sweep the resonance ridge there: {ridge_sweep_text(float(target or 0))}")
        raise NoFeasibleDesign(f"best: no grid point satisfies {expr}{at_text}; relax the where condition or "
                               "sweep a wider grid")
    starts = [{d: scalar(np.asarray(meta[d].values)[pts[d][j]]) for d in dims}
              for j in range(len(pts[dims[0]]))]
    grid_point = starts[0]
    named = [resolve(meta, n) for n in _names(where)]
    line_outputs = LINE_OUTPUTS if target is not None else ()
    outputs = tuple(o for o in dict.fromkeys((by, *_NEEDED, *named, *line_outputs)) if o in VARIABLES)
    grid_vals = evaluate_point(setup, grid_point, outputs)
    if not np.isclose(grid_vals[by], stored, rtol=1e-5, equal_nan=True):
        notes.append(f"model value {grid_vals[by]:.6g} at the grid point differs from the stored "
                     f"{stored:.6g} (store made by another cusweep version?)")
    grid = Design(grid_point, stored, margins(grid_vals), bool(grid_vals["feasible"]))
    edges = []
    for d in dims:
        if sizes[d] > 1 and meta[d].dtype.kind == "f" and d not in NOT_REFINED:
            i = int(pts[d][0])
            if i in (0, sizes[d] - 1):
                edges.append({"dim": d, "edge": "lower" if i == 0 else "upper", "design": "grid"})

    deps = setup.natural_dims(by)
    pinned = _pinned(where, meta)  # dims fixed by an equality in where
    free = tuple(d for d in dims if sizes[d] > 1 and d in deps and meta[d].dtype.kind == "f"
                 and d not in NOT_REFINED and d not in pinned)
    if not free:
        notes.append(f"{by} depends on no swept numeric dim" + (" left free by the facility preset"
                                                                if facility else "") + "; nothing to refine")
    refined = grid
    bounds: dict[str, tuple[float, float]] = {}
    if free:
        bounds = {d: (float(np.min(meta[d].values)), float(np.max(meta[d].values))) for d in free}
        found = _refine(setup, starts, by, free, bounds, where, outputs, meta, target)
        if found is None:
            notes.append("the optimiser found no better feasible design than the grid point")
        elif found[1] <= grid.value * (1 + 1e-12):
            notes.append("the optimiser found no better feasible design than the grid point")
        else:
            point, value, vals = found
            refined = Design(point, value, margins(vals), bool(vals["feasible"]))
    for d in free:
        lo_d, hi_d = bounds[d]
        x = float(refined.point[d])
        for edge, end in (("lower", lo_d), ("upper", hi_d)):
            if abs(x - end) <= EDGE_TOLERANCE * max(abs(end), abs(hi_d - lo_d)) and \
                    not any(e["dim"] == d and e["edge"] == edge for e in edges):
                edges.append({"dim": d, "edge": edge, "design": "refined"})
    line = None
    if target is not None:
        ref_vals = evaluate_point(setup, refined.point, LINE_OUTPUTS)
        line = {"photon_energy": target, "condition": LINE_CONDITION,
                "grid": line_ratio(grid_vals, target), "refined": line_ratio(ref_vals, target),
                "resonance_energy": {"grid": grid_vals["resonance_energy"],
                                     "refined": ref_vals["resonance_energy"]}}
    return BestResult(by=by, constraint=expr, grid=grid, refined=refined, refined_dims=free, notes=notes,
                      facility=facility, edges=edges, line=line)


def _names(where: str | None) -> list[str]:
    if not where:
        return []
    from .query import names_in

    return names_in(parse(where))


def _pinned(where: str | None, ds: xr.Dataset) -> set[str]:
    """Dims that ``where`` compares with ``==`` anywhere (they stay at their grid value)."""
    if not where:
        return set()
    from .query import nodes

    out: set[str] = set()
    for n in nodes(parse(where)):
        if isinstance(n, Compare):
            for a, op, b in zip(n.operands[:-1], n.ops, n.operands[1:], strict=True):
                for x in (a, b):
                    if op == "==" and isinstance(x, Name) and resolve(ds, x.name) in ds.sizes:
                        out.add(resolve(ds, x.name))
    return out


def _simple_constraints(where: str | None, ds: xr.Dataset) -> list[tuple[str, str, float]]:
    """``name op number`` comparisons of a pure conjunction (chains split), in store units."""
    if not where:
        return []
    node = parse(where)
    items = node.items if isinstance(node, And) else (node,)
    out = []
    for item in items:
        if not isinstance(item, Compare):
            continue
        ops = item.operands
        for a, op, b in zip(ops[:-1], item.ops, ops[1:], strict=True):
            if op in ("==", "!="):
                continue
            if isinstance(a, Name) and isinstance(b, Num):
                name = resolve(ds, a.name)
                out.append((name, op, convert(b.value, b.unit, units_of(ds, name), text=b.text, name=name)))
            elif isinstance(a, Num) and isinstance(b, Name):
                name = resolve(ds, b.name)
                flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
                limit = convert(a.value, a.unit, units_of(ds, name), text=a.text, name=name)
                out.append((name, flipped, limit))
    return [c for c in out if ds[c[0]].dtype != bool]


def _refine(setup: Setup, starts: list[dict[str, Any]], by: str, free: tuple[str, ...],
            bounds: Mapping[str, tuple[float, float]], where: str | None, outputs: tuple[str, ...],
            ds: xr.Dataset, target: float | None = None
            ) -> tuple[dict[str, Any], float, dict[str, Any]] | None:
    from scipy.optimize import minimize

    base = dict(starts[0])
    logs = [bounds[d][0] > 0 for d in free]  # log space unless the grid starts at 0

    def fwd(d: str, x: float, log: bool) -> float:
        return math.log(x) if log else x

    lo = np.array([fwd(d, bounds[d][0], g) for d, g in zip(free, logs, strict=True)])
    hi = np.array([fwd(d, bounds[d][1], g) for d, g in zip(free, logs, strict=True)])
    span = np.where(hi > lo, hi - lo, 1.0)
    extra = _simple_constraints(where, ds)
    positive = True
    cache: dict[bytes, dict[str, Any]] = {}

    def point_of(u: np.ndarray) -> dict[str, Any]:
        p = dict(base)
        for d, ui, a, s, g in zip(free, np.clip(u, 0.0, 1.0), lo, span, logs, strict=True):
            x = float(math.exp(a + ui * s)) if g else float(a + ui * s)
            p[d] = min(max(x, bounds[d][0]), bounds[d][1])  # exp(log(x)) may land an ulp outside the grid
        return p

    def values(u: np.ndarray) -> dict[str, Any]:
        key = np.asarray(u, dtype=np.float64).tobytes()
        if key not in cache:
            p = point_of(u)
            cache[key] = {**evaluate_point(setup, p, outputs), **p}
        return cache[key]

    def objective(u: np.ndarray) -> float:
        v = values(u)[by]
        if not math.isfinite(v):
            return 1e6
        if positive:
            return -math.log(v) if v > 0 else 1e6
        return -v / scale

    def ratio(c: feasibility.Constraint) -> Any:
        inside = MARGIN if c.strict else 0.0

        def f(u: np.ndarray) -> float:
            m = float(values(u)[c.margin])
            return 1.0 - inside - m if math.isfinite(m) else -1.0
        return f

    def user(name: str, op: str, limit: float) -> Any:
        s = abs(limit) if limit else 1.0

        def f(u: np.ndarray) -> float:
            x = values(u)[name]
            x = float(x) if math.isfinite(x) else math.nan
            g = (limit - x) / s if op in ("<", "<=") else (x - limit) / s
            return g - (MARGIN if op in ("<", ">") else 0.0) if math.isfinite(g) else -1.0
        return f

    cons = [{"type": "ineq", "fun": ratio(c)} for c in feasibility.CONSTRAINTS]
    extra_outputs = {name for name, _, _ in extra}
    if extra_outputs - set(outputs) - set(setup.dims):
        outputs = tuple(dict.fromkeys((*outputs, *[n for n in extra_outputs if n in VARIABLES])))
    cons += [{"type": "ineq", "fun": user(*c)} for c in extra]
    if target is not None:
        def on_line(u: np.ndarray) -> float:
            r = line_ratio(values(u), target)
            return 1.0 - MARGIN - r * r if math.isfinite(r) else -1.0
        cons.append({"type": "ineq", "fun": on_line})

    v0 = evaluate_point(setup, base, outputs)[by]
    positive = bool(v0 > 0)
    scale = abs(v0) if v0 else 1.0
    best_found: tuple[dict[str, Any], float, dict[str, Any]] | None = None
    seen = set()
    for start in starts:
        u0 = np.array([(fwd(d, float(start[d]), g) - a) / s
                       for d, a, s, g in zip(free, lo, span, logs, strict=True)])
        key = tuple(np.round(u0, 12))
        if key in seen:
            continue
        seen.add(key)
        with warnings.catch_warnings():
            # SLSQP clips trial steps to the bounds and may say so; the result is checked below
            warnings.simplefilter("ignore", RuntimeWarning)
            res = minimize(objective, u0, method="SLSQP", bounds=[(0.0, 1.0)] * len(free), constraints=cons,
                           options={"ftol": 1e-14, "maxiter": 500})
        u = np.clip(res.x, 0.0, 1.0)
        p = point_of(u)
        vals = evaluate_point(setup, p, outputs)
        if not vals["feasible"] or not _where_holds(setup, p, vals, where, ds):
            continue
        if target is not None and not line_ratio(vals, target) <= 1.0:
            continue
        if best_found is None or vals[by] > best_found[1]:
            best_found = (p, float(vals[by]), vals)
    return best_found


def _where_holds(setup: Setup, point: Mapping[str, Any], vals: Mapping[str, Any], where: str | None,
                 ds: xr.Dataset) -> bool:
    """Evaluate ``where`` at one point (a one-point dataset with the store's names and units)."""
    if not where:
        return True
    import xarray as xr

    from .query import query

    names = [resolve(ds, n) for n in _names(where)]
    missing = [n for n in names if n in VARIABLES and n not in vals]
    if missing:
        vals = {**vals, **evaluate_point(setup, point, tuple(missing))}
    # numeric dims at the point's value; label dims (crystal) keep all the store's labels, so that a
    # comparison with any of them is valid, and the mask is read at the point's label
    labels = {d for d in setup.dims if ds[d].dtype.kind not in "fiu"}
    coords = {d: xr.Variable((d,), np.asarray(ds[d].values if d in labels else [point[d]]),
                             attrs=dict(ds[d].attrs)) for d in setup.dims}
    data = {n: xr.Variable((), np.asarray(vals[n]), attrs=dict(ds[n].attrs)) for n in names if n in VARIABLES}
    one = xr.Dataset(data, coords=coords)
    mask = query(one, where)
    pick = {d: point[d] for d in labels if d in mask.dims}
    return bool(np.asarray(mask.sel(pick).values).all())


# ------------------------------------------------------------------------------------------ best per value


@dataclass
class PerResult:
    """The best design for every value of one dim (or every facility preset): ``rows`` of (value label,
    BestResult or None, why none)."""

    by: str
    per: str
    rows: list[tuple[str, BestResult | None, str]]

    def to_dict(self) -> dict[str, Any]:
        """``{"by", "per", "results": [{"value", "best" (BestResult.to_dict() or None), "note"}]}``."""
        return {"by": self.by, "per": self.per,
                "results": [{"value": v, "best": r.to_dict() if r is not None else None, "note": why}
                            for v, r, why in self.rows]}

    to_json = to_dict

    def text(self, *, si: bool = False) -> str:
        """One row per value: the refined best value and design (display units), edges and notes below."""
        u = _units(self.by)
        rows = []
        dims: list[str] = []
        for _, r, _ in self.rows:
            if r is not None:
                dims = [d for d in r.refined.point if d != self.per]
                break
        rows.append((self.per, f"{self.by} (grid)", f"{self.by} (refined)", *dims))
        notes = []
        for v, r, why in self.rows:
            if r is None:
                rows.append((v, "-", "-", *["" for _ in dims]))
                notes.append(f"{self.per} = {v}: {why}")
                continue
            rows.append((v, format_value(self.by, r.grid.value, plain=False, si=si, units=u),
                         format_value(self.by, r.refined.value, plain=False, si=si, units=u),
                         *[format_value(d, r.refined.point[d], plain=False, si=si, units=_units(d))
                           if d in r.refined.point else "" for d in dims]))
            notes += [f"{self.per} = {v}: edge: the {e.get('design', 'grid')} {e['dim']} is at the "
                      f"{e['edge']} end of the swept range" for e in r.edges]
            notes += [f"{self.per} = {v}: {n}" for n in r.notes]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        lines = [f"best {self.by} (maximised) per {self.per}; refined designs shown"]
        lines += ["  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        lines += [f"note: {n}" for n in notes]
        return "\n".join(lines)


def best_per(ds: xr.Dataset | StoredSweep, by: str, per: str, *, where: str | None = None,
             facility: str | None = None, setup: Setup | None = None, processes: bool = False) -> PerResult:
    """``best`` for every grid value of the dim ``per`` (or, ``per="facility"``, every facility preset).

    A value without a feasible design (or a facility whose beam is not on the grid) gets no result and
    the reason. SpecError for a ``per`` that is neither a dim of the store nor ``facility``, or a dim the
    facility preset fixes."""
    from . import materials
    from .errors import SelectionError
    from .select import label_value

    src = ds
    meta: Any = ds.skeleton if hasattr(ds, "skeleton") else ds  # names, sizes and coordinates
    if setup is None:
        setup = setup_of(meta)
    rows: list[tuple[str, BestResult | None, str]] = []
    if per == "facility":
        if facility:
            raise SelectionError("per: facility with a facility given; drop one")
        for name in materials.facilities():
            try:
                rows.append((name, best(src, by, where=where, facility=name, setup=setup,
                                        processes=processes), ""))
            except (NoFeasibleDesign, SelectionError) as exc:
                rows.append((name, None, str(exc).removeprefix("best: ")))
        return PerResult(resolve(meta, by, "variable to maximise"), per, rows)
    dims = dim_order(meta)
    if per not in dims:
        import difflib

        close = difflib.get_close_matches(per, [*dims, "facility"], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"give one of: {', '.join([*dims, 'facility'])}"
        raise SelectionError(f"per: {per!r} is not a dim of the store; {hint}")
    if facility and per in facility_at(meta, facility)[0]:
        raise SelectionError(f"per: facility {facility} fixes {per} already; drop one")
    for i in range(meta.sizes[per]):
        label = label_value(meta, per, i)
        try:
            one = best(src, by, where=where, facility=facility, setup=setup, at={per: i}, processes=processes)
            rows.append((label, one, ""))
        except NoFeasibleDesign as exc:
            rows.append((label, None, str(exc).removeprefix("best: ")))
    return PerResult(resolve(meta, by, "variable to maximise"), per, rows)
