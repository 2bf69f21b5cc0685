"""Feasibility maps: a colour map of one variable over two dims of a store, at fixed values of the others,
with the boundaries of the paper's validity conditions drawn as contours and the infeasible region shaded.

Contours (each drawn only where its boundary lies inside the plotted range, and named in the legend): the
boundary of every constraint of ``cusweep.feasibility`` (margin = 1: q = q_ch, C = 1, γ = γth,
λr = πσZ/n, n·l = L_d, ...), its margin evaluated by the model on the slice's coordinates, and, when the
store holds it, T = 0.5 (photon transmission; a model beyond the paper). A constraint added to the table
is drawn with no change here.

matplotlib is imported only when a map is drawn; figures are drawn on the Agg canvas without touching
pyplot's global state (no backend switch, no figure registry), so maps work headless and in notebooks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import feasibility
from .display import DISPLAY, format_number, format_value
from .errors import CusweepError, SpecError
from .query import TEXT_KINDS, dim_order, resolve, units_of
from .select import FACILITY_ENERGY_TOLERANCE, facility_at, facility_photon, label_value, resolve_at, scalar

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

__all__ = ["CONTOURS", "FACILITY_ENERGY_TOLERANCE", "facility_at", "map_figure", "save_figure"]

FORMATS = (".png", ".svg", ".pdf")

#: legend labels of known constraints (typeset); any other constraint is labelled by its ``text``
_LABELS = {
    "channeling": r"$q = q_{ch}$ (channeling limit)",
    "bending": r"$C = 1$ (bending parameter)",
    "threshold": r"$\gamma = \gamma_{th}$ (threshold)",
    "coherence": r"$\lambda_r = \pi\sigma_Z/n$ (coherence condition)",
    "dechanneling": r"$n l = L_d$ (dechanneling length)",
}
_STYLES: tuple[tuple[str, Any], ...] = (
    ("white", "-"), ("#ff7f0e", "--"), ("#d62728", "-."), ("#e377c2", ":"), ("#17becf", (0, (5, 1, 1, 1))),
    ("#9467bd", (0, (1, 1))), ("#8c564b", (0, (5, 2))), ("#7f7f7f", (0, (3, 1, 1, 1, 1, 1))),
)


def _contours() -> dict[str, tuple[str, str, Any]]:
    out: dict[str, tuple[str, str, Any]] = {}
    for i, c in enumerate(feasibility.CONSTRAINTS):
        color, style = _STYLES[i % len(_STYLES)]
        out[c.name] = (_LABELS.get(c.name, f"{c.text} ({c.name})"), color, style)
    out["transmission"] = (r"$T = 0.5$ (photon absorption; model beyond the paper)", "#bcbd22", (0, (3, 1)))
    return out


#: contour name -> (legend label, colour, line style): one per constraint of cusweep.feasibility, and
#: the photon transmission T = 0.5 (drawn when the store holds it)
CONTOURS: dict[str, tuple[str, str, Any]] = _contours()


@dataclass
class _Slice:
    ds: xr.Dataset
    x: str
    y: str
    at: dict[str, int]  # every dim other than x, y -> index

    def get(self, name: str) -> np.ndarray | None:
        """``name`` (a variable or coordinate) on the (y, x) grid, float64 (bool as 0/1); None if absent."""
        if name not in self.ds.variables:
            return None
        arr = self.ds[name]
        arr = arr.isel({d: i for d, i in self.at.items() if d in arr.dims})
        values = np.asarray(arr.compute().values if hasattr(arr, "compute") else arr.values)
        dims = [str(d) for d in arr.dims]
        for d in (self.y, self.x):
            if d not in dims:
                values = values[np.newaxis, ...]
                dims.insert(0, d)
        values = np.moveaxis(values, [dims.index(self.y), dims.index(self.x)], [0, 1])
        ny, nx = self.ds.sizes[self.y], self.ds.sizes[self.x]
        return np.broadcast_to(values.astype(np.float64), (ny, nx)).copy()


def _edges(c: np.ndarray, log: bool) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    if len(c) == 1:
        return np.array([c[0] * 0.9, c[0] * 1.1]) if log else np.array([c[0] - 0.5, c[0] + 0.5])
    t = np.log(c) if log else c
    mid = (t[1:] + t[:-1]) / 2
    e = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return np.exp(e) if log else e


#: a numeric axis with at most this many values, neither evenly nor logarithmically spaced, is drawn as
#: categories (one column per value) rather than as bands reaching half-way to the neighbours
CATEGORICAL_MAX = 8


def _categorical(c: np.ndarray) -> bool:
    """Whether an axis with coordinates ``c`` is drawn as categories: text (crystal), or a few values
    (at most CATEGORICAL_MAX) spaced neither evenly nor logarithmically."""
    if c.dtype.kind in TEXT_KINDS:
        return True
    v = np.asarray(c, dtype=np.float64)
    if len(v) < 3 or len(v) > CATEGORICAL_MAX:
        return False
    d = np.diff(v)
    return not np.allclose(d, d[0], rtol=1e-6, atol=0.0) and not _is_log(v)


def _outline(color: str) -> str:
    """The outline drawn under a line of ``color``: white under a dark line, black under a light one."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.6 else "white"


