"""The explorer page: one Bokeh document per browser session, built from a :class:`StoreView`.

Controls: the variable, the two plotted dims, a slider (or selector) for every other dim with its value and
unit, a facility preset; the plot: the slice as an image (log colour scale where the values span more than
two decades), the infeasible region greyed, the boundary line (margin = 1) of every constraint of
``cusweep.feasibility.CONSTRAINTS``, a hover readout; a click (or "best in this slice") fills the table
with every stored variable at that grid point.

Axes: a dim whose grid is uniform is plotted on a linear axis, a log-spaced one on log10 of its value
(ticks labelled with the values), any other (a list of values, crystal names) by grid index with the
values as tick labels; the image's cells are then the grid's cells.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import feasibility
from ..errors import CusweepError
from .data import Slice, StoreView

if TYPE_CHECKING:
    from bokeh.document import Document

#: boundary line colours, one per constraint (cycled)
LINE_COLOURS = ("#ffffff", "#ff7f0e", "#d62728", "#e377c2", "#17becf", "#bcbd22", "#8c564b")
LINE_DASHES = ("solid", "dashed", "dashdot", "dotted", "dotdash", "solid", "dashed")
NAN_COLOUR = "#e0e0e0"
NO_FACILITY = "(none)"
#: the legend entry of the grey overlay (extended when a facility's photon energy greys designs too)
MASK_LABEL = "infeasible (greyed)"
#: a slice that decodes more than this many bytes of chunks says so (a slider move then takes seconds)
SLOW_BYTES = 1e9
#: the readout of a slice computed by the model first, while the store is read (``StoreView.slice``)
MODEL_PENDING = "computed by cusweep's model for this slice; checking against the store…"
MODEL_CONFIRMED = ("computed by cusweep's model for this slice = store (the stored values, read since, are "
                   "the same)")
MODEL_UNCHECKED = ("computed by cusweep's model for this slice; not checked: another view of this store read "
                   "the store meanwhile (move a slider to check)")
MODEL_DIFFERS = ("the store's values differ from cusweep's model on this slice ({names}): the page shows the "
                 "stored values, and the model is no longer used for this store")
#: tick label of a log axis (plotted as log10 of the value)
LOG_TICK_JS = "return Number((10**tick).toPrecision(3)).toString()"


def axis_kind(values: np.ndarray) -> str:
    """How a dim is plotted: "linear" (uniform grid), "log" (uniform in log), else "index"."""
    if values.dtype.kind not in "fiu" or len(values) < 2:
        return "index"
    v = np.asarray(values, dtype=np.float64)
    d = np.diff(v)
    if np.allclose(d, d[0], rtol=1e-6, atol=0.0) and d[0] != 0:
        return "linear"
    if np.all(v > 0):
        r = np.diff(np.log(v))
        if np.allclose(r, r[0], rtol=1e-6, atol=0.0):
            return "log"
    return "index"


def positions(values: np.ndarray, kind: str) -> np.ndarray:
    """Plot positions of grid values (display units) on an axis of ``kind``."""
    if kind == "linear":
        return np.asarray(values, dtype=np.float64)
    if kind == "log":
        return np.log10(np.asarray(values, dtype=np.float64))
    return np.arange(len(values), dtype=np.float64)


def log_ticks(lo: float, hi: float) -> list[float]:
    """log10 of the 1-2-5 values between 10**lo and 10**hi (at most ~12; decades only when wider)."""
    k0, k1 = math.floor(lo), math.ceil(hi)
    subs = (1.0, 2.0, 5.0) if k1 - k0 <= 4 else (1.0,)
    ticks = [math.log10(s) + k for k in range(k0, k1 + 1) for s in subs]
    ticks = [t for t in ticks if lo <= t <= hi]
    while len(ticks) > 12:
        ticks = ticks[::2]
    return ticks


def default_axes(view: StoreView, var: str) -> tuple[str, str]:
    """The first page's (x, y): period x amplitude (or the first two swept dims), unless that slice decodes
    more than SLOW_BYTES of chunks; then the pair of swept dims whose slice decodes least (the page opens
    in seconds, and the user chooses period x amplitude knowing its cost)."""
    swept = [d for d in view.dims if view.size(d) > 1]
    if len(swept) < 2:
        return (swept + [d for d in view.dims if d not in swept])[:2]  # type: ignore[return-value]
    pairs = [(a, b) for i, a in enumerate(swept) for b in swept[i + 1:]]
    first = ("period", "amplitude") if {"period", "amplitude"} <= set(swept) else pairs[0]
    if view.decoded_bytes(var, *first) <= SLOW_BYTES:
        return first
    return min([first, *pairs], key=lambda p: view.decoded_bytes(var, *p))


class Explorer:
    """The widgets, plot and callbacks of one session."""

    def __init__(self, view: StoreView, doc: Document) -> None:
        from bokeh.layouts import column, row
        from bokeh.models import (
            Button,
            ColorBar,
            ColumnDataSource,
            CustomJS,
            CustomJSHover,
            DataTable,
            Div,
            HoverTool,
            LinearColorMapper,
            LogColorMapper,
            Range1d,
            Select,
            Slider,
            TableColumn,
        )
        from bokeh.palettes import Viridis256
        from bokeh.plotting import figure

        self.view = view
        self.doc = doc
        self.busy = False
        var = "n_coh" if "n_coh" in view.variables else view.variables[0]
        x, y = default_axes(view, var)
        self.at = {d: 0 for d in view.dims}

        self.var_select = Select(title="variable", value=var, options=list(view.variables), name="var_select",
                                 width=260)
        choices = [d for d in view.dims if view.size(d) > 1] or list(view.dims)
        self.x_select = Select(title="horizontal axis", value=x, options=choices, name="x_select", width=125)
        self.y_select = Select(title="vertical axis", value=y, options=choices, name="y_select", width=125)
        self.controls: dict[str, Any] = {}
        for d in view.dims:
            n = view.size(d)
            if n == 1:
                self.controls[d] = Div(text=f"{self._dim_title(d)} (single value)", name=f"fixed_{d}")
            elif view.is_label_dim(d):
                self.controls[d] = Select(title=view.long_name(d), value=str(view.coord(d)[0]),
                                          options=[str(v) for v in view.coord(d)], name=f"select_{d}",
                                          width=260)
                self.controls[d].on_change("value", self._on_label(d))
            else:
                s = Slider(start=0, end=n - 1, value=0, step=1, show_value=False, title=self._dim_title(d),
                           name=f"slider_{d}", width=260)
                s.on_change("value", self._on_slider_title(d))
                s.on_change("value_throttled", self._on_slider(d))
                self.controls[d] = s
        from ..materials import facilities

        #: the facility preset chosen (None: none) and, in a tuned store, the FEL photon energy [eV] its
        #: designs must radiate at (greyed elsewhere; ``best --facility``'s condition)
        self.facility: str | None = None
        self.photon_energy: float | None = None
        self.facility_select = Select(title="facility preset (energy, n_positrons, sigma_z, photon energy)",
                                      value=NO_FACILITY, options=[NO_FACILITY, *sorted(facilities())],
                                      name="facility_select", width=260)
        self.best_button = Button(label="best in this slice", name="best_button", width=260)
        self.status = Div(text="", name="status", width=260)
        #: where the plotted values come from: the model first (checking the store), confirmed, or refuted
        self.source_note = Div(text="", name="source_note", width=720)

        self.image_source = ColumnDataSource(data={"image": [np.zeros((1, 1))], "x": [0.0], "y": [0.0],
                                                   "dw": [1.0], "dh": [1.0], "unit": [""]},
                                             name="image_source")
        self.mask_source = ColumnDataSource(data={"image": [np.full((1, 1), np.nan)], "x": [0.0], "y": [0.0],
                                                  "dw": [1.0], "dh": [1.0]}, name="mask_source")
        self.ax_sources = {a: ColumnDataSource(data={"pos": [0.0], "lab": [""]}, name=f"{a}_axis_source")
                           for a in ("x", "y")}
        self.marker_source = ColumnDataSource(data={"x": [], "y": []}, name="marker_source")
        self.point_source = ColumnDataSource(data={"name": [], "value": [], "unit": []}, name="point_source")

        self.mappers = {
            "linear": LinearColorMapper(palette=Viridis256, nan_color=NAN_COLOUR, name="linear_mapper"),
            "log": LogColorMapper(palette=Viridis256, nan_color=NAN_COLOUR, name="log_mapper"),
            "bool": LinearColorMapper(palette=["#c7c7c7", "#2ca02c"], low=-0.5, high=1.5,
                                      nan_color=NAN_COLOUR, name="bool_mapper"),
        }
        p = figure(width=720, height=560, name="plot", tools="pan,wheel_zoom,box_zoom,reset,save,tap",
                   toolbar_location="above", x_range=Range1d(0, 1), y_range=Range1d(0, 1))
        p.grid.visible = False
        self.plot = p
        self.image = p.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.image_source,
                             color_mapper=self.mappers["linear"], name="image")
        mask_mapper = LinearColorMapper(palette=["#303030"], low=0.0, high=1.0, nan_color="#00000000")
        p.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.mask_source,
                color_mapper=mask_mapper, global_alpha=0.45, name="infeasible")
        # legend swatch of the grey overlay (a marker at no position: drawn in the legend only)
        swatch = p.scatter([math.nan], [math.nan], marker="square", size=12, color="#303030", alpha=0.45,
                           legend_label=MASK_LABEL, name="mask_swatch")
        self.lines: dict[str, Any] = {}
        for k, c in enumerate(feasibility.CONSTRAINTS):
            src = ColumnDataSource(data={"xs": [], "ys": []}, name=f"line_{c.name}_source")
            self.lines[c.name] = p.multi_line(xs="xs", ys="ys", source=src, line_width=2,
                                              line_color=LINE_COLOURS[k % len(LINE_COLOURS)],
                                              line_dash=LINE_DASHES[k % len(LINE_DASHES)],
                                              legend_label=f"{c.text} ({c.name})", name=f"line_{c.name}")
        p.scatter(x="x", y="y", source=self.marker_source, marker="circle_x", size=16, fill_color=None,
                  line_color="#ff0000", line_width=2, name="marker")
        legend = p.legend[0]
        self.mask_item = next(it for it in legend.items if swatch in it.renderers)
        legend.label_text_font_size = "8pt"
        legend.spacing = 0
        legend.padding = 4
        legend.background_fill_color = "#3a3a3a"  # dark: the white channeling line shows
        legend.background_fill_alpha = 0.8
        legend.label_text_color = "#ffffff"
        legend.inactive_fill_color = "#3a3a3a"
        legend.location = "top_left"
        legend.click_policy = "hide"
        self.colorbar = ColorBar(color_mapper=self.mappers["linear"], width=14, title="", name="colorbar")
        p.add_layout(self.colorbar, "right")

        snap = """
            const p = ax.data.pos, lab = ax.data.lab;
            let best = 0;
            for (let i = 1; i < p.length; i++)
                if (Math.abs(p[i] - value) < Math.abs(p[best] - value)) best = i;
            return lab[best];
        """
        self.hover = HoverTool(renderers=[self.image], tooltips=[("x", "$x{custom}"), ("y", "$y{custom}"),
                                                                 ("value", "@image{%0.4g} @unit")],
                               formatters={"$x": CustomJSHover(code=snap, args={"ax": self.ax_sources["x"]}),
                                           "$y": CustomJSHover(code=snap, args={"ax": self.ax_sources["y"]}),
                                           "@image": "printf"})
        p.add_tools(self.hover)

        self.point_title = Div(text="click the map (or press “best in this slice”) to see every variable at "
                                    "that grid point", name="point_title", width=720)
        self.table = DataTable(source=self.point_source, name="point_table", width=720, height=300,
                               index_position=None, reorderable=False,
                               columns=[TableColumn(field="name", title="variable", width=200),
                                        TableColumn(field="value", title="value", width=140),
                                        TableColumn(field="unit", title="unit", width=80)])

        title = Div(text=f"<b>cusweep explore</b> {_esc(view.ds.attrs.get('name', '') or view.path)}",
                    name="title", width=260)
        note = Div(text=_esc(view.setup_note), width=260) if view.setup_note else None
        side = [title, self.var_select, row(self.x_select, self.y_select),
                *[self.controls[d] for d in view.dims], self.facility_select, self.best_button, self.status]
        if note is not None:
            side.append(note)
        layout = row(column(*side, name="controls"),
                     column(p, self.source_note, self.point_title, self.table))
        doc.add_root(layout)
        doc.title = "cusweep explore"

        self.var_select.on_change("value", lambda attr, old, new: self.update())
        self.x_select.on_change("value", self._on_axis("x"))
        self.y_select.on_change("value", self._on_axis("y"))
        self.facility_select.on_change("value", self._on_facility)
        self.best_request = ColumnDataSource(data={"n": []}, name="best_request")
        self.best_button.js_on_click(CustomJS(args={"src": self.best_request},
                                              code="src.data = {n: [src.data.n.length + 1]};"))
        self.best_request.on_change("data", lambda attr, old, new: self._on_best())
        # a click (like the button above) reaches the server as a change of a small data source: a model
        # property change, synced like a slider's value (UI events sent as Bokeh events did not reach the
        # server's callbacks in Bokeh 3.9)
        self.tap_source = ColumnDataSource(data={"x": [], "y": []}, name="tap_source")
        p.js_on_event("tap", CustomJS(args={"src": self.tap_source},
                                      code="src.data = {x: [cb_obj.x], y: [cb_obj.y]};"))
        self.tap_source.on_change("data", lambda attr, old, new: self._on_tap(new))
        self.slice: Slice | None = None
        self.update()

    # ---------------------------------------------------------------- callbacks

    def _dim_title(self, d: str) -> str:
        return f"{self.view.long_name(d)} ({d}) = {self.view.value_text(d, self.at[d])}"

    def _on_slider_title(self, d: str) -> Any:
        def cb(attr: str, old: Any, new: Any) -> None:
            self.at[d] = int(new)
            self.controls[d].title = self._dim_title(d)
        return cb

    def _on_slider(self, d: str) -> Any:
        def cb(attr: str, old: Any, new: Any) -> None:
            self.at[d] = int(new)
            self.controls[d].title = self._dim_title(d)
            if not self.busy:
                self.update()
        return cb

    def _on_label(self, d: str) -> Any:
        def cb(attr: str, old: Any, new: Any) -> None:
            self.at[d] = [str(v) for v in self.view.coord(d)].index(new)
            if not self.busy:
                self.update()
        return cb

    def _on_axis(self, which: str) -> Any:
        def cb(attr: str, old: Any, new: Any) -> None:
            other = self.y_select if which == "x" else self.x_select
            if other.value == new:  # the same dim on both axes: swap
                self.busy = True
                other.value = old
                self.busy = False
            self.update()
        return cb

    def _on_facility(self, attr: str, old: Any, new: Any) -> None:
        if new == NO_FACILITY:
            self.facility, self.photon_energy = None, None
            self.update()
            self.status.text = "no facility preset: the photon energy does not grey any design"
            return
        from ..select import facility_at, facility_photon

        try:
            at, notes = facility_at(self.view.ds, new)
            photon = facility_photon(self.view.ds, new)
        except CusweepError as exc:  # the preset does not fit the store: no stale photon-energy greying
            self.facility, self.photon_energy = None, None
            self.update()
            self.status.text = _esc(str(exc))
            return
        notes += photon.notes
        plotted = (self.x_select.value, self.y_select.value)
        self.busy = True
        for d, i in at.items():
            if d in plotted:
                notes.append(f"{d} is a plotted axis; the preset does not fix it")
                continue
            self.at[d] = i
            ctl = self.controls[d]
            if hasattr(ctl, "end"):
                ctl.value = i
                ctl.title = self._dim_title(d)
            elif hasattr(ctl, "options"):
                ctl.value = ctl.options[i]
        self.busy = False
        self.facility = new
        self.photon_energy = photon.photon_energy if photon.on_line else None
        self.update()
        self.status.text = _esc("; ".join([f"{new} preset applied", *notes, *self._line_notes()]))

    def _line_notes(self) -> list[str]:
        """The readout of the facility's photon-energy condition (empty without one)."""
        if self.photon_energy is None:
            return []
        from ..best import LINE_CONDITION
        from ..display import format_value

        shown = format_value("photon_energy", self.photon_energy, plain=False)
        return [f"greyed also: designs that do not radiate at {self.facility}'s photon energy {shown} "
                f"(kept where {LINE_CONDITION})"]

    def _on_tap(self, data: Any) -> None:
        s = self.slice
        if s is None or not len(data.get("x", ())) or not len(data.get("y", ())):
            return
        x, y = float(data["x"][0]), float(data["y"][0])
        i = int(np.argmin(np.abs(np.asarray(self.ax_sources["x"].data["pos"]) - x)))
        j = int(np.argmin(np.abs(np.asarray(self.ax_sources["y"].data["pos"]) - y)))
        self.show_point({**s.at, s.x: int(s.xi[i]), s.y: int(s.yi[j])})

    def _on_best(self) -> None:
        s = self.slice
        if s is None:
            return
        if self.view.is_bool(s.var):
            self.status.text = f"{s.var} is a flag: choose a numeric variable to maximise"
            return
        at = self.view.best_in_slice(s.var, s.x, s.y, s.at, photon_energy=self.photon_energy)
        where = "feasible points" + ("" if self.photon_energy is None else
                                     f" radiating at {self.facility}'s photon energy")
        if at is None:
            self.status.text = _esc(f"no {where.replace('points', 'point')} with a value in this slice")
            return
        self.show_point(at)
        self.status.text = _esc(f"largest {s.var} over the {where} of this slice: "
                                f"{self.point_source.data['value'][self.view.variables.index(s.var)]} "
                                f"{self.view.unit(s.var)}")

    # ---------------------------------------------------------------- drawing

    def show_point(self, at: dict[str, int]) -> None:
        """Fill the table with every variable at grid point ``at`` and mark it on the plot."""
        view = self.view
        values = view.point(at)
        names, texts, units = [], [], []
        for d in view.dims:
            names.append(d)
            texts.append(_number(view.coord(d)[at[d]], view.factor(d)))
            units.append(view.unit(d))
        for name, v in values.items():
            names.append(name)
            texts.append(_number(v, view.factor(name)))
            units.append(view.unit(name))
        # variables first (their order is the store's), then the point's coordinates
        k = len(view.dims)
        self.point_source.data = {"name": names[k:] + names[:k], "value": texts[k:] + texts[:k],
                                  "unit": units[k:] + units[:k]}
        self.point_title.text = "<b>grid point</b> " + _esc(", ".join(
            f"{d} = {view.value_text(d, at[d])}" for d in view.dims if view.size(d) > 1))
        s = self.slice
        if s is not None and all(at[d] == s.at[d] for d in s.at):
            xs = self._pos(s.x, np.array([at[s.x]]))
            ys = self._pos(s.y, np.array([at[s.y]]))
            self.marker_source.data = {"x": list(xs), "y": list(ys)}
        else:
            self.marker_source.data = {"x": [], "y": []}

    def _pos(self, dim: str, idx: np.ndarray) -> np.ndarray:
        view = self.view
        kind = axis_kind(view.coord(dim))
        if kind == "index":
            return idx.astype(np.float64)
        return positions(view.display_coord(dim)[idx], kind)

    def update(self) -> None:
        """Read the current slice and redraw the image, mask, lines, axes and colour scale."""
        from bokeh.models import BasicTicker, BasicTickFormatter, CustomJSTickFormatter, FixedTicker

        view = self.view
        var, x, y = self.var_select.value, self.x_select.value, self.y_select.value
        for d, ctl in self.controls.items():
            ctl.visible = d not in (x, y)
        s = view.slice(var, x, y, self.at, photon_energy=self.photon_energy, refresh=False, model_first=True)
        self.slice = s
        px, py = self._pos(x, s.xi), self._pos(y, s.yi)
        ex, ey = _edges(px), _edges(py)
        geometry = {"x": [ex[0]], "y": [ey[0]], "dw": [ex[-1] - ex[0]], "dh": [ey[-1] - ey[0]]}

        z = s.z
        kind = "bool" if view.is_bool(var) else "linear"
        finite = z[np.isfinite(z)]
        positive = finite[finite > 0]
        mapper = self.mappers[kind]
        if kind != "bool" and positive.size and positive.max() / positive.min() > 100.0:
            kind = "log"
            mapper = self.mappers["log"]
            z = np.where(z > 0, z, np.nan)
            mapper.update(low=float(positive.min()), high=float(positive.max()))
        elif kind == "linear":
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            mapper.update(low=lo, high=hi if hi > lo else lo + 1.0)
        self.image.glyph.color_mapper = mapper
        self.colorbar.color_mapper = mapper
        self.colorbar.title = view.label(var) + ("  (log scale)" if kind == "log" else "")
        self.image_source.data = {"image": [z], **geometry, "unit": [view.unit(var)]}
        greyed = np.zeros(z.shape, dtype=bool)
        if s.infeasible is not None and var != "feasible":
            greyed |= s.infeasible
        if s.off_line is not None:
            greyed |= s.off_line
        self.mask_source.data = {"image": [np.where(greyed, 1.0, np.nan)], **geometry}
        self.mask_item.label = {"value": MASK_LABEL if self.photon_energy is None else
                                f"infeasible or not at {self.facility}'s photon energy (greyed)"}

        labels = {}
        for a, d, pos in (("x", x, px), ("y", y, py)):
            idx = s.xi if a == "x" else s.yi
            labels[a] = [f"{view.value_text(d, int(i))}" for i in idx]
            self.ax_sources[a].data = {"pos": list(pos), "lab": labels[a]}
        for axis, d, pos in ((self.plot.xaxis[0], x, px), (self.plot.yaxis[0], y, py)):
            kind_d = axis_kind(view.coord(d))
            axis.axis_label = view.label(d) + ("  (log scale)" if kind_d == "log" else "")
            if kind_d == "log":
                axis.ticker = FixedTicker(ticks=log_ticks(float(pos[0]), float(pos[-1])))
                axis.formatter = CustomJSTickFormatter(code=LOG_TICK_JS)
            elif kind_d == "index":
                every = max(1, math.ceil(len(pos) / 10))
                axis.ticker = FixedTicker(ticks=[float(t) for t in pos[::every]])
                axis.formatter = CustomJSTickFormatter(code="return labs[Math.round(tick)] ?? ''",
                                                       args={"labs": [str(v) for v in
                                                                      [view.value_text(d, i) for i in
                                                                       range(view.size(d))]]})
            else:
                axis.ticker = BasicTicker()
                axis.formatter = BasicTickFormatter()
        for rng, e in ((self.plot.x_range, ex), (self.plot.y_range, ey)):
            rng.update(start=float(e[0]), end=float(e[-1]), reset_start=float(e[0]), reset_end=float(e[-1]))
        self._show_source(s, MODEL_PENDING if s.source == "model" else "")
        self.hover.tooltips = [(d, f"${a}{{custom}}") for a, d in (("x", x), ("y", y))] + \
            [(var, "@image{%0.4g} @unit")]
        self._draw_lines(s, px, py)
        self.marker_source.data = {"x": [], "y": []}
        decoded = view.decoded_bytes(var, x, y)
        if decoded > SLOW_BYTES:
            fast = [d for d in view.whole_chunk_dims(var) if view.size(d) > 1]
            hint = f"; slices over {' and '.join(fast[:2])} read fewer chunks" if len(fast) >= 2 else ""
            gb = f"{decoded / 1e9:.1f} GB of stored chunks of {var}"
            if s.source == "model":  # computed by the model; the store is read in the background
                slow = (f"slow slice: {gb} decoded in the background to check the model's values; one slider "
                        "moved then answers from memory")
            elif view.cubed(s):  # slider-axis cubes: a later move of one slider is answered from memory
                slow = f"slow slice: its first view decodes {gb}; one slider moved then answers from memory"
            else:
                slow = f"slow slice: each change decodes {gb}{hint}"
            self.status.text = _esc("; ".join([slow, *self._line_notes()]))
        else:
            self.status.text = _esc("; ".join(self._line_notes()))
        # the cubes of this position (and the check of the model's values), in the background once drawn
        view.refresh_cubes(on_checked=lambda check: self.doc.add_next_tick_callback(
            functools.partial(self._on_checked, s)))

    def _show_source(self, s: Slice, note: str) -> None:
        """Label the plot with where its values come from (the model first, confirmed, or the store)."""
        view = self.view
        suffix = {MODEL_PENDING: " — cusweep's model, checking the store…",
                  MODEL_CONFIRMED: " — cusweep's model = store",
                  MODEL_UNCHECKED: " — cusweep's model, not checked"}.get(note, "")
        self.plot.title.text = f"{view.long_name(s.var)} ({s.var}){suffix}"
        self.source_note.text = _esc(note)

    def _on_checked(self, s: Slice) -> None:
        """The store's answer to a slice the model computed first (run in the document's thread)."""
        check = s.check
        if self.slice is not s or check is None:  # the page moved on: that check no longer matters
            return
        if check.state == "differs":  # the stored values, from the cubes the check just filled
            self.update()
            assert self.slice is not None
            self._show_source(self.slice, MODEL_DIFFERS.format(names=", ".join(check.differs)))
        elif check.state == "confirmed":
            if not check.bitwise:  # equal to the last bits: draw the stored values themselves
                self.update()
                assert self.slice is not None
                s = self.slice
            self._show_source(s, MODEL_CONFIRMED)
        elif check.state == "abandoned":  # another session's read stopped it while this page still shows it
            self._show_source(s, MODEL_UNCHECKED)

    def _draw_lines(self, s: Slice, px: np.ndarray, py: np.ndarray) -> None:
        view = self.view
        categorical = any(axis_kind(view.coord(d)) == "index" and view.is_label_dim(d) for d in (s.x, s.y))
        fields = {} if categorical else s.margins if s.margins is not None else \
            view.margins(s.x, s.y, s.at, s.xi, s.yi)
        for name, renderer in self.lines.items():
            traceable = name in fields and len(px) > 1 and len(py) > 1
            segs = _contour(px, py, fields[name], 1.0) if traceable else []
            renderer.data_source.data = {"xs": [list(a[:, 0]) for a in segs],
                                         "ys": [list(a[:, 1]) for a in segs]}
            renderer.visible = bool(segs)


