"""The sweep engine end to end: stores equal an independent re-derivation, are bitwise independent of
block size, worker count and completion order, resume computes only missing blocks, and open with plain
xarray and pint-xarray."""

import random
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import zarr

from cusweep import execute, store
from cusweep.cli import main
from cusweep.plan import make_plan
from cusweep.spec import loads

from .conftest import ROOT, cusweep_exe
from .reference import point

BASE = """
name = "engine"
crystal = {crystal}
{thickness}
{n_positrons}
chunk_mb = {chunk_mb}
{extra}
[axes]
period = {{ start = "3 um", stop = "60 um", num = 37, spacing = "log" }}
amplitude = {{ start = "0.1 angstrom", stop = "3 angstrom", num = 23 }}
energy = {{ values = ["0.5 GeV", "2 GeV", "8 GeV", "13.6 GeV", "17.5 GeV"] }}
sigma_z = {{ values = ["0.05 um", "1 um", "9 um", "30 um"] }}
bunching = {{ values = [0.0, 0.01, 0.3, 1.0] }}
{more_axes}
"""


def sweep(
    chunk_mb=64, crystal='"diamond-110"', thickness='"1.4 mm"', n_positrons="1.56e9", extra="", more_axes=""
):
    return loads(
        BASE.format(
            chunk_mb=chunk_mb,
            crystal=crystal,
            thickness=f"thickness = {thickness}" if thickness else "",
            n_positrons=f"n_positrons = {n_positrons}" if n_positrons else "",
            extra=extra,
            more_axes=more_axes,
        )
    )


def _arrays(path):
    root = zarr.open_group(str(path), mode="r")
    return {k: root[k][...] for k in root.array_keys()}


def assert_identical(a, b):
    A, B = _arrays(a), _arrays(b)
    assert A.keys() == B.keys()
    for k in A:
        assert A[k].dtype == B[k].dtype, k
        if k == "block_checksum" or k == "done":
            continue  # block bookkeeping depends on the block layout, not the data
        assert np.array_equal(A[k], B[k], equal_nan=True), k


def check_against_reference(ds, spec, n=150, seed=0, rtol=1e-6):
    ds = ds.load(scheduler="synchronous")  # small test stores: read once, then index in memory
    rng = random.Random(seed)
    dims = spec.dims
    for _ in range(n):
        idx = {d: rng.randrange(len(spec.coords[d])) for d in dims}
        coord = {d: spec.coords[d][i] for d, i in idx.items()}
        kw = {k: coord.get(k, spec.scalars.get(k))
              for k in ("thickness", "n_positrons", "photon_energy", "sigma_r")}
        cname = str(coord.get("crystal", spec.scalars.get("crystal")))
        ref = point(
            coord["period"],
            coord["amplitude"],
            coord["energy"],
            coord["sigma_z"],
            coord["bunching"],
            crystal=spec.crystals[cname],
            length_model=spec.length_model,
            dechanneling_model=spec.dechanneling_model,
            **kw,
        )
        for name, want in ref.items():
            da = ds[name]
            got = da.isel({d: idx[d] for d in da.dims}).values.item()
            if isinstance(want, bool):
                assert got == want, (name, coord, got, want)
            elif np.isnan(want):
                assert np.isnan(got), (name, coord, got)
            else:
                assert got == pytest.approx(want, rel=rtol, abs=1e-300), (name, coord, got, want)


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory, local_client):
    spec = sweep(chunk_mb=0.05)
    path = tmp_path_factory.mktemp("ref") / "ref.zarr"
    summary = execute.run_sweep(spec, str(path), client=local_client)
    assert summary.computed == make_plan(spec).n_blocks > 10
    return spec, path


def test_store_matches_independent_rederivation_tuned(reference_store):
    spec, path = reference_store
    check_against_reference(store.open_store(str(path)), spec, n=300)


