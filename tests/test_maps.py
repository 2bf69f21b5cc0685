"""Feasibility maps: files are written and are valid images; figures carry names and units from the store
attrs, the fixed values, a log colour scale where values span decades; each boundary is drawn exactly when
it lies inside the plotted range, and its line lies on the boundary (checked against the model)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest

import cusweep
from cusweep.best import evaluate_point, setup_from_store
from cusweep.cli import main
from cusweep.errors import CusweepError, SpecError
from cusweep.maps import CONTOURS, map_figure, save_figure

from .ask_stores import loaded, store

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def paths(tmp_path_factory, local_client):
    names = ("tuned", "wide", "multi", "detuned")
    return {name: store(name, tmp_path_factory, local_client) for name in names}


@pytest.fixture(scope="module")
def datasets(paths):
    return {name: cusweep.open(p).ds for name, p in paths.items()}


HC = 1.239841984e-6  # h c [eV m]
PAPER_AT = {"energy": "13.6 GeV", "sigma_z": "9 um", "bunching": "1", "thickness": "1.4 mm"}


def legend_texts(fig):
    legend = fig.axes[0].get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def expected_contours(path, fig):
    """The boundaries that lie inside the plotted slice, from the store's flags (not from the map code)."""
    dims, arrays = loaded(path)
    info = fig.cusweep
    index = []
    for d in dims:
        if d in (info["x"], info["y"]):
            index.append(slice(None))
        else:
            coord = np.unique(arrays[d])
            index.append(int(np.flatnonzero(coord == info["at"][d])[0]))
    sl = tuple(index)

    def both(flag):
        v = np.asarray(flag[sl])
        return bool(v.any() and (~v).any())

    out = {"channeling": both(arrays["channeling"]), "bending": both(arrays["bending_parameter"] < 1),
           "threshold": both(arrays["above_threshold"]), "coherence": both(arrays["coherent_regime"]),
           "dechanneling": both(arrays["dechanneling_length"] > arrays["thickness"]
                                if "thickness" in arrays else arrays["dechanneling_length"] > 1.4e-3)}
    if "transmission" in arrays:
        out["transmission"] = both(arrays["transmission"] > 0.5)
    return {k for k, v in out.items() if v}


def unique_coord(arrays, d):
    return np.unique(arrays[d])


# ------------------------------------------------------------------------------------------ figures


def test_labels_units_and_fixed_values_on_the_figure(datasets):
    fig = map_figure(datasets["tuned"], "period", "amplitude", "n_coh",
                     at={**PAPER_AT, "energy": "13 GeV"})  # nearest grid value: 13.6 GeV
    ax, cbar = fig.axes[0], fig.axes[1]
    assert ax.get_xlabel() == "CU period $l$ [µm]"
    assert ax.get_ylabel() == "CU amplitude $A$ [Å]"
    # the paper's N_coh is a density per unit theta^2 at zero angle, and the colour bar says so
    label = cbar.get_ylabel().replace("\n", " ")
    assert label.startswith("the paper's N_coh: coherent photons per bunch per unit solid-angle-theta^2")
    assert "$N_{coh}$" in label and "rad" in label
    assert ax.get_title(loc="left").replace("\n", " ").startswith("the paper's N_coh")
    sub = fig._suptitle.get_text()
    for text in ("$E$ = 13.6 GeV", r"$\sigma_Z$ = 9 µm", "$b$ = 1", "$L$ = 1.4 mm", "diamond-110"):
        assert text in sub, sub
    assert fig.cusweep["at"] == {"energy": 13.6e9, "sigma_z": 9e-6, "bunching": 1.0, "thickness": 1.4e-3}
    assert ax.get_xlim() == pytest.approx((7.75, 20.25))  # the cells' edges
    assert "infeasible" in legend_texts(fig)


def test_unfixed_dims_take_the_first_value_and_say_so(datasets):
    notes: list[str] = []
    fig = map_figure(datasets["tuned"], "period", "amplitude", "q", notes=notes)
    assert fig.cusweep["at"]["energy"] == 8e9
    assert any("energy not given" in n and "at energy=" in n for n in notes)


