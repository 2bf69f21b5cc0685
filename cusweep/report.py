"""The facilities report: for every facility preset whose beam energy is on the store's energy grid, the
best feasible design on the grid (in a tuned store only designs radiating at the facility's FEL photon
energy, ``cusweep.photon_line``, as ``best --facility`` keeps), the feasible fraction, and a feasibility
map (period x amplitude of the variable) at the best design; a summary table (``Report.text()``, display
units) and ``DIR/summary.csv`` (store units, the unit in each column name).

Positron beams at XFELs are hypothetical: the presets are electron-bunch parameters used as if the bunch
were made of positrons (see ``cusweep facilities``).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .best import OnLine
from .display import DISPLAY, format_number, format_value
from .errors import SelectionError, SpecError
from .photon_line import LINE_OUTPUTS, on_line_mask
from .query import dim_order
from .select import FACILITY_ENERGY_TOLERANCE, at_text, facility_at, facility_photon, ridge_sweep_text, scalar
from .stored import setup_of
from .top import top_points

if TYPE_CHECKING:
    import xarray as xr

    from .stored import StoredSweep

__all__ = ["FacilityRow", "Report", "report", "summary_table"]

#: a facility's energy must lie within this relative distance of a grid energy
ENERGY_TOLERANCE = FACILITY_ENERGY_TOLERANCE
COLUMNS = ("facility", "title", "status", "energy_eV", "grid_energy_eV", "best_n_coh", "period_m",
           "amplitude_m", "sigma_z_m", "bunching", "photon_energy_eV", "thickness_m", "n_positrons",
           "crystal", "feasible_fraction", "map", "notes")


@dataclass
class FacilityRow:
    facility: str
    title: str
    status: str  # "ok" | "no feasible point" | "skipped: <reason>"
    energy: float
    grid_energy: float | None = None
    best: float | None = None
    design: dict[str, Any] = field(default_factory=dict)
    feasible_fraction: float | None = None
    map: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    """The facilities report: one row per facility preset, where its files were written."""

    rows: list[FacilityRow]
    var: str
    outdir: str

    def __iter__(self) -> Any:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> FacilityRow:
        return self.rows[i]

    def text(self, *, si: bool = False) -> str:
        """The summary table (display units; ``si``: store units) and where the maps are."""
        return (summary_table(self.rows, self.var, si=si) + "\nPositron beams at XFELs are hypothetical "
                f"(electron-bunch parameters used as positrons). Maps and summary.csv in {self.outdir}")

    def notes(self) -> list[str]:
        """Every row's notes, prefixed with its facility."""
        return [f"{r.facility}: {n}" for r in self.rows for n in r.notes]

    def to_dict(self) -> dict[str, Any]:
        """The rows in store units (m, eV)."""
        return {"var": self.var, "outdir": self.outdir, "units": "store units (m, eV, 1)",
                "rows": [{**{k: v for k, v in vars(r).items() if k != "design"}, "design": dict(r.design)}
                         for r in self.rows]}


def default_var(ds: xr.Dataset) -> str:
    """What a report ranks by when not told: the coherent photon count per bunch (``photons_coh``) where the
    store holds it, else the paper's density ``n_coh`` (stores made with a restricted output list)."""
    return "photons_coh" if "photons_coh" in ds.data_vars else "n_coh"


