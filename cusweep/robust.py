"""Robustness maps: how sure is a design's feasibility, and its objective, when inputs are uncertain.

For every design of a 2-D slice of a store's grid (dims ``x`` and ``y``; the other dims fixed as ``map``
fixes them), ``samples`` Monte Carlo draws (seeded) of the uncertain inputs are made and the MODEL (not
the store) is evaluated at each: the probability that the design is feasible (every constraint of
``cusweep.feasibility`` holds) is the fraction of draws where it is, and the 5/50/95 % quantiles of the
objective ``by`` are taken over all draws (NaN draws ignored).

An uncertain input is given as ``NAME=SPEC``:

* ``NAME=a..b UNIT`` (``potential_depth=22..25eV``): uniform on [a, b] (the value replaces the input);
* ``NAME=p%`` (``sigma_z=10%``): normal with a relative 1 sigma of p % around the design's value
  (truncated to positive values);
* ``NAME`` alone: uniform on the materials table's literature range (``potential_depth``, ``max_field``).

NAME is a sweep input (``sigma_z``, ``n_positrons``, ``energy``, ``thickness``, ``amplitude``, ``period``,
``sigma_r``, ``photon_energy``) or a crystal field (``potential_depth``, ``plasma_energy``, ``max_field``,
``interplanar_spacing``, ``thomas_fermi_radius``, ``mean_excitation_energy``). The draws are made once
(one unit draw per sample and input), so a design sees the same draws whatever the slice or batch size:
the answer for one design equals a direct loop over the draws at that design alone.

With ``facility`` in a tuned store, a sample counts as feasible only where the design also radiates at the
facility's FEL photon energy (``cusweep.photon_line``, the condition ``best --facility`` applies, checked
with that sample's inputs); in a detuned store the photon energy is fixed to the facility's
(``cusweep.select.facility_photon``).

Memory is bounded: only the slice's coordinates are evaluated, in tiles of rows of ``y`` holding at most
``max_elements`` sample x design values, each tile evaluated once per sample (vectorised over the tile).
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SpecError
from .photon_line import LINE_CONDITION, LINE_OUTPUTS, on_line

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from .model import Setup

__all__ = ["QUANTILES", "RobustResult", "Uncertainty", "parse_vary", "robust"]

#: the quantiles of the objective reported for every design
QUANTILES = (0.05, 0.5, 0.95)
#: sweep inputs that may be uncertain, and the kind of quantity each is
SWEEP_INPUTS = {"sigma_z": "length", "n_positrons": "dimensionless", "energy": "energy",
                "thickness": "length", "amplitude": "length", "period": "length", "sigma_r": "length",
                "photon_energy": "energy"}
#: crystal fields that may be uncertain
CRYSTAL_INPUTS = {"potential_depth": "energy", "plasma_energy": "energy", "max_field": "field",
                  "interplanar_spacing": "length", "thomas_fermi_radius": "length",
                  "mean_excitation_energy": "energy"}
#: a relative 1 sigma larger than this is refused (the normal would reach zero too often)
MAX_RELATIVE = 0.3
#: at most this many samples
MAX_SAMPLES = 100_000
#: default bound on sample x design values held at once (float64: 8 bytes each)
MAX_ELEMENTS = 4_000_000

_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Uncertainty:
    """One uncertain input: ``kind`` "uniform" (``lo``..``hi`` in store units), "relative" (normal, relative
    1 sigma ``rel``) or "literature" (uniform on each crystal's ``NAME_range``)."""

    name: str
    kind: str
    lo: float = math.nan
    hi: float = math.nan
    rel: float = math.nan

    def text(self) -> str:
        if self.kind == "relative":
            return f"{self.name} ±{100 * self.rel:g}% (normal, 1σ)"
        if self.kind == "literature":
            return f"{self.name} uniform on the literature range"
        return f"{self.name} uniform {_quantity(self.name, self.lo)} .. {_quantity(self.name, self.hi)}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "uniform":
            d.update(lo=self.lo, hi=self.hi)
        if self.kind == "relative":
            d["rel"] = self.rel
        return d


def _quantity(name: str, value: float) -> str:
    """A value of an uncertain input for people: display units where ``cusweep.display`` has them, else
    the store unit of its kind (eV, m, eV/m)."""
    from .display import DISPLAY, format_number, format_value
    from .units import STORE_UNITS

    if name in DISPLAY:
        return format_value(name, value, plain=False)
    kind = SWEEP_INPUTS.get(name) or CRYSTAL_INPUTS[name]
    unit = STORE_UNITS[kind]
    return format_number(value) + ("" if unit == "dimensionless" else f" {unit}")


def _allowed() -> str:
    return ", ".join([*SWEEP_INPUTS, *CRYSTAL_INPUTS])


def parse_vary(items: Sequence[str] | str) -> list[Uncertainty]:
    """``["potential_depth=22..25eV", "sigma_z=10%", "max_field"]`` -> Uncertainty list (SpecError naming
    ``vary`` on bad input)."""
    from .units import parse

    if isinstance(items, str):
        items = items.split()
    if not items:
        raise SpecError("vary: no uncertain input given; give e.g. potential_depth=22..25eV sigma_z=10%")
    result: list[Uncertainty] = []
    for item in items:
        name, _, spec = (t.strip() for t in str(item).partition("="))
        kind = SWEEP_INPUTS.get(name) or CRYSTAL_INPUTS.get(name)
        if kind is None:
            raise SpecError(f"vary: {name!r} is not an input that can be uncertain; use one of {_allowed()}")
        if any(u.name == name for u in result):
            raise SpecError(f"vary: {name} is given twice; give each input once")
        if not spec:
            if name not in ("potential_depth", "max_field"):
                raise SpecError(f"vary: {name} has no literature range in the materials table; give a range "
                                f"or a relative error, e.g. {name}=5%")
            result.append(Uncertainty(name, "literature"))
            continue
        if spec.endswith("%"):
            try:
                p = float(spec[:-1])
            except ValueError:
                raise SpecError(f"vary: {name}={spec} is not a percentage; write e.g. {name}=5%") from None
            if not (math.isfinite(p) and 0.0 <= p <= 100 * MAX_RELATIVE):
                raise SpecError(f"vary: {name}={spec} is outside 0..{100 * MAX_RELATIVE:g}%; give a relative "
                                f"1 sigma in that range, e.g. {name}=5%")
            result.append(Uncertainty(name, "relative", rel=p / 100.0))
            continue
        if ".." not in spec:
            raise SpecError(f"vary: {name}={spec} is neither a range a..b nor a percentage; write e.g. "
                            f"{name}={'22..25eV' if kind == 'energy' else '5%'}")
        a, _, b = (t.strip() for t in spec.partition(".."))
        m = _NUMBER.match(b)
        unit = b[m.end():].strip() if m else ""
        if m and _NUMBER.fullmatch(a) and unit:
            a = f"{a} {unit}"  # 22..25eV: the unit written once, after the upper end
        lo = parse(a if kind != "dimensionless" else _number(a, name), kind, f"vary {name}")
        hi = parse(b if kind != "dimensionless" else _number(b, name), kind, f"vary {name}")
        if not lo < hi:
            raise SpecError(f"vary: {name}={spec} is an empty range; give a..b with a < b")
        if lo <= 0:
            raise SpecError(f"vary: {name}={spec} reaches zero or below; give a positive range")
        result.append(Uncertainty(name, "uniform", lo=lo, hi=hi))
    return result


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpecError(f"vary: {name}: {text!r} is not a number; write e.g. {name}=1e9..2e9") from None


# ------------------------------------------------------------------------------------------ sampling


def draws(uncertainties: Sequence[Uncertainty], samples: int, seed: int) -> np.ndarray:
    """Unit draws, shape (inputs, samples): U(0, 1) for ranges, N(0, 1) truncated to 1 + rel z > 0 for
    relative errors. Made once, in the order the inputs are given, from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(uncertainties), samples))
    for j, u in enumerate(uncertainties):
        if u.kind == "relative":
            z = rng.standard_normal(samples)
            bad = 1.0 + u.rel * z <= 0.0
            while bad.any():  # truncation: below -1/rel (beyond 3.3 sigma) redrawn
                z[bad] = rng.standard_normal(int(bad.sum()))
                bad = 1.0 + u.rel * z <= 0.0
            out[j] = z
        else:
            out[j] = rng.uniform(size=samples)
    return out


def _value(u: Uncertainty, base: Any, draw: float, crystal: Any = None) -> Any:
    if u.kind == "relative":
        return base * (1.0 + u.rel * draw)
    if u.kind == "literature":
        lo, hi = getattr(crystal, f"{u.name}_range")
    else:
        lo, hi = u.lo, u.hi
    return np.full_like(base, lo + draw * (hi - lo), dtype=np.float64) if np.ndim(base) else \
        lo + draw * (hi - lo)


def _field(name: str, value: Any) -> dict[str, Any]:
    return {name: float(value)}


def perturbed(setup: Setup, coords: Mapping[str, np.ndarray], uncertainties: Sequence[Uncertainty],
              draw: np.ndarray) -> tuple[Setup, dict[str, np.ndarray]]:
    """The setup and coordinates of one sample (``draw``: one unit draw per input)."""
    scalars = dict(setup.scalars)
    crystals = dict(setup.crystals)
    out = dict(coords)
    for u, d in zip(uncertainties, draw, strict=True):
        if u.name in CRYSTAL_INPUTS:
            # a literature range only for the crystals that have one (``_check``: every crystal of the
            # slice has)
            crystals = {k: c if u.kind == "literature" and getattr(c, f"{u.name}_range") is None else
                        dataclasses.replace(c, **_field(u.name, _value(u, getattr(c, u.name), d, c)))
                        for k, c in crystals.items()}
        elif u.name in out:
            out[u.name] = np.asarray(_value(u, np.asarray(out[u.name], dtype=np.float64), d))
        else:
            scalars[u.name] = float(_value(u, float(scalars[u.name]), d))
    return dataclasses.replace(setup, scalars=scalars, crystals=crystals), out


def _check(setup: Setup, uncertainties: Sequence[Uncertainty], coords: Mapping[str, np.ndarray], x: str,
           y: str) -> None:
    for u in uncertainties:
        if u.name in CRYSTAL_INPUTS:
            names = [str(n) for n in np.atleast_1d(coords["crystal"])] if "crystal" in coords else \
                [str(setup.scalars["crystal"])]
            if u.kind == "literature":
                lacking = [n for n in names if getattr(setup.crystals[n], f"{u.name}_range", None) is None]
                if lacking:
                    raise SpecError(f"vary: {u.name}: crystal {lacking[0]} has no literature range of "
                                    f"{u.name} in the materials table; give a range a..b or a percentage")
            elif u.kind == "uniform" and len(set(names)) > 1:
                raise SpecError(f"vary: {u.name}: one range for several crystals ({', '.join(names)}) "
                                "means nothing; give a percentage, or fix the crystal with at crystal=NAME")
            continue
        if u.kind == "uniform" and u.name in (x, y):
            raise SpecError(f"vary: {u.name} is an axis of the map; give a relative error, e.g. "
                            f"{u.name}=5%, not a range")
        if u.name not in coords and setup.scalars.get(u.name) is None:
            raise SpecError(f"vary: {u.name} is not an input of this sweep (it gives no {u.name}); drop it")


# ------------------------------------------------------------------------------------------ the result


@dataclass
class RobustResult:
    """P(feasible) and quantiles of ``var`` on the (y, x) grid of a slice, with what was sampled."""

    var: str
    x: str
    y: str
    x_values: np.ndarray
    y_values: np.ndarray
    fixed: dict[str, Any]  # every other dim -> its grid value (store units)
    uncertainties: list[Uncertainty]
    samples: int
    seed: int
    p_feasible: np.ndarray  # (ny, nx)
    quantiles: dict[float, np.ndarray]  # q -> (ny, nx), store units
    units: str = ""
    notes: list[str] = field(default_factory=list)
    #: the facility's FEL photon energy (eV) the designs must radiate at in every sample
    #: (``cusweep.photon_line``; a tuned store with ``facility``), None without that condition
    photon_energy: float | None = None

    @property
    def median(self) -> np.ndarray:
        return self.quantiles[0.5]

    def ranking(self) -> np.ndarray:
        """Flat (y, x) indices, most robust first: P(feasible) descending, then median ``var`` descending
        (NaN medians last)."""
        p = self.p_feasible.reshape(-1)
        med = np.nan_to_num(self.median.reshape(-1), nan=-np.inf)
        return np.lexsort((-med, -p))

    def rows(self, n: int = 10) -> list[dict[str, Any]]:
        """The ``n`` most robust designs: x, y, p_feasible and the quantiles (store units)."""
        nx = len(self.x_values)
        out = []
        for flat in self.ranking()[:n]:
            j, i = divmod(int(flat), nx)
            row: dict[str, Any] = {self.x: _py(self.x_values[i]), self.y: _py(self.y_values[j]),
                                   "p_feasible": float(self.p_feasible[j, i])}
            for q, arr in self.quantiles.items():
                row[f"{self.var}_q{round(100 * q):02d}"] = _py(arr[j, i])
            out.append(row)
        return out

    def to_dict(self, n: int = 10) -> dict[str, Any]:
        """JSON-safe summary (store units; NaN as None)."""
        return {"var": self.var, "units": self.units, "x": self.x, "y": self.y,
                "at": {d: _py(v) for d, v in self.fixed.items()}, "samples": self.samples, "seed": self.seed,
                "vary": [u.to_dict() for u in self.uncertainties], "quantiles": list(QUANTILES),
                "top": self.rows(n), "notes": list(self.notes),
                "photon_energy_condition": None if self.photon_energy is None else
                {"photon_energy": self.photon_energy, "condition": LINE_CONDITION}}

    def text(self, n: int = 10) -> str:
        """The most robust designs as a table in display units."""
        from .display import format_number, format_value

        head = [self.x, self.y, "P(feasible)"] + [f"{self.var} q{round(100 * q):02d}" for q in QUANTILES]
        lines = []
        for r in self.rows(n):
            cells = [_fmt(self.x, r[self.x]), _fmt(self.y, r[self.y]), f"{r['p_feasible']:.3f}"]
            for q in QUANTILES:
                v = r[f"{self.var}_q{round(100 * q):02d}"]
                cells.append("nan" if v is None else format_value(self.var, v, plain=False, units=self.units)
                             if self.var in _display_names() else format_number(v))
            lines.append(cells)
        widths = [max(len(h), *(len(c[k]) for c in lines)) if lines else len(h) for k, h in enumerate(head)]
        rows = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
        rows += ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in lines]
        vary = "; ".join(u.text() for u in self.uncertainties)
        head_line = f"most robust designs ({self.samples} samples, seed {self.seed}; {vary})"
        if self.photon_energy is not None:
            shown = format_value("photon_energy", self.photon_energy, plain=False)
            head_line += f"; feasible counts only samples radiating at {shown} ({LINE_CONDITION})"
        return head_line + ":\n" + "\n".join(rows)

    def figure(self, ds: xr.Dataset | None = None) -> Figure:
        """Two panels: P(feasible) (colour map, contours at 0.5 and 0.9) and the median of ``var``."""
        from matplotlib import colors
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        from .maps import _categorical, _display_factor, _edges, _Grid, _is_log

        fig = Figure(figsize=(12.0, 5.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax_p, ax_m = fig.subplots(1, 2)
        cat = {d: _categorical(np.asarray(v)) for d, v in ((self.x, self.x_values), (self.y, self.y_values))}
        logs = {d: (not cat[d]) and _is_log(np.asarray(v, dtype=float))
                for d, v in ((self.x, self.x_values), (self.y, self.y_values))}
        xv = np.arange(len(self.x_values), dtype=float) if cat[self.x] else \
            np.asarray(self.x_values, dtype=float) / _display_factor(self.x)
        yv = np.arange(len(self.y_values), dtype=float) if cat[self.y] else \
            np.asarray(self.y_values, dtype=float) / _display_factor(self.y)
        xe, ye = _edges(xv, logs[self.x]), _edges(yv, logs[self.y])
        grid = _Grid(xv, yv, xe, ye, logs[self.x], logs[self.y])
        mesh = ax_p.pcolormesh(xe, ye, self.p_feasible, cmap="RdYlGn", vmin=0.0, vmax=1.0, shading="flat",
                               rasterized=True)
        fig.colorbar(mesh, ax=ax_p, pad=0.02).set_label("probability feasible")
        handles = []
        self.contours: dict[float, list[np.ndarray]] = {}
        levels: tuple[tuple[float, Any], ...] = ((0.5, "--"), (0.9, "-"))
        for level, style in levels:
            p = self.p_feasible
            if not (p.min() < level < p.max()):
                continue
            segs = [] if any(cat.values()) else grid.lines(np.where(p > 0, p, 1e-6), level)
            for seg in segs:
                ax_p.plot(seg[:, 0], seg[:, 1], color="black", linestyle=style, linewidth=1.5)
                ax_m.plot(seg[:, 0], seg[:, 1], color="white", linestyle=style, linewidth=1.2)
            if segs:
                self.contours[level] = segs
                handles.append(Line2D([], [], color="black", linestyle=style, label=f"P = {level:g}"))
        if handles:
            ax_p.legend(handles=handles, loc="best", fontsize=8)
        med = self.median / _display_factor(self.var)
        finite = med[np.isfinite(med) & (med > 0)]
        norm: Any = None
        if finite.size and finite.max() / finite.min() > 100.0:
            norm = colors.LogNorm(vmin=float(finite.min()), vmax=float(finite.max()))
            med = np.where(med > 0, med, np.nan)
        cmap = colors.Colormap.with_extremes(_viridis(), bad="#e0e0e0")
        mesh = ax_m.pcolormesh(xe, ye, np.ma.masked_invalid(med), cmap=cmap, norm=norm, shading="flat",
                               rasterized=True)
        label = self.var if ds is None else _label(ds, self.var)
        fig.colorbar(mesh, ax=ax_m, pad=0.02).set_label(f"median {label}")
        for ax in (ax_p, ax_m):
            for d, set_scale, set_label, set_ticks, values in (
                    (self.x, ax.set_xscale, ax.set_xlabel, ax.set_xticks, self.x_values),
                    (self.y, ax.set_yscale, ax.set_ylabel, ax.set_yticks, self.y_values)):
                if logs[d]:
                    set_scale("log")
                set_label(d if ds is None else _label(ds, d))
                if cat[d]:
                    set_ticks(np.arange(len(values)), labels=[_fmt(d, _py(v)) for v in values])
            ax.set_xlim(xe[0], xe[-1])
            ax.set_ylim(ye[0], ye[-1])
        ax_p.set_title("probability that the design is feasible", fontsize=10, loc="left")
        ax_m.set_title(f"median of {self.var} over the samples (white: P = 0.5, 0.9)", fontsize=10,
                       loc="left")
        fixed = ", ".join(f"{d} = {_fmt(d, v)}" for d, v in self.fixed.items()
                          if ds is None or ds.sizes[d] > 1)
        vary = "; ".join(u.text() for u in self.uncertainties)
        sub = f"{self.samples} Monte Carlo samples (seed {self.seed}) of {vary}"
        sub += f"; {fixed}" if fixed else ""
        fig.suptitle(sub, fontsize=8, x=0.01, ha="left")
        return fig


def _viridis() -> Any:
    from matplotlib import colormaps

    return colormaps["viridis"]


def _label(ds: xr.Dataset, name: str) -> str:
    from .maps import _axis_label

    return _axis_label(ds, name)


def _display_names() -> Any:
    from .display import DISPLAY

    return DISPLAY


def _py(v: Any) -> Any:
    if isinstance(v, str | np.str_):
        return str(v)
    f = float(v)
    return f if math.isfinite(f) else None


def _fmt(name: str, v: Any) -> str:
    from .display import format_value

    if isinstance(v, str):
        return v
    return "nan" if v is None else format_value(name, v, plain=False)


# ------------------------------------------------------------------------------------------ the computation


def robust(ds: xr.Dataset, setup: Setup, by: str, x: str, y: str, vary: Sequence[str] | str, *,
           at: Mapping[str, Any] | Sequence[str] | None = None, facility: str | None = None,
           samples: int = 200, seed: int = 0, max_elements: int = MAX_ELEMENTS) -> RobustResult:
    """P(feasible) and the 5/50/95 % quantiles of ``by`` over a slice (dims ``x``, ``y``; the others fixed
    by ``at`` / ``facility`` or at their first grid value, as ``map`` does) of a store's grid, under the
    uncertain inputs ``vary`` (``parse_vary``), from ``samples`` model evaluations per design (seeded)."""
    from .maps import _dim_name
    from .model import evaluate
    from .quantities import VARIABLES
    from .query import resolve, units_of
    from .select import facility_photon, resolve_at, scalar

    uncertainties = parse_vary(vary)
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or \
            not 1 <= samples <= MAX_SAMPLES:
        raise SpecError(f"samples: {samples!r} is not a whole number in 1..{MAX_SAMPLES}; give e.g. "
                        "samples=200")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SpecError(f"seed: {seed!r} is not a whole number >= 0; give e.g. seed=1")
    x = _dim_name(ds, x, "x")
    y = _dim_name(ds, y, "y")
    if x == y:
        raise SpecError(f"x and y are both {x!r}; give two different dims")
    by = resolve(ds, by, "variable")
    if by not in VARIABLES or by in ds.sizes:
        raise SpecError(f"by: {by} is not a model output; give a variable such as photons_coh")
    fixed, notes = resolve_at(ds, x, y, at, facility)
    line_energy = None  # the facility's photon energy every sample must radiate at (a tuned store)
    if facility:
        photon = facility_photon(ds, facility)
        notes += photon.notes
        if photon.on_line and photon.photon_energy is not None:
            line_energy = photon.photon_energy
    outputs = (by, "feasible", *(LINE_OUTPUTS if line_energy is not None else ()))
    xs = np.asarray(ds[x].values)
    ys = np.asarray(ds[y].values)
    coords = {d: np.asarray(ds[d].values)[[i]] for d, i in fixed.items()}
    coords[x] = xs
    _check(setup, uncertainties, {**coords, y: ys}, x, y)
    unit = draws(uncertainties, int(samples), int(seed))
    n = int(samples)
    rows = max(1, int(max_elements) // max(1, n * len(xs)))
    p = np.empty((len(ys), len(xs)))
    qs = {q: np.empty((len(ys), len(xs))) for q in QUANTILES}
    dims = setup.dims
    for start in range(0, len(ys), rows):
        tile = {**coords, y: ys[start:start + rows]}
        shape = tuple(len(tile[d]) for d in dims)
        values = np.empty((n, shape[dims.index(y)], len(xs)))
        hits = np.zeros((shape[dims.index(y)], len(xs)))
        for s in range(n):
            s_setup, s_coords = perturbed(setup, tile, uncertainties, unit[:, s])
            out = evaluate(s_setup, s_coords, outputs)
            got = {name: _on_slice(s_setup, name, np.asarray(out[name]), shape, x, y) for name in outputs}
            values[s] = got[by]
            ok = got["feasible"] > 0.5
            if line_energy is not None:  # the sample's own resonance must lie on the facility's line
                ok &= on_line(got["resonance_energy"], got["n_periods"], line_energy)
            hits += ok
        p[start:start + rows] = hits / n
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN design: NaN quantiles
            quant = np.nanquantile(values, QUANTILES, axis=0)
        for q, arr in zip(QUANTILES, quant, strict=True):
            qs[q][start:start + rows] = arr
    return RobustResult(
        var=by, x=x, y=y, x_values=xs, y_values=ys,
        fixed={d: scalar(np.asarray(ds[d].values)[i]) for d, i in fixed.items()},
        uncertainties=uncertainties, samples=n, seed=int(seed), p_feasible=p, quantiles=qs,
        units=units_of(ds, by), notes=notes, photon_energy=line_energy)


def _on_slice(setup: Setup, name: str, value: np.ndarray, shape: tuple[int, ...], x: str, y: str
              ) -> np.ndarray:
    """An output on its natural dims -> (ny, nx) of the tile (every other dim has one value)."""
    dims = setup.dims
    keep = setup.natural_dims(name)
    own = [k if d in keep else 1 for d, k in zip(dims, shape, strict=True)]
    full = np.broadcast_to(value.reshape(own), shape)
    full = np.moveaxis(full, [dims.index(y), dims.index(x)], [0, 1])
    return np.asarray(full.reshape(full.shape[0], full.shape[1]), dtype=np.float64)
