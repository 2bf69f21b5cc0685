"""The best design: maximise a variable subject to ``feasible`` (and user constraints), first on the grid
of a store (chunk-wise), then refined off-grid in the continuous CU parameters with scipy.optimize.

Refinement: SLSQP over every swept numeric dim the variable depends on (period, amplitude, energy, sigma_z,
thickness, photon_energy; not bunching or n_positrons, not the dims fixed by ``--facility`` or by an
equality in ``--where``), in log space within the grid's bounds (linear for a dim whose grid starts at 0),
from the best few grid points; the other dims stay at the grid-best values.
The model is re-evaluated through ``cusweep.model.evaluate`` with the Setup rebuilt from the store's attrs;
the feasibility conditions become inequality constraints with a small margin:

    q/q_ch < 1,  C < 1,  γth/γ < 1,  λr·n/(πσZ) < 1

plus ``--where`` comparisons of a variable or dim with a number. The refined design is re-checked with the
full ``--where`` expression; if the optimiser finds nothing better or leaves the region, the grid design
is reported as the refined one, with a note.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CusweepError, QueryError, SpecError
from .quantities import ABSORPTION_OUTPUTS, VARIABLES
from .query import (
    And,
    Compare,
    Name,
    Num,
    convert,
    dim_order,
    format_value,
    parse,
    resolve,
    scalar,
    top_points,
    units_of,
)

if TYPE_CHECKING:
    import xarray as xr

    from .model import Setup

__all__ = ["BestResult", "best", "cli_best", "evaluate_point", "margins", "setup_from_store"]

#: hc [eV m]
HC_EV_M = 1.239841984e-6
#: constraints are kept this far (relative) inside their boundary, so the refined design is feasible
MARGIN = 1e-6
#: grid points the refinement starts from
STARTS = 8
#: dims never refined: the yields grow monotonically with them (as b^2 and Nb^2), so the largest grid value
#: is already the best, and b is what the experiment measures (`cusweep infer-b`), not a design choice
NOT_REFINED = ("bunching", "n_positrons")
#: margins reported: key -> (label, what it must stay below)
MARGINS = {
    "q/q_ch": "channeling: q/q_ch < 1",
    "C": "bending parameter: C < 1",
    "gamma_th/gamma": "threshold: gamma_th/gamma < 1",
    "coherence": "coherence: lambda_r n/(pi sigma_z) < 1",
    "thickness/L_d": "thickness / dechanneling length (information)",
}
_NEEDED = ("q", "q_ch", "bending_parameter", "gamma", "gamma_th", "resonance_energy", "n_periods",
           "dechanneling_length", "feasible")


# ------------------------------------------------------------------------------------------ the model


def setup_from_store(ds: xr.Dataset, *, attenuation: bool = False) -> Setup:
    """The model Setup of the sweep a store was made from (rebuilt from its group attrs)."""
    from .materials import Crystal
    from .model import Setup

    attrs = ds.attrs
    if "scalars" not in attrs or "crystals" not in attrs:
        raise SpecError("STORE: the store's attrs have no 'scalars'/'crystals' (made by an older cusweep?); "
                        "recompute it with `cusweep run`")
    crystals = {}
    for name, fields in dict(attrs["crystals"]).items():
        kw: dict[str, Any] = {k: (math.nan if v is None else v) for k, v in dict(fields).items()}
        crystals[name] = Crystal(**kw)
    att: dict[str, Any] = {}
    if attenuation:
        att = _attenuation_tables(crystals)
    return Setup(dims=dim_order(ds), scalars=dict(attrs["scalars"]), crystals=crystals,
                 length_model=str(attrs.get("length_model", "thickness")),
                 dechanneling_model=str(attrs.get("dechanneling_model", "ksg")), attenuation=att)


def _attenuation_tables(crystals: Mapping[str, Any]) -> dict[str, Any]:
    """xraydb attenuation tables for crystals that are built in (the stored crystal attrs carry no
    density/formula); NaN tables otherwise."""
    from . import materials

    energies = np.geomspace(100.0, 1.0e6, 2001)
    out = {}
    builtin = materials.crystals()
    for name in crystals:
        c = builtin.get(name)
        lengths = np.full_like(energies, np.nan) if c is None else materials.attenuation_length(c, energies)
        out[name] = (energies, np.asarray(lengths, dtype=np.float64))
    return out


def evaluate_point(setup: Setup, point: Mapping[str, Any], outputs: tuple[str, ...]) -> dict[str, Any]:
    """The model's outputs at one design point (dim -> value, every dim of the setup): scalars."""
    from .model import evaluate

    coords = {d: np.asarray([point[d]]) for d in setup.dims}
    values = evaluate(setup, coords, outputs)
    out: dict[str, Any] = {}
    for k, v in values.items():
        x = np.asarray(v).reshape(-1)[0]
        out[k] = bool(x) if np.asarray(v).dtype == bool else float(x)
    return out