def _boundary_effects(color: str, side: str) -> list[Any]:
    """Path effects of a boundary line: an outline in the contrasting colour (readable on every colour
    map), and ticks on its infeasible ``side`` ("left" or "right", walking along the line)."""
    from matplotlib import patheffects as pe

    edge = _outline(color)
    angle = 90.0 if side == "left" else -90.0
    return [pe.TickedStroke(angle=angle, spacing=14, length=0.5, linewidth=2.4, foreground=edge),
            pe.TickedStroke(angle=angle, spacing=14, length=0.5, linewidth=1.0, foreground=color),
            pe.Stroke(linewidth=3.4, foreground=edge), pe.Normal()]


def _parse_number(text: str, name: str, units: str, key: str) -> float:
    """``text`` (a number with units where ``name`` has them) in ``units``; SpecError otherwise."""
    from .query import Num, convert, parse

    try:
        node = parse(text)
    except CusweepError:
        node = None
    if not isinstance(node, Num):
        raise SpecError(f"{key}: {name}={text!r} is not a number with units; write e.g. "
                        f"{name}=\"{_unit_example(name, units)}\"")
    try:
        return float(convert(node.value, node.unit, units, text=text, name=name))
    except CusweepError as exc:
        raise SpecError(f"{key}: {name}={text!r}: " + str(exc).removeprefix("query: ")) from None


def _unit_example(name: str, units: str) -> str:
    if name in DISPLAY:
        return f"1 {DISPLAY[name].ascii}"
    return "0.1" if units in ("1", "", "dimensionless") else f"1 {units}"


