"""The store's template: the nodes cusweep writes with zarr are those xarray's ``to_zarr`` would write for
the plan's lazy dataset (so plain ``xarray.open_zarr`` reads a cusweep store as one of its own)."""

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cusweep import store
from cusweep.plan import make_plan
from cusweep.spec import loads

SWEEPS = {
    "tuned": "",
    "float32": 'dtype = "float32"',
    "crystals and extra dims": 'crystal = ["diamond-110", "si-110"]\n'
    'photon_energy = { values = ["4 keV", "8.3 keV"] }\noutputs = ["n_coh", "feasible", "transmission"]',
}


def sweep(extra):
    crystal = "" if "crystal =" in extra else 'crystal = "diamond-110"\n'
    return loads(
        f"""name = "tmpl"
{crystal}thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.05
{extra}
[axes]
period = {{ start = "5 um", stop = "40 um", num = 13 }}
amplitude = {{ start = "0.02 nm", stop = "0.3 nm", num = 7 }}
energy = {{ values = ["8 GeV", "13.6 GeV"] }}
sigma_z = "9 um"
bunching = {{ values = [0.1, 1.0] }}
"""
    )


def _nodes(path: Path) -> dict[str, dict]:
    """Every node's metadata (zarr.json), without the creation time."""
    out = {}
    for meta in sorted(path.rglob("zarr.json")):
        doc = json.loads(meta.read_text())
        doc.pop("consolidated_metadata", None)
        doc.get("attributes", {}).pop("created", None)
        out[str(meta.parent.relative_to(path))] = doc
    return out


@pytest.mark.parametrize("name", SWEEPS)
def test_template_is_what_xarray_writes(tmp_path, name):
    plan = make_plan(sweep(SWEEPS[name]))
    ours = tmp_path / "ours.zarr"
    store.write_template(str(ours), plan)
    theirs = tmp_path / "xarray.zarr"
    encoding = {n: {"chunks": plan.var_chunks(n), "compressors": store.compressors()} for n in plan.outputs}
    plan.to_dataset().to_zarr(
        str(theirs), mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding
    )
    mine = {k: v for k, v in _nodes(ours).items() if k not in (*store.BOOKKEEPING, store.META_GROUP)}
    assert mine == _nodes(theirs)
    a, b = xr.open_zarr(str(ours)), xr.open_zarr(str(theirs), consolidated=False)
    xr.testing.assert_identical(a.drop_vars(list(store.BOOKKEEPING)).drop_attrs(), b.drop_attrs())
    for d in plan.dims:
        assert np.array_equal(a[d].values, plan.coords[d])


def test_sources_name_the_formulas_the_sweep_uses():
    tuned = make_plan(sweep(""))
    assert tuned.var_attrs("n_coh")["source"].startswith("[G24v1] Eqs. (14), (20), (21)")
    assert "Eq. (22)" in tuned.var_attrs("n_coh")["source"]
    assert tuned.var_attrs("n_coh")["units"] == "1/rad**2"
    assert "Korol-Solov'yov-Greiner" in tuned.var_attrs("dechanneling_length")["source"]
    other = make_plan(sweep('photon_energy = "8.3 keV"\nlength_model = "dechanneling"\n'
                            'dechanneling_model = "biryukov"'))
    assert "at the FEL photon" in other.var_attrs("n_coh")["source"]
    assert "FEL photon" in other.var_attrs("n_incoh")["source"]
    # K = sqrt(pi) Nb b^2 / 8 at every detuning (n_incoh also uses Eq. (14) at omega_r)
    assert "also detuned" in other.var_attrs("coherence_gain")["source"]
    assert other.var_attrs("dechanneling_length")["source"].startswith(
        "model beyond [G24v1]: Biryukov-Chesnokov-Kotov"
    )
    assert "min(thickness, L_d(C))" in other.var_attrs("n_periods")["source"]
    assert other.var_dims["coherence_gain"] == tuned.var_dims["coherence_gain"]