def report(src: xr.Dataset | StoredSweep, outdir: str, var: str | None = None, *, x: str = "period",
           y: str = "amplitude", fmt: str = "png") -> Report:
    """Write ``outdir/<facility>_<var>.<fmt>`` maps and ``outdir/summary.csv``; return the Report. ``var``:
    the variable maximised per facility (default ``default_var``). ``src``: a ``StoredSweep`` (the best
    design and the feasible count read block by block, as ``best`` does) or any ``xarray.Dataset``."""
    from . import materials
    from .maps import check_parent_dir, map_figure, save_figure

    sweep: Any = src if hasattr(src, "skeleton") else None
    ds: Any = sweep.skeleton if sweep is not None else src  # names, sizes, coordinates, attrs
    full_ds: Any = sweep.ds if sweep is not None else src  # the dataset the maps are drawn from

    if var is None:
        var = default_var(ds)
    if "energy" not in ds.sizes:
        raise SpecError("report: the store has no energy dim")
    if var not in ds.data_vars:
        names = ", ".join(str(n) for n in ds.data_vars if ds[n].dtype != bool)
        raise SpecError(f"by: {var!r} is not a variable of the store; choose one of {names}")
    if "feasible" not in ds.data_vars:
        raise SpecError(f"report: the store needs the variables 'feasible' and {var!r}")
    for d in (x, y):
        if d not in ds.sizes or ds.sizes[d] < 2:
            raise SpecError(f"report: the store needs a swept {d} dim for the maps")
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise SpecError(f"output: {outdir} exists and is not a directory; give a directory for the maps")
    check_parent_dir("output", outdir)
    os.makedirs(outdir, exist_ok=True)
    grid = np.asarray(ds["energy"].values, dtype=np.float64)
    rows: list[FacilityRow] = []
    setup = None
    for fac in materials.facilities().values():
        row = FacilityRow(fac.name, fac.title, "ok", fac.energy)
        rows.append(row)
        i = int(np.argmin(np.abs(grid - fac.energy)))
        if abs(grid[i] - fac.energy) > ENERGY_TOLERANCE * fac.energy:
            shown = ", ".join(format_value("energy", v) for v in grid[:6])
            shown += ", ..." if grid.size > 6 else ""
            row.status = (f"skipped: energy {format_value('energy', fac.energy)} is not within "
                          f"{ENERGY_TOLERANCE:.0%} of a value of the store's energy grid ({shown})")
            continue
        at, notes = facility_at(ds, fac.name)
        row.notes += notes
        row.grid_energy = float(grid[at["energy"]])
        try:
            photon = facility_photon(ds, fac.name)
        except SelectionError as exc:  # a detuned store at another photon energy
            row.status = f"skipped: {str(exc).removeprefix(f'facility {fac.name}: ')}"
            continue
        row.notes += photon.notes
        line_energy = photon.photon_energy if photon.on_line else None
        if sweep is not None and (line_energy is None or all(n in ds.data_vars for n in LINE_OUTPUTS)):
            # block by block: only the chunks at the facility's grid values
            line_kw: dict[str, Any] = ({"also": LINE_OUTPUTS, "extra": OnLine(line_energy)}
                                       if line_energy is not None else {})
            pts = sweep.block_top("feasible", var, 1, at=at, **line_kw)
            total = math.prod(1 if d in at else int(ds.sizes[d]) for d in dim_order(ds))
            row.feasible_fraction = sweep.block_count("feasible", at=at) / max(1, total)
            if len(pts["energy"]):
                row.best = float(sweep.values_at({d: v[:1] for d, v in pts.items()}, [var])[var][0])
        else:
            full: Any = sweep.ds if sweep is not None else src
            sub = full.isel({d: [j] for d, j in at.items()})
            if line_energy is not None:  # only designs radiating at the facility's photon energy (as best)
                if setup is None:
                    setup = setup_of(ds)
                sub = sub.assign({var: sub[var].where(on_line_mask(sub, setup, line_energy))})
            feas = sub["feasible"]
            n_feasible = int(feas.sum().compute()) if hasattr(feas.data, "compute") else int(feas.sum())
            row.feasible_fraction = n_feasible / max(1, feas.size)
            pts = top_points(sub, "feasible", var, 1)
            if len(pts["energy"]):
                row.best = float(sub[var].isel({d: int(pts[str(d)][0]) for d in sub[var].dims}).values)
            pts = {d: np.full(v.shape, at[d], dtype=np.int64) if d in at else v for d, v in pts.items()}
        fixed: dict[str, Any] = {d: scalar(np.asarray(ds[d].values)[j]) for d, j in at.items()}
        if len(pts["energy"]):
            row.design = {d: scalar(np.asarray(ds[d].values)[pts[d][0]]) for d in dim_order(ds)}
            fixed.update({d: v for d, v in row.design.items() if d not in (x, y)})
        elif line_energy is not None:
            row.status = f"no feasible point radiating at {format_value('photon_energy', line_energy)}"
            row.notes.append(f"sweep the resonance ridge there: {ridge_sweep_text(line_energy)}")
        else:
            row.status = "no feasible point"
        at_values = {d: at_text(d, v) for d, v in fixed.items() if d not in (x, y)}
        fig = map_figure(full_ds, x, y, var, at=at_values, notes=row.notes,
                         photon_energy=line_energy)
        path = os.path.join(outdir, f"{fac.name}_{var}.{fmt}")
        save_figure(fig, path)
        row.map = path
    scalars = ds.attrs.get("scalars") or {}
    for row in rows:  # the sweep's single values (not dims) complete every design in the table
        for key in ("crystal", "photon_energy", "thickness", "n_positrons"):
            if row.design and key not in row.design and scalars.get(key) is not None:
                row.design[key] = scalars[key] if key == "crystal" else float(scalars[key])
    _write_csv(rows, os.path.join(outdir, "summary.csv"), var)
    _write_index(rows, outdir, var)
    return Report(rows, var, outdir)