def margins(values: Mapping[str, Any], point: Mapping[str, Any], thickness: float | None) -> dict[str, float]:
    """The constraint ratios at a point (each must stay < 1 for a feasible design)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_r = HC_EV_M / values["resonance_energy"]
        out = {
            "q/q_ch": values["q"] / values["q_ch"],
            "C": values["bending_parameter"],
            "gamma_th/gamma": values["gamma_th"] / values["gamma"],
            "coherence": lam_r * values["n_periods"] / (math.pi * float(point["sigma_z"])),
        }
        if thickness is not None and values["dechanneling_length"] > 0:
            out["thickness/L_d"] = thickness / values["dechanneling_length"]
        elif thickness is not None:
            out["thickness/L_d"] = math.inf
    return {k: float(v) for k, v in out.items()}


def _thickness(setup: Setup, point: Mapping[str, Any]) -> float | None:
    if "thickness" in point:
        return float(point["thickness"])
    t = setup.scalars.get("thickness")
    return None if t is None else float(t)


# ------------------------------------------------------------------------------------------ selection


def facility_selection(ds: xr.Dataset, name: str) -> tuple[dict[str, int], list[str]]:
    """Grid indices fixing a facility preset (``maps.facility_at``: energy within 5% of a grid value)."""
    from .maps import facility_at

    return facility_at(ds, name)


# ------------------------------------------------------------------------------------------ best


@dataclass
class Design:
    point: dict[str, Any]  # dim -> store value
    value: float
    margins: dict[str, float]
    feasible: bool


@dataclass
class BestResult:
    by: str
    constraint: str
    grid: Design
    refined: Design
    refined_dims: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    facility: str | None = None

    def to_json(self) -> dict[str, Any]:
        def design(d: Design) -> dict[str, Any]:
            return {**{k: _jsonable(v) for k, v in d.point.items()}, self.by: _jsonable(d.value),
                    "margins": {k: _jsonable(v) for k, v in d.margins.items()}, "feasible": d.feasible}

        return {"by": self.by, "maximised_subject_to": self.constraint, "facility": self.facility,
                "grid": design(self.grid), "refined": design(self.refined),
                "refined_dims": list(self.refined_dims), "notes": self.notes}

    def text(self) -> str:
        rows = [("", "grid", "refined")]
        for d in self.grid.point:
            fixed = "" if d in self.refined_dims else " (fixed)"
            rows.append((d, format_value(d, self.grid.point[d]),
                         format_value(d, self.refined.point[d]) + fixed))
        gain = ""
        if self.grid.value and math.isfinite(self.grid.value):
            gain = f"  ({(self.refined.value / self.grid.value - 1):+.2%})"
        rows.append((self.by, f"{self.grid.value:.6g}", f"{self.refined.value:.6g}{gain}"))
        for k, label in MARGINS.items():
            if k in self.grid.margins:
                rows.append((label, f"{self.grid.margins[k]:.6g}", f"{self.refined.margins[k]:.6g}"))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        head = f"best {self.by} (maximised) subject to {self.constraint}"
        if self.facility:
            head += f"; facility {self.facility}"
        lines = [head] + [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
        if self.refined_dims:
            lines.append(f"refined: SLSQP over {', '.join(self.refined_dims)} (log space, within the grid's "
                         "bounds), other dims at the grid values; margins must stay < 1")
        else:
            lines.append("refined: nothing to refine (see the note); margins must stay < 1")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def best(ds: xr.Dataset, by: str = "n_coh", *, where: str | None = None, facility: str | None = None
         ) -> BestResult:
    """The design maximising ``by`` where ``feasible`` (and ``where``) holds: on the grid, then refined."""
    by = resolve(ds, by, "--by variable")
    if by in ds.sizes or ds[by].dtype == bool:
        raise QueryError(f"best: --by {by}: give a numeric variable to maximise, e.g. --by n_coh")
    if "feasible" not in ds.data_vars:
        raise SpecError("best: the store has no 'feasible' variable; recompute it with the default outputs")
    expr = "feasible" if not where else f"feasible and ({where})"
    parse(expr)
    notes: list[str] = []
    sub = ds
    if facility:
        at, fnotes = facility_selection(ds, facility)
        notes += fnotes
        sub = ds.isel({d: [i] for d, i in at.items()})
    pts = top_points(sub, expr, by, STARTS)
    if len(pts[next(iter(pts))]) == 0:
        raise CusweepError(f"best: no grid point satisfies {expr}" + (f" at {facility}" if facility else "")
                           + "; relax --where or sweep a wider grid")
    dims = dim_order(sub)
    starts = [{d: scalar(np.asarray(sub[d].values)[pts[d][j]]) for d in dims}
              for j in range(len(pts[dims[0]]))]
    grid_point = starts[0]
    named = [resolve(ds, n) for n in _names(where)]
    needs_att = any(n in ABSORPTION_OUTPUTS for n in (by, *named))
    setup = setup_from_store(ds, attenuation=needs_att)
    outputs = tuple(o for o in dict.fromkeys((by, *_NEEDED, *named)) if o in VARIABLES)
    grid_vals = evaluate_point(setup, grid_point, outputs)
    stored = float(sub[by].isel({d: int(pts[str(d)][0]) for d in sub[by].dims}).values)
    if not np.isclose(grid_vals[by], stored, rtol=1e-5, equal_nan=True):
        notes.append(f"model value {grid_vals[by]:.6g} at the grid point differs from the stored "
                     f"{stored:.6g} (store made by another cusweep version?)")
    grid = Design(grid_point, stored, margins(grid_vals, grid_point, _thickness(setup, grid_point)),
                  bool(grid_vals["feasible"]))

    deps = setup.natural_dims(by)
    pinned = _pinned(where, ds)  # dims fixed by an equality in --where
    free = tuple(d for d in dims if sub.sizes[d] > 1 and d in deps and sub[d].dtype.kind == "f"
                 and d not in NOT_REFINED and d not in pinned)
    if not free:
        notes.append(f"{by} depends on no swept numeric dim" + (" left free by the facility preset"
                                                                if facility else "") + "; nothing to refine")
    refined = grid
    if free:
        bounds = {d: (float(np.min(ds[d].values)), float(np.max(ds[d].values))) for d in free}
        found = _refine(setup, starts, by, free, bounds, where, outputs, ds)
        if found is None:
            notes.append("the optimiser found no better feasible design than the grid point")
        elif found[1] <= grid.value * (1 + 1e-12):
            notes.append("the optimiser found no better feasible design than the grid point")
        else:
            point, value, vals = found
            refined = Design(point, value, margins(vals, point, _thickness(setup, point)),
                             bool(vals["feasible"]))
    return BestResult(by=by, constraint=expr, grid=grid, refined=refined, refined_dims=free, notes=notes,
                      facility=facility)


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
            ds: xr.Dataset) -> tuple[dict[str, Any], float, dict[str, Any]] | None:
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

    def ratio(name: str) -> Any:
        def f(u: np.ndarray) -> float:
            v = values(u)
            m = margins(v, v, None)[name]
            return 1.0 - MARGIN - m if math.isfinite(m) else -1.0
        return f

    def user(name: str, op: str, limit: float) -> Any:
        s = abs(limit) if limit else 1.0

        def f(u: np.ndarray) -> float:
            x = values(u)[name]
            x = float(x) if math.isfinite(x) else math.nan
            g = (limit - x) / s if op in ("<", "<=") else (x - limit) / s
            return g - (MARGIN if op in ("<", ">") else 0.0) if math.isfinite(g) else -1.0
        return f

    cons = [{"type": "ineq", "fun": ratio(k)} for k in ("q/q_ch", "C", "gamma_th/gamma", "coherence")]
    extra_outputs = {name for name, _, _ in extra}
    if extra_outputs - set(outputs) - set(setup.dims):
        outputs = tuple(dict.fromkeys((*outputs, *[n for n in extra_outputs if n in VARIABLES])))
    cons += [{"type": "ineq", "fun": user(*c)} for c in extra]

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


# ------------------------------------------------------------------------------------------ CLI


def cli_best(args: Any) -> int:
    """``cusweep best STORE --by VAR [--facility NAME] [--where EXPR] [--format table|json]``."""
    import json

    from .query import open_for_query

    if args.where:
        parse(args.where)
    ds = open_for_query(args.store)
    result = best(ds, args.by, where=args.where, facility=args.facility)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=1, allow_nan=False))
    else:
        print(result.text())
    for n in result.notes if args.format == "json" else ():
        print(f"cusweep: best: {n}", file=sys.stderr)
    return 0
