"""Small stores the tests of query, maps, best, report and infer-b ask questions of.

Each store is built once per test session (on the shared ``local_client``) from an inline sweep written to
a temporary directory; ``store(name, ...)`` returns its path. ``loaded(path)`` gives every name of a store
as a numpy array broadcast over the full grid (canonical dim order): the direct evaluation the lazy,
chunk-wise query machinery is compared with.
"""

from __future__ import annotations

from functools import cache

import numpy as np

ALL_OUTPUTS = """outputs = ["gamma", "q", "q_ch", "channeling", "gamma_th", "above_threshold",
  "photon_energy_minus", "photon_energy_plus", "resonance_energy", "n_periods", "n_soft", "n_coh", "n_incoh",
  "coherence_gain", "linewidth_coh", "coherent_regime", "bending_parameter", "dechanneling_length",
  "feasible", "transmission"]"""

SWEEPS = {
    # tuned, an extra thickness dim, photon absorption stored; several blocks (tiny chunk_mb)
    "tuned": f"""
name = "ask-tuned"
crystal = "diamond-110"
n_positrons = 1.56e9
chunk_mb = 0.01
{ALL_OUTPUTS}
[axes]
period = {{ start = "8 um", stop = "20 um", num = 25 }}
amplitude = {{ start = "0.5 angstrom", stop = "2.5 angstrom", num = 9 }}
energy = {{ values = ["8 GeV", "13.6 GeV", "17.5 GeV"] }}
sigma_z = {{ values = ["3 um", "9 um"] }}
bunching = {{ values = [0.01, 0.1, 1.0] }}
thickness = {{ values = ["1 mm", "1.4 mm"] }}
""",
    # detuned: the bunch is modulated at given FEL photon energies (an extra dim)
    "detuned": """
name = "ask-detuned"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01
[axes]
period = { start = "13 um", stop = "15.5 um", num = 61 }
amplitude = { start = "0.8 angstrom", stop = "1.6 angstrom", num = 9 }
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = { values = [0.1, 1.0] }
photon_energy = { values = ["7.5 keV", "8 keV", "8.3 keV"] }
""",
    # several crystals (a string dim), log-spaced CU axes
    "multi": """
name = "ask-multi"
crystal = ["diamond-110", "si-110", "w-110"]
thickness = "1 mm"
bunch_charge = "250 pC"
chunk_mb = 0.01
[axes]
period = { start = "2 um", stop = "60 um", num = 16, spacing = "log" }
amplitude = { start = "0.1 angstrom", stop = "5 angstrom", num = 8, spacing = "log" }
energy = { values = ["8 GeV", "13.6 GeV"] }
sigma_z = "9 um"
bunching = { values = [0.1, 1.0] }
""",
    # the paper's bunch over wide log axes: every boundary of the feasible region lies inside the map
    "wide": f"""
name = "ask-wide"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
{ALL_OUTPUTS}
[axes]
period = {{ start = "0.1 um", stop = "2 mm", num = 45, spacing = "log" }}
amplitude = {{ start = "0.001 angstrom", stop = "1000 angstrom", num = 37, spacing = "log" }}
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = 1.0
""",
    # a constructed case with a known optimum: n_coh ~ A^2/l grows along the channeling limit A = k l,
    # so the best design is l = max(l), A = q_ch l / (2 pi gamma) (C = 0.33 there: the channeling limit binds)
    "optimum": """
name = "ask-optimum"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
[axes]
period = { start = "8 um", stop = "20 um", num = 7 }
amplitude = { start = "0.5 angstrom", stop = "3 angstrom", num = 11 }
energy = "13.6 GeV"
sigma_z = "9 um"
bunching = 1.0
""",
}

_BUILT: dict[str, str] = {}


def store(name: str, tmp_path_factory, client) -> str:
    """Path of the store of ``SWEEPS[name]`` (built on first use, then shared by every test module)."""
    if name not in _BUILT:
        import cusweep

        d = tmp_path_factory.mktemp(f"ask-{name}")
        toml = d / f"{name}.toml"
        toml.write_text(SWEEPS[name])
        path = str(d / f"{name}.zarr")
        cusweep.run_sweep(str(toml), path, client=client)
        _BUILT[name] = path
    return _BUILT[name]


@cache
def loaded(path: str) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """(dims, name -> full-grid numpy array) of a store, read eagerly with plain xarray."""
    import xarray as xr

    from cusweep.quantities import ALL_DIMS

    ds = xr.open_zarr(path, consolidated=False, zarr_format=3)
    ds = ds.drop_vars([n for n in ("done", "block_checksum") if n in ds.variables]).load()
    dims = tuple([d for d in ALL_DIMS if d in ds.sizes] + [d for d in ds.sizes if d not in ALL_DIMS])
    full = xr.Dataset(coords={d: ds[d] for d in dims})
    out = {}
    for name in list(dims) + [str(v) for v in ds.data_vars]:
        arr = ds[name]
        out[name] = np.ascontiguousarray(arr.broadcast_like(full).transpose(*dims).values)
    return dims, out