def _overlays(ax: Any, s: _Slice, grid: _Grid, specs: Sequence[str], logs: Mapping[str, bool],
              categorical: Mapping[str, bool], handles: list[Any], notes: list[str] | None
              ) -> dict[str, dict[float, list[np.ndarray]]]:
    """Draw the ``--contour VAR=v1,v2,...`` overlays; VAR -> {level (store units) -> segments}."""
    from matplotlib import patheffects as pe
    from matplotlib.lines import Line2D

    from .quantities import VARIABLES

    out: dict[str, dict[float, list[np.ndarray]]] = {}
    styles = ("black", "#a50026", "#313695", "#006837")
    for k, spec in enumerate(specs):
        if "=" not in spec:
            raise SpecError(f"contour: {spec!r} is not VAR=v1,v2,...; write e.g. resonance_energy=8.3 keV")
        name, rest = (t.strip() for t in spec.split("=", 1))
        if name in s.ds.variables:
            name = resolve(s.ds, name, "contour variable")
            units = units_of(s.ds, name)
        elif name in VARIABLES:
            units = VARIABLES[name].units
        else:
            name = resolve(s.ds, name, "contour variable")  # raises with a did-you-mean
            units = units_of(s.ds, name)
        texts = [t.strip() for t in rest.split(",") if t.strip()]
        if not texts:
            raise SpecError(f"contour: {spec!r} gives no value; write e.g. {name}=v1,v2")
        last_unit = texts[-1].split(None, 1)[1] if len(texts[-1].split(None, 1)) == 2 else ""
        levels = [_parse_number(t if (len(t.split()) > 1 or not last_unit) else f"{t} {last_unit}", name,
                                units, "contour") for t in texts]
        if any(categorical.values()):
            if notes is not None:
                notes.append(f"contour {name}: not drawn across a categorical axis")
            continue
        field, where = None, grid
        try:
            fine_x = _finer(np.asarray(s.ds[s.x].values), logs[s.x])
            fine_y = _finer(np.asarray(s.ds[s.y].values), logs[s.y])
            values = _model_fields(s, (name,), {s.x: fine_x, s.y: fine_y})
            if name in values:
                field = values[name]
                where = _Grid(fine_x / _display_factor(s.x), fine_y / _display_factor(s.y), grid.xe, grid.ye,
                              grid.xlog, grid.ylog)
        except CusweepError:
            field = None
        if field is None:
            field = s.get(name)
        if field is None:
            raise SpecError(f"contour: {name} is not in the store and the model cannot evaluate it here; "
                            "give a variable the store holds")
        if field.dtype == bool:
            field = field.astype(np.float64)
        color = styles[k % len(styles)]
        edge = _outline(color)
        effects = [pe.Stroke(linewidth=3.2, foreground=edge), pe.Normal()]
        out[name] = {}
        for level in levels:
            traced = where.lines(field, level)
            out[name][level] = traced
            text = format_value(name, level, plain=False, units=units)
            for seg in traced:
                ax.plot(seg[:, 0], seg[:, 1], color=color, linestyle=(0, (6, 2)), linewidth=1.3,
                        path_effects=effects)
            if traced:
                longest = max(traced, key=len)
                mx, my = longest[len(longest) // 2]
                ax.annotate(text, (mx, my), fontsize=7, color=color, ha="center", va="center",
                            bbox={"boxstyle": "round,pad=0.15", "fc": edge, "ec": "none", "alpha": 0.8})
            elif notes is not None:
                notes.append(f"contour {name} = {text}: not inside the plotted range")
        values_text = ", ".join(format_value(name, v, plain=False, units=units) for v in levels)
        handles.append(Line2D([], [], color=color, linestyle=(0, (6, 2)), linewidth=1.3,  # type: ignore[arg-type]
                              path_effects=effects, label=f"{name} = {values_text}"))
    return out


def _marks(ax: Any, ds: xr.Dataset, x: str, y: str, specs: Sequence[str], categorical: Mapping[str, bool],
           handles: list[Any]) -> list[dict[str, Any]]:
    """Draw the ``--mark "x=..., y=..."`` design points; a list of {"label", "x", "y"} (plotted units)."""
    from matplotlib.lines import Line2D

    from .select import coord_value, nearest_index

    placed: list[dict[str, Any]] = []
    for spec in specs:
        got: dict[str, float] = {}
        parts: dict[str, str] = {}
        for item in (t.strip() for t in _split_top(spec)):
            if not item:
                continue
            if "=" not in item:
                raise SpecError(f"mark: {item!r} is not DIM=VALUE; write e.g. --mark \"{x}=..., {y}=...\"")
            d, v = (t.strip() for t in item.split("=", 1))
            d = _dim_name(ds, d, "mark")
            if d not in (x, y):
                continue  # the slice fixes the other dims
            if categorical[d]:
                got[d] = float(nearest_index(ds, d, v, key="mark"))
                parts[d] = f"{d} = {v}"
            else:
                nearest_index(ds, d, v, key="mark")  # refuses a point off the plotted grid (never drawn)
                value = coord_value(ds, d, v, key="mark")
                got[d] = value / _display_factor(d)
                parts[d] = f"{d} = {format_value(d, value, plain=False, units=units_of(ds, d))}"
        missing = [d for d in (x, y) if d not in got]
        if missing:
            raise SpecError(f"mark: {spec!r} gives no {' or '.join(missing)}; write e.g. "
                            f"--mark \"{x}=..., {y}=...\"")
        label = f"design point ({parts[x]}, {parts[y]})"
        ax.plot([got[x]], [got[y]], linestyle="none", marker="*", markersize=15, markerfacecolor="white",
                markeredgecolor="black", markeredgewidth=1.2, zorder=6)
        handles.append(Line2D([], [], linestyle="none", marker="*", markersize=11, markerfacecolor="white",
                              markeredgecolor="black", label=label))
        placed.append({"label": label, "x": got[x], "y": got[y]})
    return placed


def _split_top(text: str) -> list[str]:
    """``text`` split at the commas that separate DIM=VALUE items (a comma not followed by NAME=
    belongs to the value)."""
    import re

    return re.split(r",\s*(?=[A-Za-z_][A-Za-z0-9_]*\s*=)", text)


def _finer(c: np.ndarray, log: bool) -> np.ndarray:
    """The coordinates ``c`` with FINE - 1 points between neighbours (evenly in log for a log axis), fewer
    where that would pass FINE_MAX_POINTS (a 1000-value axis keeps its own grid: its cells are finer than
    the figure's pixels already, and a 4x finer 1000 x 1000 slice held 3 GB of model intermediates)."""
    c = np.asarray(c, dtype=np.float64)
    t = np.log(c) if log else c
    k = max(1, min(FINE, (FINE_MAX_POINTS - 1) // max(1, len(c) - 1)))
    u = np.interp(np.linspace(0, len(c) - 1, (len(c) - 1) * k + 1), np.arange(len(c)), t)
    return np.exp(u) if log else u


def _is_log(c: np.ndarray) -> bool:
    c = np.asarray(c, dtype=np.float64)
    if len(c) < 3 or np.any(c <= 0):
        return False
    d = np.diff(c)
    r = np.diff(np.log(c))
    return not np.allclose(d, d[0], rtol=1e-6, atol=0.0) and np.allclose(r, r[0], rtol=1e-6, atol=0.0)


def _axis_label(ds: xr.Dataset, name: str) -> str:
    attrs = ds[name].attrs
    long_name = attrs.get("long_name", name)
    symbol = attrs.get("symbol", "")
    if name in DISPLAY:
        unit = DISPLAY[name].label
    else:
        u = units_of(ds, name)
        unit = "" if u in ("1", "", "dimensionless") else u
    text = f"{long_name} {symbol}".strip() if symbol and symbol != name else long_name
    return f"{text} [{unit}]" if unit else text


def _display_factor(name: str) -> float:
    return DISPLAY[name].factor if name in DISPLAY else 1.0


def _model_fields(s: _Slice, names: Sequence[str], axes: Mapping[str, np.ndarray] | None = None
                  ) -> dict[str, np.ndarray]:
    """``names`` evaluated by the model (the stored sweep's setup) on the slice's coordinates (``axes``:
    other values of x and y, store units), each on the (y, x) grid; {} when the model cannot be rebuilt
    from the dataset (no stored sweep text)."""
    from .model import evaluate
    from .stored import setup_of

    try:
        setup = setup_of(s.ds)
    except CusweepError:
        return {}
    dims = setup.dims
    if set(dims) != set(dim_order(s.ds)):
        return {}
    coords = {d: np.asarray(s.ds[d].values) if d in (s.x, s.y) else np.asarray(s.ds[d].values)[[s.at[d]]]
              for d in dims}
    coords.update(axes or {})
    shape = tuple(len(coords[d]) for d in dims)
    values = evaluate(setup, coords, tuple(names))
    out = {}
    for name, v in values.items():
        keep = setup.natural_dims(name)
        own = [n if d in keep else 1 for d, n in zip(dims, shape, strict=True)]
        full = np.broadcast_to(np.asarray(v).reshape(own), shape)
        grid = np.moveaxis(full, [dims.index(s.y), dims.index(s.x)], [0, 1])
        out[name] = np.asarray(grid.reshape(grid.shape[0], grid.shape[1]), dtype=np.float64)
    return out


#: the boundary lines are traced on a grid this many times finer than the store's (model-evaluated margins)
FINE = 4
#: ... but with at most this many points along an axis
FINE_MAX_POINTS = 1000


def _fine_fields(s: _Slice, grid: _Grid, names: Sequence[str], logs: Mapping[str, bool],
                 categorical: Mapping[str, bool]) -> tuple[_Grid, dict[str, np.ndarray]]:
    """A grid FINE times finer than the slice's (in the axes' coordinates) and the margins of the
    constraints ``names`` evaluated there by the model; ({}) when the model cannot be rebuilt."""
    if any(categorical.values()) or not names:
        return grid, {}

    xs = _finer(s.ds[s.x].values, logs[s.x])
    ys = _finer(s.ds[s.y].values, logs[s.y])
    margins = {c.name: c.margin for c in feasibility.CONSTRAINTS if c.name in names}
    values = _model_fields(s, tuple(margins.values()), {s.x: xs, s.y: ys})
    if not values:
        return grid, {}
    fx, fy = _display_factor(s.x), _display_factor(s.y)
    fine = _Grid(xs / fx, ys / fy, grid.xe, grid.ye, grid.xlog, grid.ylog)
    return fine, {n: values[m] for n, m in margins.items() if m in values}


def _contour_fields(s: _Slice) -> dict[str, tuple[np.ndarray, float]]:
    """name -> (field, level): the margin of every constraint of ``cusweep.feasibility`` (level 1),
    evaluated by the model on the slice (the store's own margin variables when the model cannot be
    rebuilt), and the stored photon transmission (level 0.5)."""
    margins = _model_fields(s, feasibility.MARGINS)
    out: dict[str, tuple[np.ndarray, float]] = {}
    for c in feasibility.CONSTRAINTS:
        m = margins.get(c.margin)
        if m is None:
            m = s.get(c.margin)
        if m is not None:
            out[c.name] = (m, 1.0)
    t = s.get("transmission")
    if t is not None:
        out["transmission"] = (t, 0.5)
    return out


def map_figure(ds: xr.Dataset, x: str = "period", y: str = "amplitude", var: str = "n_coh",
               at: Mapping[str, Any] | Sequence[str] | None = None, facility: str | None = None,
               notes: list[str] | None = None, *, vmin: float | None = None, vmax: float | None = None,
               clip: str = "feasible", marks: Sequence[str] = (), contours: Sequence[str] = (),
               photon_energy: float | None = None) -> Figure:
    """The feasibility map of ``var`` over dims ``x`` (horizontal) and ``y`` (vertical) as a matplotlib
    Figure (Agg canvas, not registered with pyplot).

    ``at`` fixes the other dims (``{"energy": "13.6 GeV", "bunching": 0.1}`` or ``["energy=13.6 GeV"]``;
    nearest grid value); ``facility`` fixes energy, n_positrons and sigma_z from a preset where they are
    dims; dims given by neither take their first grid value. Every fixed value is stated on the figure.
    ``notes`` (a list) receives what was defaulted or approximated.

    The facility's photon energy (``cusweep.photon_line``, as ``best --facility`` applies it): in a tuned
    store, ``facility`` (or ``photon_energy``, eV, given directly) keeps only the cells whose resonance lies
    within the CU line width 1/(2n) of it; the others are drawn grey (no value) and the line
    ``resonance_energy = photon_energy`` is overlaid. In a detuned store ``facility`` fixes photon_energy
    (``cusweep.select.facility_photon``: an error when the store's is not the facility's).

    Colour limits: ``vmin``/``vmax`` in the colour bar's unit; otherwise from the feasible cells of the
    slice (``clip="feasible"``, the default; all cells when none is feasible) or from every cell
    (``clip="all"``); values beyond the limits take the end colours (the colour bar shows an arrow).
    ``marks``: design points, each ``"period=14 um, amplitude=1.27 angstrom"`` (the x and y values; other
    dims are the slice's). ``contours``: overlays, each ``"VAR=v1,v2,..."`` with units where VAR has
    them (``"resonance_energy=8.3 keV"``, ``"energy_fraction=0.01"``), VAR read from the store or
    evaluated by the model on the slice. Axes with few unevenly spaced values (at most ``CATEGORICAL_MAX``)
    and text axes (crystal) are drawn as categories.

    ``fig.cusweep`` records what was drawn: ``{"var", "x", "y", "at" (dim -> grid value), "norm"
    ("log"|"linear"), "clim" ((vmin, vmax) in the colour bar's unit), "clip", "contours" (names drawn),
    "segments" (name -> list of (N, 2) vertex arrays in the plotted units), "infeasible_side" (name ->
    "left"|"right": the side of each boundary line, walking along its vertices, that is infeasible; the
    ticks are drawn there), "marks" (list of {"label", "x", "y"} in plotted units), "overlays" (VAR ->
    {level in store units -> segments}), "categorical" (dim -> bool), "subtitle"}``.
    """
    from matplotlib import colors
    from matplotlib import patheffects as pe
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, PathPatch

    dims = dim_order(ds)
    x = _dim_name(ds, x, "x")
    y = _dim_name(ds, y, "y")
    if x == y:
        raise SpecError(f"x and y are both {x!r}; give two different dims")
    for d, flag in ((x, "x"), (y, "y")):
        if ds.sizes[d] < 2:
            multi = [e for e in dims if ds.sizes[e] > 1 and e not in (x, y)]
            raise SpecError(f"{flag}: {d} has a single grid value; map over a swept dim"
                            + (f" ({', '.join(multi)})" if multi else ""))
    var = resolve(ds, var, "variable to map")
    if var in ds.sizes:
        raise SpecError(f"var: {var} is a dim; give a variable, e.g. var=n_coh")
    fixed, msgs = resolve_at(ds, x, y, at, facility)
    if notes is not None:
        notes.extend(msgs)
    if facility:
        photon = facility_photon(ds, facility)
        if notes is not None:
            notes.extend(photon.notes)
        if photon.on_line and photon_energy is None:
            photon_energy = photon.photon_energy
    s = _Slice(ds, x, y, fixed)
    z = s.get(var)
    assert z is not None
    on_line_cells = None
    if photon_energy is not None:
        z, on_line_cells = _radiating(s, z, float(photon_energy), notes)
        contours = [*contours, f"resonance_energy={float(photon_energy)!r} eV"]
    is_bool = ds[var].dtype == bool
    z = z / _display_factor(var)
    if not is_bool and not np.isfinite(z).any() and notes is not None:
        notes.append(f"{var} has no finite value in this slice (NaN everywhere): the colours mean nothing")

    fig = Figure(figsize=(7.2, 5.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xc = np.asarray(ds[x].values)
    yc = np.asarray(ds[y].values)
    categorical = {d: _categorical(np.asarray(ds[d].values)) for d in (x, y)}
    logs = {d: (not categorical[d]) and _is_log(np.asarray(ds[d].values)) for d in (x, y)}
    xv = np.arange(len(xc), dtype=float) if categorical[x] else xc.astype(float) / _display_factor(x)
    yv = np.arange(len(yc), dtype=float) if categorical[y] else yc.astype(float) / _display_factor(y)
    xe, ye = _edges(xv, logs[x]), _edges(yv, logs[y])

    if clip not in ("feasible", "all"):
        raise SpecError(f"clip: {clip!r} is not feasible or all; give --clip feasible (colour limits from "
                        "the feasible cells) or --clip all")
    feasible = s.get("feasible")
    finite = z[np.isfinite(z)]
    basis = finite
    if clip == "feasible" and not is_bool and feasible is not None and var != "feasible":
        inside = np.isfinite(z) & (np.nan_to_num(feasible) > 0.5)
        if inside.any():
            basis = z[inside]
        elif notes is not None and finite.size:
            notes.append("no feasible cell in this slice: colour limits from all cells")
    positive = basis[basis > 0]
    norm_kind = "linear"
    cmap = _cmap("viridis")
    for name, v in (("vmin", vmin), ("vmax", vmax)):
        if v is not None and not math.isfinite(float(v)):
            raise SpecError(f"{name}: {v!r} is not a finite number; give a number in the colour bar's unit")
    if vmin is not None and vmax is not None and not float(vmin) < float(vmax):
        raise SpecError(f"vmin: {vmin} is not below vmax {vmax}; give --vmin < --vmax")
    if is_bool:
        cmap = colors.ListedColormap(["#c7c7c7", "#2ca02c"])
        norm: Any = colors.BoundaryNorm([-0.5, 0.5, 1.5], 2)
    elif positive.size and (vmin is None or vmin > 0) and (
            (vmin is not None and vmax is not None and vmax / vmin > 100.0)
            or (not (vmin is not None and vmax is not None) and positive.max() / positive.min() > 100.0)):
        norm_kind = "log"
        lo = float(vmin) if vmin is not None else float(positive.min())
        hi = float(vmax) if vmax is not None else float(positive.max())
        if hi <= lo:
            raise SpecError(f"vmax: {hi:g} is not above the colour scale's lower end {lo:g}; give a larger "
                            "--vmax")
        norm = colors.LogNorm(vmin=lo, vmax=hi)
        z = np.where(z > 0, z, np.nan)
    elif basis.size or (vmin is not None and vmax is not None):
        lo = float(vmin) if vmin is not None else float(basis.min())
        hi = float(vmax) if vmax is not None else float(basis.max())
        if hi <= lo and (vmin is not None or vmax is not None):
            raise SpecError(f"vmin/vmax: the colour scale {lo:g} .. {hi:g} is empty; give --vmin < --vmax")
        norm = colors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    else:
        norm = colors.Normalize(vmin=0, vmax=1)
    extend = "neither"
    if not is_bool and finite.size:
        below = bool((finite < norm.vmin).any() if norm_kind == "linear" else
                     (finite[finite > 0] < norm.vmin).any())
        above = bool((finite > norm.vmax).any())
        extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get((below, above),
                                                                                      "neither")
    cmap = cmap.with_extremes(bad="#e0e0e0")  # NaN cells (e.g. no radiation below threshold)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(z), cmap=cmap, norm=norm, shading="flat",
                         rasterized=True)
    cbar = fig.colorbar(mesh, ax=ax, pad=0.02, extend=extend)
    cbar.set_label(_wrap(_axis_label(ds, var), 60, words=True))
    if is_bool:
        cbar.set_ticks([0, 1], labels=["false", "true"])

    # Boundaries are traced on the grid in the axes' own coordinates (log of a log axis), where the
    # boundary fields (power laws of period, amplitude, energy, ...) are smooth; positive fields are traced
    # as log(field) = log(level), exact for a power law, so lines sit on the boundary even on coarse grids.
    grid = _Grid(xv, yv, xe, ye, logs[x], logs[y])
    handles: list[Any] = []
    fields = _contour_fields(s)
    if feasible is not None and var != "feasible":
        infeasible = np.where(np.isnan(feasible), 0.0, 1.0 - feasible)
        # shade along the same smooth boundaries as the lines: infeasible where the largest margin of the
        # constraints reaches 1 (the store's flag where that does not reproduce it)
        ratios = [fields[c.name][0] for c in feasibility.CONSTRAINTS if c.name in fields]
        region, level = infeasible, 0.5
        if len(ratios) == len(feasibility.CONSTRAINTS) and not any(categorical.values()):
            with np.errstate(invalid="ignore"):
                worst = np.max(ratios, axis=0)
            worst = np.nan_to_num(worst, nan=np.inf)
            beyond = np.zeros(worst.shape, dtype=bool)
            for c in feasibility.CONSTRAINTS:
                beyond |= ~c.holds(np.nan_to_num(fields[c.name][0], nan=np.inf))
            if np.array_equal(beyond, infeasible > 0.5):
                region, level = worst, 1.0
        if infeasible.max() > 0.5:
            paths = grid.cells(infeasible > 0.5) if any(categorical.values()) else grid.filled(region, level)
            for path in paths:
                ax.add_patch(PathPatch(path, facecolor=(0.35, 0.35, 0.35, 0.35),
                                       edgecolor=(0.2, 0.2, 0.2, 0.55), linewidth=0.0, hatch="////"))
            handles.append(Patch(facecolor="0.35", alpha=0.5, hatch="////", label="infeasible"))
    drawn: list[str] = []
    segments: dict[str, list[np.ndarray]] = {}
    sides: dict[str, str] = {}
    if any(categorical.values()):
        fields = {}  # a boundary between two crystals means nothing: only the infeasible cells are shaded
        if notes is not None:
            notes.append("no boundary lines across a categorical axis (crystal); infeasible cells hatched")
    # the boundary lines are traced on a grid FINE times finer than the store's, the margins evaluated
    # there by the model: a margin that is not a power law of the axes (n l / L_d(C) near C = 1) is then
    # traced as closely as one that is
    fine = _fine_fields(s, grid, [n for n in fields if n != "transmission"], logs, categorical)
    for name, (field, level) in fields.items():
        ok = np.isfinite(field)
        if not ok.any() or not (field[ok].min() < level < field[ok].max()):
            continue  # the boundary is not inside the plotted range
        label, color, style = CONTOURS.get(name, _contours().get(name, (name, "black", "-")))
        traced = fine[0].lines(fine[1][name], level) if name in fine[1] else grid.lines(field, level)
        # contourpy orients its lines with the larger values on the left: a constraint fails where its
        # margin exceeds 1, the photons are absorbed where T < 0.5
        side = "right" if name == "transmission" else "left"
        effects = _boundary_effects(color, side)
        for seg in traced:
            ax.plot(seg[:, 0], seg[:, 1], color=color, linestyle=style, linewidth=1.6, path_effects=effects)
        if traced:
            drawn.append(name)
            segments[name] = traced
            sides[name] = side
            handles.append(Line2D([], [], color=color, linestyle=style, linewidth=1.6,  # type: ignore[arg-type]
                                  path_effects=effects[2:], label=label))
    if drawn:
        handles.append(Line2D([], [], color="black", linewidth=1.0,
                              path_effects=_boundary_effects("black", "left")[1:2] + [pe.Normal()],
                              label="ticks: the infeasible side of a boundary"))
    overlays = _overlays(ax, s, grid, contours, logs, categorical, handles, notes)
    placed = _marks(ax, ds, x, y, marks, categorical, handles)
    if handles:
        leg = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
                        fontsize=8, frameon=False)
        leg.set_in_layout(True)

    for d, set_scale, set_label, set_ticks, axis, edges in (
            (x, ax.set_xscale, ax.set_xlabel, ax.set_xticks, ax.xaxis, xe),
            (y, ax.set_yscale, ax.set_ylabel, ax.set_yticks, ax.yaxis, ye)):
        if logs[d]:
            set_scale("log")
            if edges[-1] / edges[0] < 1e3:  # under three decades: plain 1-2-5 labels, no crowded minor ones
                from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

                axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(StrMethodFormatter("{x:g}"))
                axis.set_minor_formatter(NullFormatter())
        set_label(_axis_label(ds, d))
        if categorical[d]:
            values = np.asarray(ds[d].values)
            labels = [str(v) if values.dtype.kind in TEXT_KINDS
                      else format_number(float(v) / _display_factor(d)) for v in values]
            set_ticks(np.arange(ds.sizes[d]), labels=labels)
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])

    fixed_text = ", ".join(f"{_short(ds, d)} = {label_value(ds, d, i)}" for d, i in fixed.items()
                           if ds.sizes[d] > 1)
    const_text = _constants_text(ds, fixed)
    title = f"{ds[var].attrs.get('long_name', var)}"
    if ds.attrs.get("name"):
        title += f"  ({ds.attrs['name']})"
    ax.set_title(_wrap(title, 70, words=True), fontsize=10, loc="left")
    sub = "; ".join(t for t in (fixed_text, const_text) if t)
    if photon_energy is not None:
        shown = format_value("photon_energy", float(photon_energy), plain=False)
        sub = f"only designs radiating at {shown} (resonance within the line width 1/(2n)); " + sub
    if facility:
        from . import materials

        sub = f"{materials.facility(facility).title} preset (hypothetical positron beam); " + sub
    fig.suptitle(_wrap(sub, 110), fontsize=8, x=0.01, ha="left")
    fig.cusweep = {  # type: ignore[attr-defined]
        "var": var, "x": x, "y": y, "norm": norm_kind, "contours": drawn, "segments": segments,
        "clim": (float(norm.vmin), float(norm.vmax)) if not is_bool else (0.0, 1.0), "clip": clip,
        "infeasible_side": sides, "marks": placed, "overlays": overlays, "categorical": dict(categorical),
        "at": {d: scalar(np.asarray(ds[d].values)[i]) for d, i in fixed.items()},
        "subtitle": sub, "photon_energy": None if photon_energy is None else float(photon_energy),
        "on_line_cells": on_line_cells,
    }
    return fig


def _radiating(s: _Slice, z: np.ndarray, photon_energy: float, notes: list[str] | None
               ) -> tuple[np.ndarray, int]:
    """``z`` with NaN where the design does not radiate at ``photon_energy`` (``cusweep.photon_line``), and
    the number of cells that do."""
    from .photon_line import LINE_OUTPUTS, on_line
    from .select import ridge_sweep_text

    got = {n: s.get(n) for n in LINE_OUTPUTS}
    missing = [n for n, v in got.items() if v is None]
    if missing:
        got.update(_model_fields(s, missing))
    if any(got.get(n) is None for n in LINE_OUTPUTS):
        raise SpecError("photon_energy: the store has no resonance_energy/n_periods and no sweep to evaluate "
                        "them; recompute the store with them in its outputs")
    mask = on_line(got["resonance_energy"], got["n_periods"], photon_energy)
    count = int(np.count_nonzero(mask))
    if notes is not None and count == 0 and not any("sweep the resonance ridge" in n for n in notes):
        notes.append(f"no cell of this slice radiates at {format_value('photon_energy', photon_energy)} "
                     f"(resonance within the line width 1/(2n)); sweep the resonance ridge there: "
                     f"{ridge_sweep_text(photon_energy)}")
    return np.where(mask, z, np.nan), count


@dataclass
class _Grid:
    """Cell centres (xv, yv) and edges (xe, ye) of a map in plotted units; tracing of level lines and
    filled regions in the axes' coordinates (log for a log axis) with contourpy, back in plotted units."""

    xv: np.ndarray
    yv: np.ndarray
    xe: np.ndarray
    ye: np.ndarray
    xlog: bool
    ylog: bool

    def _t(self, v: np.ndarray, log: bool) -> np.ndarray:
        return np.log(v) if log else np.asarray(v, dtype=np.float64)

    def _back(self, pts: np.ndarray) -> np.ndarray:
        out = np.array(pts, dtype=np.float64)
        if self.xlog:
            out[:, 0] = np.exp(out[:, 0])
        if self.ylog:
            out[:, 1] = np.exp(out[:, 1])
        return out

    def lines(self, field: np.ndarray, level: float) -> list[np.ndarray]:
        """The lines where ``field`` (on the (y, x) grid) crosses ``level``: (N, 2) arrays (x, y)."""
        import contourpy

        z = np.asarray(field, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if level > 0 and np.all(z[np.isfinite(z)] > 0):
                z, level = np.log(z), math.log(level)
        gen = contourpy.contour_generator(self._t(self.xv, self.xlog), self._t(self.yv, self.ylog),
                                          np.ma.masked_invalid(z), line_type=contourpy.LineType.Separate)
        return [self._back(np.asarray(seg)) for seg in gen.lines(level) if len(seg) > 1]

    def cells(self, mask: np.ndarray) -> list[Any]:
        """One compound Path of the grid cells where ``mask`` (on the (y, x) grid) holds."""
        from matplotlib.path import Path

        x0, x1, y0, y1 = self.xe[:-1], self.xe[1:], self.ye[:-1], self.ye[1:]
        rects = [Path([(x0[i], y0[j]), (x1[i], y0[j]), (x1[i], y1[j]), (x0[i], y1[j]), (x0[i], y0[j])],
                      closed=True) for j, i in zip(*np.nonzero(mask), strict=True)]
        return [Path.make_compound_path(*rects)] if rects else []

    def filled(self, field: np.ndarray, level: float) -> list[Any]:
        """matplotlib Paths of the region where ``field`` > ``level``, reaching the outer cell edges."""
        import contourpy
        from matplotlib.path import Path

        tx = self._t(np.concatenate([[self.xe[0]], self.xv, [self.xe[-1]]]), self.xlog)
        ty = self._t(np.concatenate([[self.ye[0]], self.yv, [self.ye[-1]]]), self.ylog)
        z = np.pad(np.asarray(field, dtype=np.float64), 1, mode="edge")
        with np.errstate(divide="ignore", invalid="ignore"):
            if level > 0 and np.all(z[np.isfinite(z)] > 0):
                z, level = np.log(z), math.log(level)
        # no value (NaN, e.g. below threshold) or +inf: inside the region; -inf: outside (finite values)
        finite = z[np.isfinite(z)]
        hi, lo = (finite.max(), finite.min()) if finite.size else (level, level)
        z = np.where(np.isfinite(z), z, np.where(z == -np.inf, min(lo, level) - 1.0, max(hi, level) + 1.0))
        gen = contourpy.contour_generator(tx, ty, z, fill_type=contourpy.FillType.OuterCode)
        points, codes = gen.filled(level, max(1.5, float(np.nanmax(z)) + 1.0))[:2]
        return [Path(self._back(np.asarray(p)), c) for p, c in zip(points, codes, strict=True)
                if p is not None and len(p)]


def _cmap(name: str) -> Any:
    from matplotlib import colormaps

    return colormaps[name].copy()


def _short(ds: xr.Dataset, d: str) -> str:
    sym = ds[d].attrs.get("symbol", "")
    return sym if sym.startswith("$") else d


def _constants_text(ds: xr.Dataset, fixed: Mapping[str, int]) -> str:
    """The sweep's single-valued inputs (fixed dims of length 1 and scalars) as a short text."""
    parts = []
    for d, i in fixed.items():
        if ds.sizes[d] == 1:
            parts.append(f"{_short(ds, d)} = {label_value(ds, d, i)}")
    scalars = ds.attrs.get("scalars") or {}
    if scalars.get("crystal"):
        parts.append(str(scalars["crystal"]))
    if scalars.get("thickness") is not None:
        parts.append(f"$L$ = {format_value('thickness', float(scalars['thickness']), plain=False)}")
    if scalars.get("n_positrons") is not None:
        parts.append(f"$N_b$ = {float(scalars['n_positrons']):.3g}")
    if scalars.get("photon_energy") is not None:
        er = format_value("photon_energy", float(scalars["photon_energy"]), plain=False)
        parts.append(rf"$\hbar\omega_r$ = {er}")
    if ds.attrs.get("length_model") == "dechanneling":
        parts.append(r"$L = \min(L_{crystal}, L_d)$")
    return ", ".join(parts)


def _wrap(text: str, width: int, *, words: bool = False) -> str:
    """``text`` broken into lines of at most ``width`` characters at ", " and "; " (``words``: at any
    space) outside mathtext (``$...$``), so no formula is split across lines."""
    pieces: list[str] = []
    start, math_mode = 0, False
    for i, ch in enumerate(text):
        if ch == "$":
            math_mode = not math_mode
        elif not math_mode and words and ch == " ":
            pieces.append(text[start:i + 1])
            start = i + 1
        elif not math_mode and ch in ",;" and text[i + 1:i + 2] == " ":
            pieces.append(text[start:i + 2])
            start = i + 2
    pieces.append(text[start:])
    lines = [""]
    for p in pieces:
        if lines[-1] and len(lines[-1]) + len(p) > width:
            lines.append("")
        lines[-1] += p
    return "\n".join(line.rstrip() for line in lines)


def _dim_name(ds: xr.Dataset, name: str, flag: str) -> str:
    dims = dim_order(ds)
    if name in dims:
        return name
    lowered = {d.lower(): d for d in dims}
    if name.lower() in lowered:
        return lowered[name.lower()]
    import difflib

    close = difflib.get_close_matches(name.lower(), list(lowered), n=1)
    hint = f"did you mean {lowered[close[0]]!r}?" if close else f"the store's dims: {', '.join(dims)}"
    raise SpecError(f"{flag}: {name!r} is not a dim of the store; {hint}")


def check_output(path: str) -> str:
    """The format of the figure file ``path`` (SpecError for another extension, a directory, or a parent
    directory that does not exist: a typo would otherwise grow a new directory tree)."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in FORMATS:
        raise SpecError(f"output: {path!r} has no .png, .svg or .pdf extension; name the file e.g. map.png")
    if os.path.isdir(str(path)):
        example = os.path.join(str(path), "map.png")
        raise SpecError(f"output: {path!r} is a directory; give a file name, e.g. {example}")
    check_parent_dir("output", str(path))
    return ext


def check_parent_dir(flag: str, path: str) -> None:
    """SpecError when the directory that would hold ``path`` does not exist (a typo in an output path
    would otherwise grow a new directory tree)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise SpecError(f"{flag}: the directory {parent} does not exist; create it first, or check the path")


def save_figure(fig: Figure, path: str) -> None:
    """Write ``fig`` to ``path`` (format from the extension: .png at 150 dpi, .svg, .pdf)."""
    ext = check_output(path)
    fig.savefig(str(path), dpi=150 if ext == ".png" else None,
                metadata={"Software": None} if ext == ".png" else None)
