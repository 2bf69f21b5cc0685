"""`cusweep explore`, model first: a slice that would read many blocks is computed by cusweep's model, then
read from the store in the background and compared. The model's slice is the store's (tuned, detuned, a
crystal label dim, float32); a store whose values were changed is caught and the page switches to the stored
values with a warning; a store written by another cusweep version never uses the model."""

from __future__ import annotations

import html
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

import cusweep
from cusweep.explore.data import CHECK_ULPS, StoreView

SWEEPS = {
    "tuned": """
name = "model-first-tuned"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01
[axes]
period = { start = "2 um", stop = "60 um", num = 30, spacing = "log" }
amplitude = { start = "0.05 angstrom", stop = "5 angstrom", num = 20, spacing = "log" }
energy = { values = ["8 GeV", "13.6 GeV", "17.5 GeV"] }
sigma_z = { values = ["3 um", "9 um"] }
bunching = { values = [0.1, 1.0] }
""",
    "detuned": """
name = "model-first-detuned"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01
[axes]
period = { start = "13 um", stop = "15.5 um", num = 61 }
amplitude = { start = "0.8 angstrom", stop = "1.6 angstrom", num = 9 }
energy = { values = ["8 GeV", "13.6 GeV", "17.5 GeV"] }
sigma_z = "9 um"
bunching = { values = [0.1, 1.0] }
photon_energy = { values = ["7.5 keV", "8 keV", "8.3 keV"] }
""",
    "crystal": """
name = "model-first-crystal"
crystal = ["diamond-110", "si-110", "w-110"]
thickness = "1 mm"
bunch_charge = "250 pC"
chunk_mb = 0.01
[axes]
period = { start = "2 um", stop = "60 um", num = 40, spacing = "log" }
amplitude = { start = "0.1 angstrom", stop = "5 angstrom", num = 16, spacing = "log" }
energy = { values = ["8 GeV", "13.6 GeV", "17.5 GeV"] }
sigma_z = "9 um"
bunching = { values = [0.01, 0.1, 1.0] }
""",
}
SWEEPS["float32"] = SWEEPS["crystal"].replace('chunk_mb', 'dtype = "float32"\nchunk_mb').replace(
    "model-first-crystal", "model-first-float32")


@pytest.fixture(scope="module")
def stores(tmp_path_factory, local_client):
    d = tmp_path_factory.mktemp("model_first")
    out = {}
    for name, text in SWEEPS.items():
        (d / f"{name}.toml").write_text(text)
        out[name] = str(d / f"{name}.zarr")
        cusweep.run_sweep(str(d / f"{name}.toml"), out[name], local_client)
    return out