@pytest.mark.parametrize(
    "extra, more_axes",
    [
        ('photon_energy = "8.3 keV"', ""),  # detuned, Eq. (14) x form factor
        ('length_model = "dechanneling"', ""),  # L = min(thickness, L_d(C))
        ('dechanneling_model = "biryukov"\nlength_model = "dechanneling"', ""),
        ("", 'photon_energy = { values = ["4 keV", "8.3 keV", "12 keV"] }'),  # photon_energy as a dim
        ('photon_energy = "8.3 keV"\nsigma_r = "10 um"', ""),  # detuned, F_R in photons_coh
        ("", 'sigma_r = { values = ["0.01 um", "0.3 um", "20 um"] }'),  # tuned, sigma_r as a dim
    ],
)
def test_store_matches_rederivation_variants(tmp_path, local_client, extra, more_axes):
    spec = sweep(chunk_mb=0.5, extra=extra, more_axes=more_axes)
    path = tmp_path / "v.zarr"
    execute.run_sweep(spec, str(path), client=local_client)
    check_against_reference(store.open_store(str(path)), spec, n=200, seed=1)


def test_extra_dims_crystal_thickness_population(tmp_path, local_client):
    spec = sweep(
        chunk_mb=1,
        crystal='["diamond-110", "si-110", "w-110"]',
        thickness=None,
        n_positrons=None,
        more_axes='thickness = { values = ["0.5 mm", "2 mm"] }\nn_positrons = { values = [1e8, 1.56e9] }',
    )
    assert spec.dims[5:] == ("thickness", "n_positrons", "crystal")
    path = tmp_path / "x.zarr"
    execute.run_sweep(spec, str(path), client=local_client)
    ds = store.open_store(str(path))
    assert ds["n_coh"].dims == (
        "period",
        "amplitude",
        "energy",
        "sigma_z",
        "bunching",
        "thickness",
        "n_positrons",
        "crystal",
    )
    assert ds["gamma"].dims == ("energy",)
    assert ds["q_ch"].dims == ("energy", "crystal")
    check_against_reference(ds, spec, n=200, seed=2)


def test_identical_across_block_sizes_workers_and_order(reference_store, tmp_path, local_client):
    spec, ref = reference_store
    # one big block, one worker process, its own LocalCluster
    one = tmp_path / "one.zarr"
    execute.run_sweep(sweep(chunk_mb=64), str(one), workers=1)
    assert_identical(ref, one)
    # medium blocks on the shared 2-worker cluster
    mid = tmp_path / "mid.zarr"
    execute.run_sweep(sweep(chunk_mb=0.3), str(mid), client=local_client)
    assert_identical(ref, mid)
    # the reference's blocks computed in a random order, without Dask
    plan = make_plan(spec)
    shuffled = tmp_path / "shuffled.zarr"
    store.prepare(str(shuffled), plan)
    ids = list(plan.block_ids())
    random.Random(3).shuffle(ids)
    for b in ids:
        bid, _, crc, _ = execute.compute_block(plan, str(shuffled), b)
        store.mark_done(str(shuffled), plan, bid, crc)
    assert_identical(ref, shuffled)
    assert np.array_equal(_arrays(ref)["block_checksum"], _arrays(shuffled)["block_checksum"])


def test_lazy_dataset_equals_store(reference_store):
    spec, path = reference_store
    lazy = make_plan(spec).to_dataset()
    stored = store.open_store(str(path))
    for name in lazy.data_vars:
        assert np.array_equal(lazy[name].values, stored[name].values, equal_nan=True), name
    part = lazy["n_coh"].sel(energy=13.6e9, bunching=1.0).isel(period=slice(0, 5)).compute()
    assert part.shape == (5, 23, 4)


def test_resume_computes_only_missing_blocks(reference_store, tmp_path, local_client):
    spec, ref = reference_store
    path = tmp_path / "resume.zarr"
    plan = make_plan(spec)
    first = execute.run_sweep(spec, str(path), client=local_client)
    assert first.computed == plan.n_blocks
    again = execute.run_sweep(spec, str(path), client=local_client)
    assert again.computed == 0 and again.skipped == plan.n_blocks
    missing = [0, 3, plan.n_blocks - 1]
    store.clear_done(str(path), plan, missing)
    # damage the data of a cleared block: resume must rewrite it
    root = zarr.open_group(str(path), mode="r+")
    sl = plan.var_block_slices("n_coh", plan.block_index(3))
    root["n_coh"][sl] = -1.0
    third = execute.run_sweep(spec, str(path), client=local_client)
    assert third.computed == len(missing)
    assert_identical(ref, path)