def test_log_colour_scale_where_values_span_decades(datasets):
    from matplotlib.colors import LogNorm

    wide = map_figure(datasets["wide"], "period", "amplitude", "n_coh")
    assert wide.cusweep["norm"] == "log" and isinstance(wide.axes[0].collections[0].norm, LogNorm)
    assert wide.axes[0].get_xscale() == "log" and wide.axes[0].get_yscale() == "log"  # log-spaced grids
    narrow = map_figure(datasets["tuned"], "period", "amplitude", "q", at=PAPER_AT)  # q spans < 2 decades
    assert narrow.cusweep["norm"] == "linear" and narrow.axes[0].get_xscale() == "linear"


@pytest.mark.parametrize("name, x, y, var, at", [
    ("wide", "period", "amplitude", "n_coh", {}),
    ("tuned", "period", "amplitude", "n_coh", PAPER_AT),
    ("tuned", "period", "amplitude", "n_coh", {**PAPER_AT, "energy": "8 GeV", "thickness": "1 mm"}),
    ("tuned", "amplitude", "sigma_z", "coherence_gain", {"period": "14 um", "energy": "13.6 GeV"}),
    ("detuned", "period", "amplitude", "n_coh", {"photon_energy": "8.3 keV", "bunching": 1.0}),
    ("multi", "period", "amplitude", "n_coh", {"crystal": "w-110", "energy": "8 GeV"}),
])
def test_contours_drawn_exactly_where_the_boundary_lies_inside(paths, datasets, name, x, y, var, at):
    fig = map_figure(datasets[name], x, y, var, at=at)
    assert set(fig.cusweep["contours"]) == expected_contours(paths[name], fig)
    labels = legend_texts(fig)
    for c in fig.cusweep["contours"]:
        assert CONTOURS[c][0] in labels


def boundary_ratio(name, v):
    """The quantity that equals 1 on boundary ``name``, from model values ``v`` at one point."""
    if name == "channeling":
        return v["q"] / v["q_ch"]
    if name == "bending":
        return v["bending_parameter"]
    if name == "threshold":
        return v["gamma_th"] / v["gamma"]
    if name == "coherence":
        with np.errstate(divide="ignore"):
            return np.float64(HC) / v["resonance_energy"] * v["n_periods"] / (np.pi * 9e-6)
    if name == "dechanneling":
        with np.errstate(divide="ignore"):
            return np.float64(1.4e-3) / v["dechanneling_length"]
    return v["transmission"] / 0.5


