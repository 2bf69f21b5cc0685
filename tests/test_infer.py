"""infer-b inverts the forward model: b from N = b^2 N_coh(b=1) or from K = sqrt(pi) Nb b^2 / 8 is b again,
at store points (tuned and detuned) and at design points from flags or a sweep file; the uncertainty
propagates the measurement and the model inputs (sensitivities are the model's power laws)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cusweep
from cusweep.cli import main
from cusweep.errors import SpecError
from cusweep.infer import (
    design_from_flags,
    design_from_spec,
    design_from_store,
    infer_b,
    n_coh_unit,
    sensitivity,
)
from cusweep.spec import load

from .ask_stores import loaded, store
from .conftest import ROOT

PAPER_FLAGS = ["crystal=diamond-110", "thickness=1.4 mm", "n_positrons=1.56e9", "period=14 um",
               "amplitude=1.27 angstrom", "energy=13.6 GeV", "sigma_z=9 um"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory, local_client):
    return {name: store(name, tmp_path_factory, local_client) for name in ("tuned", "detuned")}


@pytest.fixture(scope="module")
def datasets(paths):
    return {name: cusweep.open(p).ds for name, p in paths.items()}


@pytest.mark.parametrize("name", ["tuned", "detuned"])
def test_inverts_the_stored_forward_model(name, paths, datasets):
    dims, arrays = loaded(paths[name])
    ds = datasets[name]
    b_dim = dims.index("bunching")
    one = int(np.flatnonzero(np.unique(arrays["bunching"]) == 1.0)[0])

    @settings(max_examples=12, deadline=None)
    @given(st.data(), st.floats(1e-3, 1.0))
    def check(data, b_true):
        index = [data.draw(st.integers(0, n - 1)) for n in arrays["n_coh"].shape]
        index[b_dim] = one
        i = tuple(index)
        point = {d: (arrays[d][i] if arrays[d].dtype.kind == "f" else str(arrays[d][i])) for d in dims}
        design = design_from_store(ds, {d: v for d, v in point.items() if d != "bunching"})
        n1 = float(arrays["n_coh"][i])
        assert n_coh_unit(design.setup, design.point) == pytest.approx(n1, rel=1e-12)
        res = infer_b(design, measured=b_true**2 * n1)
        assert res.b == pytest.approx(b_true, rel=1e-9)
        assert res.b_err == 0.0
        k1 = float(arrays["coherence_gain"][i])
        res = infer_b(design, gain=b_true**2 * k1, error=0.1 * b_true**2 * k1)
        assert res.b == pytest.approx(b_true, rel=1e-9)
        assert res.b_err == pytest.approx(0.05 * b_true, rel=1e-9)  # sigma_b / b = sigma_K / (2 K)

    check()


def test_uncertainty_propagation_and_sensitivities():
    design = design_from_flags(PAPER_FLAGS)
    setup, point = design.setup, design.point
    # N_coh (tuned, Eq. (22)) ~ Nb^2 L^2 A^2 / (sigma_Z l), independent of the beam energy
    expected = {"n_positrons": 2.0, "thickness": 2.0, "amplitude": 2.0, "sigma_z": -1.0, "period": -1.0,
                "energy": 0.0}
    # (the store evaluates Eq. (14) at the exact edge of Eq. (12b): the power laws hold up to corrections of
    # order (gamma_th/gamma)^2 = 5.6e-4 here; n_positrons and sigma_z enter exactly)
    for name, s in expected.items():
        tol = 1e-6 if name in ("n_positrons", "sigma_z", "thickness") else 1e-3
        assert sensitivity(setup, point, name) == pytest.approx(s, abs=tol), name
    n1 = n_coh_unit(setup, point)
    assert n1 == pytest.approx(4.58e15, rel=0.01)  # physics.md: 4.58e15 b^2
    res = infer_b(design, measured=0.09 * n1, error=0.02 * 0.09 * n1,
                  rel_errors={"n_positrons": 0.05, "sigma_z": 0.1})
    assert res.b == pytest.approx(0.3, rel=1e-9)
    parts = {"measurement": 0.01, "n_positrons": 0.05, "sigma_z": 0.05}
    for k, v in parts.items():
        assert res.contributions[k] == pytest.approx(v, rel=1e-6)
    assert res.b_err == pytest.approx(0.3 * math.sqrt(sum(v * v for v in parts.values())), rel=1e-6)
    assert res.n_coh_unit_err == pytest.approx(n1 * math.hypot(2 * 0.05, 0.1), rel=1e-6)
    text = res.text()
    assert "b = 0.3 ± 0.021" in text and "thickness = 1.4 mm" in text and "diamond-110" in text


def test_notes_for_inconsistent_or_infeasible_designs():
    res = infer_b(design_from_flags(PAPER_FLAGS), measured=1e17)
    assert res.b > 1 and any("b > 1" in n for n in res.notes)
    bad = design_from_flags([*PAPER_FLAGS[:4], "amplitude=3 angstrom", *PAPER_FLAGS[5:]])  # q > q_ch
    assert any("not feasible" in n and "channeling" in n for n in infer_b(bad, measured=1e14).notes)


def test_design_from_a_sweep_file_equals_flags():
    spec = load(ROOT / "sweeps" / "paper_point.toml")
    a = design_from_spec(spec)
    b = design_from_flags(PAPER_FLAGS)
    assert n_coh_unit(a.setup, a.point) == n_coh_unit(b.setup, b.point)


def test_cli_infer_b(paths, capsys):
    sweep = str(ROOT / "sweeps" / "paper_point.toml")
    assert main(["infer-b", "--measured", "4.58e14", "--sweep", sweep]) == 0
    out = capsys.readouterr().out
    b = float(out.split("b = ")[1].split()[0])
    assert b == pytest.approx(math.sqrt(0.1), rel=2e-3)
    assert main(["infer-b", "--gain", str(math.sqrt(math.pi) * 1.56e9 / 8 * 0.04), "--at", *PAPER_FLAGS]) == 0
    assert capsys.readouterr().out.startswith("b = 0.2 ± 0 ")
    argv = ["infer-b", "--measured", "1e14", "--store", paths["detuned"], "--at", "period=14 um",
            "amplitude=1.2 angstrom", "photon_energy=8.3 keV", "--rel-error", "photon_energy=0.001"]
    assert main(argv) == 0
    assert "photon_energy" in capsys.readouterr().out


def test_cli_infer_b_si_shows_store_units(capsys):
    """--si: the design point in store units (m, eV), the same b."""
    argv = ["infer-b", "--measured", "4.58e14", "--at", *PAPER_FLAGS]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert main([*argv, "--si"]) == 0
    si = capsys.readouterr().out
    assert "period = 14 µm" in shown and "energy = 13.6 GeV" in shown
    assert "period = 1.4e-05 m" in si and "energy = 1.36e+10 eV" in si and "thickness = 0.0014 m" in si
    assert si.splitlines()[0] == shown.splitlines()[0]  # b itself is unchanged


@pytest.mark.parametrize("argv, words", [
    (["--measured", "1e14", "--sweep", "S", "--store", "T"], "not both"),
    (["--measured", "1e14"], "give the design point"),
    (["--measured", "1e14", "--gain", "3"], "not allowed with"),
    (["--measured", "-1", "--at", *PAPER_FLAGS], "finite number >= 0"),
    (["--measured", "1e14", "--error", "-1", "--at", *PAPER_FLAGS], "--error"),
    (["--measured", "1e14", "--rel-error", "n_positrons", "--at", *PAPER_FLAGS], "NAME=REL"),
    (["--measured", "1e14", "--rel-error", "flux=0.1", "--at", *PAPER_FLAGS], "unknown input 'flux'"),
    (["--measured", "1e14", "--rel-error", "photon_energy=0.1", "--at", *PAPER_FLAGS], "photon_energy"),
    (["--measured", "1e14", "--at", *PAPER_FLAGS[:-1]], "sigma_z"),
    (["--measured", "1e14", "--at", *PAPER_FLAGS[:-1], "sigma_z=9"], "no units"),
    (["--measured", "1e14", "--at", *PAPER_FLAGS, "colour=red"], "not a design input"),
])
def test_cli_bad_input_exit_2(argv, words, capsys):
    assert main(["infer-b", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_cli_store_point_needs_at(paths, capsys):
    assert main(["infer-b", "--measured", "1e14", "--store", paths["tuned"]]) == 2
    err = capsys.readouterr().err
    assert "several values; pick the design point with --at" in err and "period" in err
    with pytest.raises(SpecError, match="^at: period="):
        design_from_store(cusweep.open(paths["tuned"]).ds, ["period=14"])


def test_monte_carlo_agrees_with_the_linear_estimate_where_the_model_is_linear():
    design = design_from_flags(PAPER_FLAGS)
    n1 = n_coh_unit(design.setup, design.point)
    res = infer_b(design, measured=0.09 * n1, error=0.01 * 0.09 * n1, rel_errors={"n_positrons": 0.02},
                  samples=4000, seed=1)
    assert res.samples == 4000 and res.mc_invalid == 0.0
    assert res.b_mc == pytest.approx(0.3, rel=0.01)
    assert res.b_mc_err == pytest.approx(res.b_err, rel=0.1) and not res.disagree
    assert "Monte Carlo, 4000 draws" in res.text()
    # seeded: the same draws give the same numbers
    again = infer_b(design, measured=0.09 * n1, error=0.01 * 0.09 * n1, rel_errors={"n_positrons": 0.02},
                    samples=4000, seed=1)
    assert (again.b_mc, again.b_mc_err) == (res.b_mc, res.b_mc_err)


def test_monte_carlo_flags_the_resonance_where_the_linear_estimate_fails():
    # the FEL photon exactly at the soft edge: d sinc^2/dz = 0, so the linear propagation of a photon-energy
    # uncertainty sees only the smooth omega prefactor; the Monte Carlo sees the line falling off both ways
    tuned = design_from_flags(PAPER_FLAGS)
    from cusweep.best import evaluate_point

    edge = float(evaluate_point(tuned.setup, {**tuned.point, "bunching": 1.0},
                                ("photon_energy_minus",))["photon_energy_minus"])
    design = design_from_flags([*PAPER_FLAGS, f"photon_energy={edge!r} eV"])
    n1 = n_coh_unit(design.setup, design.point)
    assert n1 == pytest.approx(n_coh_unit(tuned.setup, tuned.point), rel=1e-9)  # the same line, sinc = 1
    res = infer_b(design, measured=0.25 * n1, rel_errors={"photon_energy": 0.003}, samples=2000, seed=2)
    assert res.b == pytest.approx(0.5, rel=1e-9)
    assert res.b_mc > res.b  # the line only falls off the edge: a smaller model yield, a larger b
    assert res.b_mc_err > 2 * res.b_err and res.disagree
    assert any("disagree" in n and "resonance" in n for n in res.notes)


def test_cli_samples(capsys):
    sweep = str(ROOT / "sweeps" / "paper_point.toml")
    argv = ["infer-b", "--measured", "4.58e14", "--error", "1e13", "--sweep", sweep, "--samples", "300"]
    assert main(argv) == 0
    assert "Monte Carlo, 300 draws" in capsys.readouterr().out
    assert main(["infer-b", "--measured", "4.58e14", "--sweep", sweep, "--samples", "-3"]) == 2
    err = capsys.readouterr().err
    assert "samples: -3" in err and err.count("\n") == 1


def test_inference_to_dict_is_json_in_store_units():
    import json

    design = design_from_flags(PAPER_FLAGS)
    res = infer_b(design, measured=0.09 * n_coh_unit(design.setup, design.point), samples=50, seed=3)
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["b"] == pytest.approx(0.3, rel=1e-9) and d["samples"] == 50 and d["measured"] == "n_coh"
    assert d["point"]["period"] == pytest.approx(14e-6) and d["b_mc"] == pytest.approx(0.3, rel=1e-9)