def test_resume_with_another_chunk_mb_keeps_the_store_layout(reference_store, tmp_path, local_client):
    """A store made with small blocks, interrupted, then resumed from a sweep file with another chunk_mb:
    the resume works on the store's block layout (the ledger's), and the data equal the reference."""
    spec, ref = reference_store
    path = tmp_path / "relayout.zarr"
    small = make_plan(spec)
    execute.run_sweep(spec, str(path), client=local_client)
    store.clear_done(str(path), small, [1, 5, small.n_blocks - 2])
    root = zarr.open_group(str(path), mode="r+")
    root["n_coh"][small.var_block_slices("n_coh", small.block_index(5))] = -1.0
    big = sweep(chunk_mb=64)
    assert make_plan(big).chunks != small.chunks and big.fingerprint() == spec.fingerprint()
    notes = []
    resumed = execute.run_sweep(big, str(path), client=local_client, echo=notes.append)
    assert resumed.computed == 3 and resumed.n_blocks == small.n_blocks
    assert any("resuming on that layout" in n for n in notes)
    assert_identical(ref, path)
    assert execute.verify(str(path)) == []


def test_float32_store(tmp_path, local_client):
    spec = sweep(chunk_mb=1, extra='dtype = "float32"')
    path = tmp_path / "f32.zarr"
    execute.run_sweep(spec, str(path), client=local_client)
    ds = store.open_store(str(path))
    assert ds["n_coh"].dtype == np.float32 and ds["feasible"].dtype == bool
    check_against_reference(ds, spec, n=100, rtol=1e-6)


def test_plain_xarray_and_pint(reference_store):
    import pint_xarray  # noqa: F401  (registers the .pint accessor)

    _, path = reference_store
    ds = xr.open_zarr(str(path))  # plain xarray, default arguments
    assert {"n_coh", "feasible", "done"} <= set(ds.variables)
    q = ds[["n_coh", "period", "photon_energy_minus"]].pint.quantify()
    assert str(q["photon_energy_minus"].pint.units) == "electron_volt"
    assert float(q["period"].pint.to("um").max().pint.magnitude) == pytest.approx(60.0)
    for name, var in ds.data_vars.items():
        if name in ("done", "block_checksum"):
            continue
        for attr in ("units", "long_name", "symbol", "source"):
            assert var.attrs.get(attr), (name, attr)
    root = zarr.open_group(str(path), mode="r")
    for attr in ("cusweep_version", "sweep", "created", "references"):
        assert root.attrs[attr]