def test_every_contour_on_the_paper_bunch_map_lies_on_its_boundary(datasets):
    """The wide store holds the whole feasible region: all six boundaries are drawn, and the model evaluated
    at points of each drawn line gives the boundary value (within the grid's interpolation error)."""
    ds = datasets["wide"]
    fig = map_figure(ds, "period", "amplitude", "n_coh")
    # energy conservation (photons_coh hbar omega_r < Nb E) holds on the whole wide slice: no boundary
    assert set(fig.cusweep["contours"]) == set(CONTOURS) - {"energy"}
    if "energy_fraction" in ds:
        assert np.nanmax(slice_values(ds, fig, "energy_fraction")) < 1
    assert "$T = 0.5$ (photon absorption; model beyond the paper)" in legend_texts(fig)
    setup = setup_from_store(ds, attenuation=True)
    base = {d: float(np.asarray(ds[d].values)[0]) for d in ("energy", "sigma_z", "bunching")}
    outputs = ("q", "q_ch", "bending_parameter", "gamma", "gamma_th", "resonance_energy", "n_periods",
               "dechanneling_length", "transmission")
    for name, lines in fig.cusweep["segments"].items():
        vertices = np.concatenate(lines)
        for l_um, a_angstrom in vertices[:: max(1, len(vertices) // 12)]:
            p = {**base, "period": l_um * 1e-6, "amplitude": a_angstrom * 1e-10}
            value = boundary_ratio(name, evaluate_point(setup, p, outputs))
            assert value == pytest.approx(1.0, rel=0.03), (name, l_um, a_angstrom)


def test_boolean_variable_and_categorical_axis(datasets):
    fig = map_figure(datasets["multi"], "period", "crystal", "feasible", at={"energy": "13.6 GeV"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["diamond-110", "si-110", "w-110"]
    assert ax.get_ylabel() == "crystal channel"
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["false", "true"]
    assert "infeasible" not in legend_texts(fig)  # the variable is the feasibility itself
    notes: list[str] = []
    fig = map_figure(datasets["multi"], "period", "crystal", "n_coh", at={"energy": "13.6 GeV"}, notes=notes)
    assert fig.cusweep["contours"] == [] and any("categorical" in n for n in notes)
    assert "infeasible" in legend_texts(fig) and len(fig.axes[0].patches) == 1  # hatched cells


def test_facility_fixes_energy_and_bunch_length(datasets):
    notes: list[str] = []
    fig = map_figure(datasets["tuned"], "period", "amplitude", "n_coh", facility="lcls", notes=notes,
                     at={"bunching": 1.0})
    assert fig.cusweep["at"]["energy"] == 13.6e9 and fig.cusweep["at"]["sigma_z"] == 9e-6
    assert "LCLS" in fig._suptitle.get_text() and "hypothetical" in fig._suptitle.get_text()
    # as for `best`: a preset energy more than 5% from every grid energy is refused, not silently moved
    with pytest.raises(SpecError, match="swissfel: its energy 5.8 GeV is not within 5%"):
        map_figure(datasets["tuned"], "period", "amplitude", "n_coh", facility="swissfel")
    with pytest.raises(SpecError, match="at energy: facility lcls fixes energy already"):
        map_figure(datasets["tuned"], "period", "amplitude", "n_coh", facility="lcls", at={"energy": "8 GeV"})


# ------------------------------------------------------------------------------------------ files, CLI


def test_files_are_valid_images(datasets, tmp_path):
    fig = map_figure(datasets["tuned"], "period", "amplitude", "n_coh", at=PAPER_AT)
    save_figure(fig, str(tmp_path / "m.svg"))
    with pytest.raises(SpecError, match="does not exist; create it first"):  # a typo grows no new tree
        save_figure(fig, str(tmp_path / "sub" / "m.pdf"))
    assert not (tmp_path / "sub").exists()
    (tmp_path / "sub").mkdir()
    save_figure(fig, str(tmp_path / "sub" / "m.pdf"))
    root = ET.parse(tmp_path / "m.svg").getroot()
    assert root.tag.endswith("svg")
    pdf = (tmp_path / "sub" / "m.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-64:]


def test_cli_map_writes_a_png(paths, tmp_path, capsys):
    out = tmp_path / "map.png"
    argv = ["map", paths["wide"], "--x", "period", "--y", "amplitude", "--var", "n_coh", "-o", str(out)]
    assert main(argv) == 0
    assert "contours: channeling, bending, threshold, coherence, dechanneling, transmission" in \
        capsys.readouterr().out
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(str(out))
    assert image.shape[:2] == (810, 1080) and image.std() > 0.05  # 7.2 x 5.4 in at 150 dpi, not blank


@pytest.mark.parametrize("argv, words", [
    (["--x", "period", "--y", "amplitude", "-o", "map.txt"], "no .png, .svg or .pdf"),
    (["--x", "perod", "--y", "amplitude", "-o", "m.png"], "did you mean 'period'"),
    (["--x", "period", "--y", "period", "-o", "m.png"], "two different dims"),
    (["--x", "period", "--y", "sigma_z", "-o", "m.png"], "single grid value"),
    (["--x", "period", "--y", "amplitude", "--var", "q_chh", "-o", "m.png"], "did you mean 'q_ch'"),
    (["--x", "period", "--y", "amplitude", "--var", "energy", "-o", "m.png"], "is a dim"),
    (["--x", "period", "--y", "amplitude", "--at", "period=14 um", "-o", "m.png"], "axis of the map"),
    (["--x", "period", "--y", "amplitude", "--at", "energy=13.6", "-o", "m.png"], "no units"),
    (["--x", "period", "--y", "amplitude", "--at", "energy", "-o", "m.png"], "not DIM=VALUE"),
    (["--x", "period", "--y", "amplitude", "--facility", "lclss", "-o", "m.png"], "lcls"),
])
def test_cli_map_bad_input_exit_2_nothing_written(paths, tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    assert main(["map", paths["wide"], *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err
    assert os.listdir(tmp_path) == []


def test_map_figure_raises_spec_errors(datasets):
    with pytest.raises(SpecError, match="did you mean 'amplitude'"):
        map_figure(datasets["tuned"], "period", "amplitud")


def test_the_readme_map_sweep_validates():
    """sweeps/paper_map.toml (docs/map_n_coh.png): the paper's bunch over wide CU axes, with transmission."""
    from cusweep.plan import make_plan
    from cusweep.spec import load

    from .conftest import ROOT

    plan = make_plan(load(ROOT / "sweeps" / "paper_map.toml"))
    assert "transmission" in plan.outputs and plan.coords["energy"].tolist() == [13.6e9]
    assert plan.coords["period"][0] < 0.33e-6 and plan.coords["period"][-1] > 0.9e-3  # coherence .. threshold


def test_all_nan_slice_is_drawn_with_a_note(datasets):
    """Below threshold the exact edges are NaN: the map is drawn, and says its colours mean nothing."""
    ds = datasets["wide"]
    notes: list[str] = []
    # the longest periods lie below threshold at 13.6 GeV: photon_energy_plus is NaN over the whole slice
    sub = ds.isel(period=slice(-3, None))
    assert bool(sub["photon_energy_plus"].isnull().all())
    map_figure(sub, "period", "amplitude", "photon_energy_plus", notes=notes)
    assert any("no finite value in this slice" in n for n in notes)
    notes.clear()
    map_figure(ds, "period", "amplitude", "photon_energy_plus", notes=notes)
    assert not any("no finite value" in n for n in notes)


# ------------------------------------------------------------------------------------------ issue 17


def slice_values(ds, fig, name):
    """``name`` on the figure's slice as a numpy array (y, x), from the store (not from the map code)."""
    info = fig.cusweep
    arr = ds[name].sel({d: v for d, v in info["at"].items() if d in ds[name].dims})
    return np.asarray(arr.transpose(info["y"], info["x"]).values)


def test_colour_limits_from_the_feasible_cells_unless_told(datasets):
    ds = datasets["wide"]
    fig = map_figure(ds, "period", "amplitude", "n_coh")
    z, ok = slice_values(ds, fig, "n_coh"), slice_values(ds, fig, "feasible")
    inside = z[ok & np.isfinite(z) & (z > 0)]
    assert inside.size and (~ok).any()
    assert fig.cusweep["clip"] == "feasible"
    assert fig.cusweep["clim"] == pytest.approx((inside.min(), inside.max()))
    norm = fig.axes[0].collections[0].norm
    assert (norm.vmin, norm.vmax) == pytest.approx((inside.min(), inside.max()))
    everywhere = z[np.isfinite(z) & (z > 0)]
    assert everywhere.max() > inside.max()  # the infeasible region reaches beyond: the bar says so
    assert fig.axes[0].collections[0].colorbar.extend in ("max", "both")
    full = map_figure(ds, "period", "amplitude", "n_coh", clip="all")
    assert full.cusweep["clim"] == pytest.approx((everywhere.min(), everywhere.max()))
    fixed = map_figure(ds, "period", "amplitude", "n_coh", vmin=1e3, vmax=1e9)
    assert fixed.cusweep["clim"] == (1e3, 1e9) and fixed.cusweep["norm"] == "log"
    with pytest.raises(SpecError, match="vmin: 5.0 is not below vmax 1.0"):
        map_figure(ds, "period", "amplitude", "n_coh", vmin=5.0, vmax=1.0)
    with pytest.raises(SpecError, match="clip: 'some' is not feasible or all"):
        map_figure(ds, "period", "amplitude", "n_coh", clip="some")


def test_colour_bar_says_density_or_photon_count(datasets):
    ds = datasets["wide"]
    density = map_figure(ds, "period", "amplitude", "n_coh").axes[1].get_ylabel()
    assert "theta^2" in density and "[1/rad**2]" in density
    if "photons_coh" in ds:
        count = map_figure(ds, "period", "amplitude", "photons_coh").axes[1].get_ylabel()
        assert "photons" in count and "theta" not in count and "rad" not in count


def _axes_t(ax, pts):
    """Points (N, 2) in the axes' own coordinates (log of a log axis)."""
    out = np.array(pts, dtype=float)
    if ax.get_xscale() == "log":
        out[:, 0] = np.log(out[:, 0])
    if ax.get_yscale() == "log":
        out[:, 1] = np.log(out[:, 1])
    return out


def _axes_back(ax, pts):
    out = np.array(pts, dtype=float)
    if ax.get_xscale() == "log":
        out[:, 0] = np.exp(out[:, 0])
    if ax.get_yscale() == "log":
        out[:, 1] = np.exp(out[:, 1])
    return out


def test_boundaries_are_outlined_and_ticked_on_their_infeasible_side(datasets):
    """Every boundary line has an outline in a contrasting colour under it and ticks on one side; a point
    a little way to that side is infeasible by the model (the constraint's margin above 1, T below 0.5),
    a point to the other side is not."""
    from matplotlib import patheffects as pe
    from matplotlib.colors import to_rgb

    ds = datasets["wide"]
    fig = map_figure(ds, "period", "amplitude", "n_coh")
    ax = fig.axes[0]
    assert set(fig.cusweep["infeasible_side"]) == set(fig.cusweep["contours"]) == set(CONTOURS) - {"energy"}
    lines = [ln for ln in ax.lines if any(isinstance(e, pe.TickedStroke) for e in ln.get_path_effects())]
    assert len(lines) == sum(len(v) for v in fig.cusweep["segments"].values())
    for ln in lines:
        effects = ln.get_path_effects()
        stroke = next(e for e in effects if isinstance(e, pe.Stroke))
        lum = lambda c: float(np.dot(to_rgb(c), (0.2126, 0.7152, 0.0722)))  # noqa: E731
        assert abs(lum(stroke._gc["foreground"]) - lum(ln.get_color())) > 0.3, ln.get_color()
    setup = setup_from_store(ds, attenuation=True)
    base = {d: float(np.asarray(ds[d].values)[0]) for d in ("energy", "sigma_z", "bunching")}
    outputs = ("q", "q_ch", "bending_parameter", "gamma", "gamma_th", "resonance_energy", "n_periods",
               "dechanneling_length", "transmission")
    span = np.ptp(_axes_t(ax, np.array([ax.get_xlim(), ax.get_ylim()]).T), axis=0)
    checked = 0
    for name, segs in fig.cusweep["segments"].items():
        side = 1.0 if fig.cusweep["infeasible_side"][name] == "left" else -1.0
        seg = max(segs, key=len)
        t = _axes_t(ax, seg)
        i = len(t) // 2
        d = (t[i + 1] - t[i]) / span
        normal = np.array([-d[1], d[0]]) / np.hypot(*d) * span * 0.03
        for sign, infeasible in ((side, True), (-side, False)):
            (l_um, a_ang), = _axes_back(ax, [(t[i] + t[i + 1]) / 2 + sign * normal])
            p = {**base, "period": l_um * 1e-6, "amplitude": a_ang * 1e-10}
            ratio = boundary_ratio(name, evaluate_point(setup, p, outputs))
            failing = ratio < 1 if name == "transmission" else ratio > 1
            assert failing == infeasible, (name, sign, ratio)
            checked += 1
    assert checked == 2 * len(fig.cusweep["contours"])


def test_design_points_are_marked(datasets):
    ds = datasets["tuned"]
    fig = map_figure(ds, "period", "amplitude", "n_coh", at=PAPER_AT,
                     marks=["period=14 um, amplitude=1.27 angstrom", "amplitude=200 pm, period=0.01 mm"])
    stars = [ln for ln in fig.axes[0].lines if ln.get_marker() == "*"]
    assert [(float(s.get_xdata()[0]), float(s.get_ydata()[0])) for s in stars] == \
        [pytest.approx((14.0, 1.27)), pytest.approx((10.0, 2.0))]
    texts = legend_texts(fig)
    assert "design point (period = 14 µm, amplitude = 1.27 Å)" in texts
    assert "design point (period = 10 µm, amplitude = 2 Å)" in texts
    with pytest.raises(SpecError, match="mark: 'period=14 um' gives no amplitude"):
        map_figure(ds, "period", "amplitude", "n_coh", at=PAPER_AT, marks=["period=14 um"])
    with pytest.raises(CusweepError, match="mark: amplitude="):
        map_figure(ds, "period", "amplitude", "n_coh", at=PAPER_AT, marks=["period=14 um, amplitude=1.27"])


def test_contour_overlays_lie_on_their_level(datasets):
    """--contour resonance_energy=8.3 keV (from the model on the slice) and energy_fraction=0.01: the
    model at the lines' vertices gives the level."""
    ds = datasets["tuned"]
    fig = map_figure(ds, "period", "amplitude", "n_coh", at=PAPER_AT,
                     contours=["resonance_energy=8.3,10 keV", "coherence_gain=2e3"])
    over = fig.cusweep["overlays"]
    assert set(over) == {"resonance_energy", "coherence_gain"}
    assert sorted(over["resonance_energy"]) == [pytest.approx(8300.0), pytest.approx(10000.0)]
    texts = legend_texts(fig)
    assert "resonance_energy = 8.3 keV, 10 keV" in texts
    setup = setup_from_store(ds, attenuation=True)
    base = {"energy": 13.6e9, "sigma_z": 9e-6, "bunching": 1.0, "thickness": 1.4e-3}
    drawn = 0
    for name, levels in over.items():
        for level, segs in levels.items():
            for l_um, a_ang in np.concatenate(segs)[::5] if segs else []:
                p = {**base, "period": l_um * 1e-6, "amplitude": a_ang * 1e-10}
                v = evaluate_point(setup, p, (name,))
                assert v[name] == pytest.approx(level, rel=0.02), (name, level)
                drawn += 1
    assert drawn > 0 and all(over["resonance_energy"].values())
    with pytest.raises(CusweepError, match="contour: resonance_energy='1 m'"):
        map_figure(ds, "period", "amplitude", "n_coh", at=PAPER_AT,
                   contours=["resonance_energy=8.3 GeV, 1 m"])
    with pytest.raises(SpecError, match="not VAR=v1,v2"):
        map_figure(ds, "period", "amplitude", "n_coh", at=PAPER_AT, contours=["resonance_energy"])


def test_few_uneven_values_are_categories_not_bands(datasets):
    ds = datasets["tuned"]  # energy: 8, 13.6, 17.5 GeV
    fig = map_figure(ds, "amplitude", "energy", "coherence_gain", at={"period": "14 um", "sigma_z": "3 um"},
                     marks=["amplitude=1.27 angstrom, energy=13.6 GeV"])
    ax = fig.axes[0]
    assert fig.cusweep["categorical"] == {"amplitude": False, "energy": True}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["8", "13.6", "17.5"]
    assert ax.get_ylim() == pytest.approx((-0.5, 2.5))
    assert fig.cusweep["marks"][0]["y"] == 1.0  # the category of 13.6 GeV
    # evenly spaced values (period, 25 values) stay a continuous axis
    assert not fig.cusweep["categorical"]["amplitude"]


def test_subtitle_never_splits_a_formula(datasets):
    fig = map_figure(datasets["tuned"], "period", "amplitude", "n_coh", at=PAPER_AT)
    for line in fig._suptitle.get_text().split("\n"):
        assert line.count("$") % 2 == 0, line


def test_boundary_lines_are_traced_on_a_grid_finer_than_the_store_up_to_a_cap():
    """FINE times finer for a small slice; a 1000-value axis keeps its own grid (the 4x finer 1000 x 1000
    slice's model intermediates took 3 GB); log axes stay log-spaced and end on the grid's ends."""
    from cusweep.maps import FINE, FINE_MAX_POINTS, _finer

    small = np.geomspace(1e-6, 1e-4, 25)
    fine = _finer(small, True)
    assert len(fine) == 24 * FINE + 1
    assert np.allclose(fine[::FINE], small, rtol=1e-12)
    assert np.allclose(np.diff(np.log(fine)), np.log(fine[1] / fine[0]))
    big = np.linspace(1.0, 2.0, 1000)
    assert len(_finer(big, False)) <= FINE_MAX_POINTS
    assert np.allclose(_finer(big, False), big)
    mid = np.linspace(1.0, 2.0, 300)  # 2x finer fits the cap, 4x does not
    assert len(_finer(mid, False)) == 299 * 3 + 1 <= FINE_MAX_POINTS