def agree(got, want, dtype):
    """``got`` (the model-first slice, display units) against ``want`` (the stored one): floats within
    CHECK_ULPS of the stored dtype, NaN at the same cells; exactly when bitwise."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    eps = float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0
    np.testing.assert_allclose(got, want, rtol=CHECK_ULPS * eps, atol=0.0, equal_nan=True)


def assert_same_slice(model, stored, dtype):
    agree(model.z, stored.z, dtype)
    for name in ("infeasible", "off_line"):
        got, want = getattr(model, name), getattr(stored, name)
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.xi, stored.xi)
    np.testing.assert_array_equal(model.yi, stored.yi)


@pytest.mark.parametrize("kind", list(SWEEPS))
def test_model_first_slice_equals_the_stored_slice(stores, kind):
    """Random positions, pairs of dims and variables: every slice the model answers first is the store's,
    and the background read confirms it (also for a move of two sliders before the check is done)."""
    path = stores[kind]
    view = StoreView(path)
    plain = StoreView(path, cube_min_blocks=10**9)  # never cubes, never the model: the store's values
    assert view.model_note == ""
    rng = random.Random(13)
    swept = [d for d in view.dims if view.size(d) > 1]
    names = [n for n in view.variables if view.ds[n].dtype.kind in "fb"]
    photon = None
    if "photon_energy" not in view.dims:  # tuned: also the designs off a photon energy, from the model
        photon = float(np.nanmedian(np.asarray(view.ds["resonance_energy"].values)))
    modelled = confirmed = 0
    for k in range(24):
        x, y = rng.sample(swept, 2)
        var = rng.choice(names)
        at = {d: rng.randrange(view.size(d)) for d in view.dims}
        pe = photon if k % 3 == 0 else None
        s = view.slice(var, x, y, at, photon_energy=pe, model_first=True)
        want = plain.slice(var, x, y, at, photon_energy=pe)
        assert_same_slice(s, want, view.ds[var].dtype)
        if s.source == "model":
            modelled += 1
            assert s.check is not None and var in s.check.names or var not in s.check.names
            if k % 4 == 1:  # two sliders moved before the check is done: the model again, still right
                others = [d for d in swept if d not in (x, y)]
                for d in others[:2]:
                    at[d] = (at[d] + 1) % view.size(d)
                s2 = view.slice(var, x, y, at, photon_energy=pe, model_first=True)
                assert_same_slice(s2, plain.slice(var, x, y, at, photon_energy=pe), view.ds[var].dtype)
                # the first check: stopped by the second slice, unless it had finished already
                assert s.check.done.wait(60) and s.check.state in ("abandoned", "confirmed")
                s = s2
            assert view.wait_refresh(60)
            if s.check is not None:
                assert s.check.state == "confirmed", (s.check.state, s.check.differs)
                confirmed += 1
    assert modelled >= 5 and confirmed >= 5, (modelled, confirmed)
    assert view.model_refused == ""


def tampered_copy(path, tmp_path, at, factor=1.5):
    """A copy of the store with one stored n_coh value multiplied by ``factor`` (its chunk rewritten)."""
    import zarr

    copy = tmp_path / "tampered.zarr"
    shutil.copytree(path, copy)
    ds = cusweep.open(str(copy)).ds
    arr = zarr.open_array(str(copy / "n_coh"), mode="r+")
    idx = tuple(int(at[str(d)]) for d in ds["n_coh"].dims)
    arr[idx] = float(arr[idx]) * factor
    return str(copy)


def test_a_tampered_store_is_caught_and_the_page_shows_the_stored_values(stores, tmp_path):
    from bokeh.document import Document

    from cusweep.explore.page import MODEL_DIFFERS, MODEL_PENDING, Explorer

    at = {"period": 5, "amplitude": 3, "energy": 0, "sigma_z": 0, "bunching": 0}  # in the page's first view
    path = tampered_copy(stores["tuned"], tmp_path, at)
    plain = StoreView(path, cube_min_blocks=10**9)
    view = StoreView(path)
    page = Explorer(view, Document())
    first = page.slice
    assert first is not None and first.source == "model" and (first.x, first.y) == ("period", "amplitude")
    assert html.unescape(page.source_note.text) == MODEL_PENDING
    assert "checking the store" in page.plot.title.text
    assert view.wait_refresh(60)
    assert first.check is not None and first.check.state == "differs" and first.check.differs == ["n_coh"]
    assert "n_coh" in view.model_refused
    page._on_checked(first)  # what the server runs in the document's thread when the check ends
    s = page.slice
    assert s is not None and s.source == "store"
    want = plain.slice("n_coh", "period", "amplitude", s.at)
    np.testing.assert_array_equal(np.asarray(page.image_source.data["image"][0]),
                                  np.where(want.z > 0, want.z, np.nan))
    assert html.unescape(page.source_note.text) == MODEL_DIFFERS.format(names="n_coh")
    assert "checking" not in page.plot.title.text
    # the model is not used again for this store, at any slice
    other = view.slice("n_coh", "period", "amplitude", {**s.at, "energy": 2, "sigma_z": 1}, model_first=True)
    assert other.source == "store"
    # the untampered store, same page start: confirmed
    good = Explorer(StoreView(stores["tuned"]), Document())
    assert good.slice is not None and good.slice.source == "model"
    assert good.view.wait_refresh(60)
    good._on_checked(good.slice)
    assert good.slice.check.state == "confirmed" and "= store" in good.plot.title.text


def test_a_store_of_another_cusweep_version_never_uses_the_model(stores, tmp_path, monkeypatch):
    copy = tmp_path / "old.zarr"
    shutil.copytree(stores["tuned"], copy)
    meta = json.loads((Path(copy) / "zarr.json").read_text())
    meta["attributes"]["cusweep_version"] = "0.0.1"
    (Path(copy) / "zarr.json").write_text(json.dumps(meta))
    view = StoreView(str(copy))
    assert "0.0.1" in view.model_note and not view.model_gives("n_coh")

    evaluate = StoreView._evaluate

    def no_model(self, names, *args, **kwargs):
        if names:  # the boundary lines alone (no stored variable) are the model's on every store
            raise AssertionError("the model answered a slice of a store of another cusweep version")
        return evaluate(self, names, *args, **kwargs)

    monkeypatch.setattr(StoreView, "_evaluate", no_model)
    at = {"energy": 1, "sigma_z": 0, "bunching": 1}
    s = view.slice("n_coh", "period", "amplitude", at, model_first=True)
    assert s.source == "store" and s.check is None
    assert view._plan("n_coh", "period", "amplitude", s.at, s.xi, s.yi) is not None  # read many blocks
    view.wait_refresh(60)
    # the same store with this version's attr: the model answers first
    assert StoreView(stores["tuned"]).model_gives("n_coh")


def test_a_check_stopped_by_another_session_says_so(stores):
    """Two pages on one store (two browser sessions): the second page's read stops the first page's check;
    the first page then says its values were not checked."""
    from bokeh.document import Document

    from cusweep.explore.page import MODEL_UNCHECKED, Explorer

    view = StoreView(stores["tuned"])
    with view._refresh_lock:  # the first page's check waits here until the second page has read
        first = Explorer(view, Document())
        second = Explorer(view, Document())
        second.var_select.value = "photons_coh"
    assert view.wait_refresh(60)
    s = first.slice
    assert s is not None and s.source == "model" and s.check is not None
    assert s.check.done.wait(60) and s.check.state == "abandoned"
    first._on_checked(s)
    assert html.unescape(first.source_note.text) == MODEL_UNCHECKED and "not checked" in first.plot.title.text
    assert second.slice is not None and second.slice.check is not None
    assert second.slice.check.state == "confirmed"