def _contour(px: np.ndarray, py: np.ndarray, field: np.ndarray, level: float) -> list[np.ndarray]:
    """The lines where ``field`` (on the (y, x) grid) crosses ``level``, in plot positions; positive fields
    traced in log (exact for the power laws the margins are)."""
    import contourpy

    z = np.asarray(field, dtype=np.float64)
    finite = z[np.isfinite(z)]
    if not finite.size or not (finite.min() < level < finite.max()):
        return []
    with np.errstate(divide="ignore", invalid="ignore"):
        if level > 0 and np.all(finite > 0):
            z, level = np.log(z), math.log(level)
    gen = contourpy.contour_generator(px, py, np.ma.masked_invalid(z), line_type=contourpy.LineType.Separate)
    return [np.asarray(seg) for seg in gen.lines(level) if len(seg) > 1]


def _edges(c: np.ndarray) -> np.ndarray:
    """Cell edges of centres ``c`` (uniform steps on the plotted axis)."""
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    step = (c[-1] - c[0]) / (len(c) - 1)
    return np.array([c[0] - step / 2, c[-1] + step / 2])


def _number(v: Any, factor: float) -> str:
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, str | np.str_):
        return str(v)
    x = float(v) / factor
    return "nan" if math.isnan(x) else f"{x:.6g}"


def _esc(text: str) -> str:
    import html

    return html.escape(str(text))


__all__ = ["Explorer", "axis_kind", "log_ticks", "positions"]
