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
from cusweep.errors import SpecError
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
    label = cbar.get_ylabel()
    assert label.startswith("the paper's N_coh: coherent photons per bunch per unit solid-angle-theta^2")
    assert "$N_{coh}$" in label and "rad" in label
    assert ax.get_title(loc="left").startswith("the paper's N_coh")
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
    ("tuned", "amplitude", "energy", "coherence_gain", {"period": "14 um", "sigma_z": "3 um"}),
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
        return HC / v["resonance_energy"] * v["n_periods"] / (np.pi * 9e-6)
    if name == "dechanneling":
        return 1.4e-3 / v["dechanneling_length"]
    return v["transmission"] / 0.5


def test_every_contour_on_the_paper_bunch_map_lies_on_its_boundary(datasets):
    """The wide store holds the whole feasible region: all six boundaries are drawn, and the model evaluated
    at points of each drawn line gives the boundary value (within the grid's interpolation error)."""
    ds = datasets["wide"]
    fig = map_figure(ds, "period", "amplitude", "n_coh")
    assert set(fig.cusweep["contours"]) == set(CONTOURS)
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