def _write_index(rows: list[FacilityRow], outdir: str, var: str) -> str:
    """``outdir/index.html``: the summary table (display units) and every map in one self-contained page."""
    from .report_html import report_index

    head, body = _table(rows, var)
    table = [dict(zip(head, line, strict=True)) for line in body]
    maps = [(f"{r.title}: {var}", r.map) for r in rows if r.map]
    return report_index(outdir, maps, table, title=f"cusweep report: {var} per facility")


def _write_csv(rows: list[FacilityRow], path: str, var: str = "n_coh") -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([f"best_{var}" if c == "best_n_coh" else c for c in COLUMNS])
        for r in rows:
            w.writerow([r.facility, r.title, r.status, repr(r.energy), _num(r.grid_energy), _num(r.best),
                        _num(r.design.get("period")), _num(r.design.get("amplitude")),
                        _num(r.design.get("sigma_z")), _num(r.design.get("bunching")),
                        _num(r.design.get("photon_energy")), _num(r.design.get("thickness")),
                        _num(r.design.get("n_positrons")),
                        r.design.get("crystal", ""), _num(r.feasible_fraction), r.map or "",
                        "; ".join(r.notes)])


def _num(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return repr(float(x))


def summary_table(rows: list[FacilityRow], var: str = "n_coh", *, si: bool = False) -> str:
    """The report's rows as an aligned table in display units (µm, Å, GeV; ``si``: store units, m and eV),
    the unit in each header."""
    head, body = _table(rows, var, si=si)
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip() for b in body]
    return "\n".join(lines)


def _table(rows: list[FacilityRow], var: str, *, si: bool = False
           ) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The summary's header and rows as text in display units, the unit in each header (the text table and
    index.html)."""
    from .display import header
    from .quantities import VARIABLES

    var_units = VARIABLES[var].units if var in VARIABLES else "1"
    head: tuple[str, ...] = ("facility", header("energy", "eV", si=si),
                             header(f"best {var}", var_units, si=si), header("period", "m", si=si),
                             header("amplitude", "m", si=si),
                             header("sigma_z", "m", si=si), "b",
                             "crystal", "feasible", "status")

    def shown(name: str, value: Any) -> str:
        if si or name not in DISPLAY:
            return format_number(float(value))
        return format_number(float(value) / DISPLAY[name].factor)

    body: list[tuple[str, ...]] = []
    for r in rows:
        d = r.design
        body.append((r.facility, shown("energy", r.energy),
                     "" if r.best is None else format_number(r.best),
                     shown("period", d["period"]) if "period" in d else "",
                     shown("amplitude", d["amplitude"]) if "amplitude" in d else "",
                     shown("sigma_z", d["sigma_z"]) if "sigma_z" in d else "",
                     f"{d['bunching']:.3g}" if "bunching" in d else "", str(d.get("crystal", "")),
                     "" if r.feasible_fraction is None else f"{r.feasible_fraction:.1%}",
                     r.status))
    return head, body