def test_contract_checker_passes(reference_store):
    _, path = reference_store
    checker = ROOT.parent / "shared" / "tools" / "check_store.py"
    out = subprocess.run(
        [sys.executable, str(checker), str(path), "--complete"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 departures" in out.stdout


def test_cli_run_status_dry_run(tmp_path, capsys):
    sweep_file = ROOT / "sweeps" / "paper_sec5.toml"
    path = tmp_path / "p.zarr"
    assert main(["run", str(sweep_file), "--store", str(path), "--dry-run"]) == 0
    assert "grid points" in capsys.readouterr().out and not path.exists()
    assert main(["status", str(path)]) == 2  # not a store: bad input
    assert main(["run", str(sweep_file), "--store", str(path), "--workers", "1", "--no-progress"]) == 0
    assert "blocks computed" in capsys.readouterr().out
    assert main(["status", str(path)]) == 0
    assert "1/1 blocks done, complete" in capsys.readouterr().out
    assert main(["status", str(path), "--verify"]) == 0


def test_cli_subprocess_run_and_incomplete_status(tmp_path):
    path = tmp_path / "s.zarr"
    exe = cusweep_exe()
    spec_file = tmp_path / "s.toml"
    spec_file.write_text(
        BASE.format(
            chunk_mb=0.2,
            crystal='"si-110"',
            thickness='thickness = "1 mm"',
            n_positrons="n_positrons = 1e9",
            extra="",
            more_axes="",
        )
    )
    out = subprocess.run(
        [*exe, "run", str(spec_file), "--store", str(path), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    spec = loads(spec_file.read_text())
    plan = make_plan(spec)
    store.clear_done(str(path), plan, [1])
    st = subprocess.run([*exe, "status", str(path)], capture_output=True, text=True, timeout=120)
    assert st.returncode == 1 and f"{plan.n_blocks - 1}/{plan.n_blocks} blocks done, incomplete" in st.stdout


def test_absorption_outputs_equal_direct_evaluation(tmp_path, local_client):
    """transmission, effective_length, optimal_thickness (incoherent) and photons_coh_exit,
    optimal_thickness_coh (coherent: amplitude attenuation length 2 L_a, channeled fraction squared), models
    beyond the paper, from the stored dechanneling length and xraydb attenuation lengths at the stored
    resonance energy (tuned: the exact soft edge, on period, amplitude, energy)."""
    from cusweep import materials

    spec = sweep(
        chunk_mb=0.05,
        crystal='["diamond-110", "si-110"]',
        thickness=None,
        more_axes='thickness = { values = ["0.5 mm", "1.4 mm", "3 mm"] }',
        extra='outputs = ["resonance_energy", "dechanneling_length", "photons_coh", "transmission", '
        '"effective_length", "optimal_thickness", "photons_coh_exit", "optimal_thickness_coh"]',
    )
    path = tmp_path / "abs.zarr"
    execute.run_sweep(spec, str(path), client=local_client)
    ds = store.open_store(str(path)).load()
    assert ds["optimal_thickness"].dims == ("period", "amplitude", "energy", "crystal")
    assert ds["optimal_thickness_coh"].dims == ("period", "amplitude", "energy", "crystal")

    def eff_length(L, Ld, La):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            eff = (Ld * La / (La - Ld))[..., None] * (np.exp(-L / La[..., None]) - np.exp(-L / Ld[..., None]))
        return np.where(Ld[..., None] > 0, eff, 0.0)

    def star(Ld, La):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(Ld > 0, Ld * La / (La - Ld) * np.log(La / Ld), 0.0)

    # the workers interpolate a log-log table of xraydb's attenuation lengths (no xraydb call per point):
    # a few 1e-6 relative from xraydb itself
    rtol = 2e-5
    for cname in ("diamond-110", "si-110"):
        sub = ds.sel(crystal=cname)
        energy = sub["resonance_energy"].values  # on (period, amplitude, energy): the exact edge
        ok = np.isfinite(energy)  # below threshold the edge, and so L_a at it, has no value
        assert ok.mean() > 0.5
        La = np.asarray(materials.attenuation_length(materials.crystal(cname), np.where(ok, energy, 8e3)))
        La = np.where(ok, La, np.nan)
        Ld = sub["dechanneling_length"].values
        L = sub["thickness"].values.reshape(1, 1, 1, -1)
        np.testing.assert_allclose(sub["optimal_thickness"].values, star(Ld, La), rtol=rtol)
        np.testing.assert_allclose(sub["optimal_thickness_coh"].values, star(Ld, 2 * La), rtol=rtol)
        eff = eff_length(L, Ld, La)
        np.testing.assert_allclose(sub["effective_length"].values, eff, rtol=rtol, atol=1e-15)
        assert sub["transmission"].dims == ("period", "amplitude", "energy", "thickness")
        T = La[..., None] / L * (1 - np.exp(-L / La[..., None]))
        np.testing.assert_allclose(sub["transmission"].values, T, rtol=rtol)
        # photons_coh_exit = photons_coh x (L_coh / L)^2, L_coh with the amplitude length 2 L_a
        exit_ = sub["photons_coh_exit"].transpose("period", "amplitude", "energy", "thickness", ...).values
        coh = sub["photons_coh"].transpose("period", "amplitude", "energy", "thickness", ...).values
        factor = (eff_length(L, Ld, 2 * La) / L) ** 2
        # the table's relative error in L_a grows by L/(2 L_a) (up to ~50 here) through exp(-L/(2 L_a))
        np.testing.assert_allclose(exit_, coh * factor[..., None, None], rtol=100 * rtol, atol=1e-300)
        assert np.nanmax(factor) <= 1.0
