"""`cusweep explore`: the store adapter reads exactly the slice shown (strided when large), the page's
boundary lines lie on margin = 1 of the model, and, in a real headless Chromium driving `cusweep explore`
run as a subprocess: the page loads from 127.0.0.1 alone with no console error, the plot and controls are
there, moving a slider changes the plotted data to the store's values, a click and "best in this slice"
show the store's values at the right grid point; Ctrl-C stops the server with exit 0."""

from __future__ import annotations

import base64
import math
import re
import signal
import subprocess
import time
import urllib.request

import numpy as np
import pytest

import cusweep
from cusweep.best import evaluate_point, setup_from_store
from cusweep.explore.data import StoreView, stride_for
from cusweep.explore.page import axis_kind
from cusweep.report_html import report_index

from .browser import FIND_VIEW, chromium, explore_server, model_data, wait_for
from .conftest import cusweep_exe

SWEEP = """
name = "explore-test"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.02
[axes]
period = { start = "2 um", stop = "60 um", num = 40, spacing = "log" }
amplitude = { start = "0.05 angstrom", stop = "5 angstrom", num = 30, spacing = "log" }
energy = { values = ["8 GeV", "13.6 GeV", "17.5 GeV"] }
sigma_z = { values = ["3 um", "9 um"] }
bunching = { values = [0.1, 1.0] }
"""


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, local_client):
    d = tmp_path_factory.mktemp("explore")
    (d / "sweep.toml").write_text(SWEEP)
    path = str(d / "explore.zarr")
    cusweep.run_sweep(str(d / "sweep.toml"), path, local_client)
    return path


@pytest.fixture(scope="module")
def view(store_path):
    return StoreView(store_path)


def stored(store_path, name, **at):
    ds = cusweep.open(store_path).ds
    arr = ds[name]
    return np.asarray(arr.isel({d: i for d, i in at.items() if d in arr.dims}).values)


# ------------------------------------------------------------------------------------------ adapter


def test_slice_is_the_stores_values_on_y_x_in_display_units(view, store_path):
    at = {"energy": 1, "sigma_z": 1, "bunching": 0}
    s = view.slice("n_coh", "period", "amplitude", at)
    expected = stored(store_path, "n_coh", **at)  # (period, amplitude)
    assert s.z.shape == (30, 40)
    np.testing.assert_array_equal(s.z, expected.T)
    p = view.slice("photon_energy_minus", "amplitude", "energy", {"period": 3, "sigma_z": 0, "bunching": 0})
    raw = stored(store_path, "photon_energy_minus", period=3)  # (period, amplitude, energy) -> (amp, energy)
    np.testing.assert_allclose(p.z, raw.T / 1e3)  # keV
    assert p.infeasible is not None
    np.testing.assert_array_equal(p.infeasible, ~stored(store_path, "feasible", period=3, sigma_z=0,
                                                        bunching=0).T)


def test_large_slices_are_strided(view, store_path):
    at = {"energy": 2, "sigma_z": 0, "bunching": 1}
    s = view.slice("n_coh", "period", "amplitude", at, max_cells=7)
    assert s.z.shape[0] <= 7 and s.z.shape[1] <= 7
    assert stride_for(40, 7) == 6 and stride_for(30, 7) == 5
    full = stored(store_path, "n_coh", **at).T
    np.testing.assert_array_equal(s.z, full[::5, ::6])
    np.testing.assert_array_equal(s.xi, np.arange(0, 40, 6))


def test_point_is_every_variable_at_the_grid_point(view, store_path):
    at = {"period": 17, "amplitude": 4, "energy": 2, "sigma_z": 1, "bunching": 1}
    values = view.point(at)
    assert set(values) == set(view.variables)
    for name, v in values.items():
        expect = stored(store_path, name, **at).reshape(-1)[0]
        assert (v == bool(expect)) if isinstance(v, bool) else v == pytest.approx(float(expect), rel=0,
                                                                                    nan_ok=True)


def test_best_in_slice_is_the_largest_feasible_value(view, store_path):
    at = {"energy": 1, "sigma_z": 1, "bunching": 1}
    best = view.best_in_slice("n_coh", "period", "amplitude", at)
    z = stored(store_path, "n_coh", **at)
    ok = stored(store_path, "feasible", **at)
    assert ok.any() and (~ok).any()
    i, j = np.unravel_index(np.argmax(np.where(ok, z, -np.inf)), z.shape)
    assert best == {**at, "period": int(i), "amplitude": int(j)}
    # a slice with no feasible point
    none_at = {"period": 0, "sigma_z": 0, "bunching": 0}
    if not stored(store_path, "feasible", **none_at).any():
        assert view.best_in_slice("n_coh", "amplitude", "energy", none_at) is None


def test_margins_come_from_the_constraint_table(view):
    from cusweep import feasibility

    s = view.slice("n_coh", "period", "amplitude", {"energy": 1, "sigma_z": 1, "bunching": 1})
    m = view.margins("period", "amplitude", s.at, s.xi, s.yi)
    assert set(m) == {c.name for c in feasibility.CONSTRAINTS}
    flags = {c.name: c.holds(m[c.name]) for c in feasibility.CONSTRAINTS}
    both = np.logical_and.reduce(list(flags.values()))
    np.testing.assert_array_equal(both, ~s.infeasible)  # the store's feasible flag is the AND of the margins


def test_axis_kinds():
    assert axis_kind(np.geomspace(1, 100, 5)) == "log"
    assert axis_kind(np.linspace(1, 2, 5)) == "linear"
    assert axis_kind(np.array([8.0, 13.6, 17.5])) == "index"
    assert axis_kind(np.array(["a", "b"])) == "index"


# ------------------------------------------------------------------------------------------ page (no browser)


def page(view):
    from bokeh.document import Document

    from cusweep.explore.page import Explorer

    return Explorer(view, Document())


def test_boundary_lines_lie_on_margin_one(view, store_path):
    e = page(view)
    ds = cusweep.open(store_path).ds
    setup = setup_from_store(ds)
    drawn = {name: r.data_source.data for name, r in e.lines.items() if r.visible}
    # the channeling flag changes inside this slice, so its line must be drawn
    assert "channeling" in drawn
    from cusweep import feasibility

    margin_of = {c.name: c.margin for c in feasibility.CONSTRAINTS}
    at = {d: float(np.asarray(ds[d].values)[i]) for d, i in e.slice.at.items()}
    checked = 0
    for name, data in drawn.items():
        for xs, ys in zip(data["xs"], data["ys"], strict=True):
            for xv, yv in list(zip(xs, ys, strict=True))[:: max(1, len(xs) // 5)]:
                point = {**at, "period": 10 ** xv * 1e-6, "amplitude": 10 ** yv * 1e-10}
                m = evaluate_point(setup, point, (margin_of[name],))[margin_of[name]]
                assert m == pytest.approx(1.0, rel=2e-2), (name, point)
                checked += 1
    assert checked >= 5


def test_colour_scale_log_linear_and_flags(view):
    e = page(view)
    assert e.image.glyph.color_mapper is e.mappers["log"]  # n_coh spans decades
    e.var_select.value = "feasible"
    assert e.image.glyph.color_mapper is e.mappers["bool"]
    e.var_select.value = "q_ch"  # over period x amplitude q_ch is constant: linear
    assert e.image.glyph.color_mapper is e.mappers["linear"]


def test_facility_preset_fixes_the_nearest_grid_values(view):
    from cusweep import materials

    e = page(view)
    fac = materials.facility("lcls")
    e.facility_select.value = "lcls"
    energies = view.coord("energy")
    assert e.at["energy"] == int(np.argmin(np.abs(energies - fac.energy)))
    assert e.controls["energy"].value == e.at["energy"]
    if fac.sigma_z is not None:
        assert e.at["sigma_z"] == int(np.argmin(np.abs(view.coord("sigma_z") - fac.sigma_z)))
    assert "lcls" in e.status.text


def test_slice_greys_designs_off_a_photon_energy_as_best_does(view, store_path):
    """``photon_energy`` marks the designs outside the line width 1/(2n) of it, by
    ``cusweep.photon_line.on_line_mask``: here a
    photon energy one design of the slice resonates at, so part of the slice stays."""
    from cusweep.photon_line import on_line_mask

    at = {"energy": 1, "sigma_z": 1, "bunching": 0}
    er = stored(store_path, "resonance_energy", **at)  # (period, amplitude)
    pe = float(er[23, 0])
    s = view.slice("n_coh", "period", "amplitude", at, photon_energy=pe)
    n = stored(store_path, "n_periods", **at)[:, None]
    off = (2 * n * np.abs(er / pe - 1) > 1).T
    assert 0 < (~off).sum() < off.size
    np.testing.assert_array_equal(s.off_line, off)
    ds = cusweep.open(store_path).ds.isel(energy=[1], sigma_z=[1], bunching=[0])
    by_best = ~np.asarray(on_line_mask(ds, None, pe).squeeze().transpose("amplitude", "period").values)
    np.testing.assert_array_equal(s.off_line, by_best)
    assert view.slice("n_coh", "period", "amplitude", at).off_line is None
    best = view.best_in_slice("n_coh", "period", "amplitude", at, photon_energy=pe)
    z, ok = stored(store_path, "n_coh", **at), stored(store_path, "feasible", **at)
    keep = ok & ~off.T
    if keep.any():
        assert best is not None and keep[best["period"], best["amplitude"]]
        assert z[best["period"], best["amplitude"]] == np.max(z[keep])
    else:
        assert best is None


def test_facility_with_photon_energy_greys_the_page_and_none_clears_it(view, store_path):
    from cusweep import materials
    from cusweep.explore.page import NO_FACILITY

    e = page(view)
    e.facility_select.value = "lcls"
    assert e.photon_energy == materials.facility("lcls").photon_energy
    assert e.slice is not None and e.slice.off_line is not None
    grey = ~np.isnan(np.asarray(e.mask_source.data["image"][0]))
    np.testing.assert_array_equal(grey, e.slice.off_line | e.slice.infeasible)
    assert "lcls's photon energy" in e.mask_item.label["value"]
    assert "1/(2 n_periods)" in e.status.text
    e.facility_select.value = NO_FACILITY
    assert e.photon_energy is None and e.slice.off_line is None
    assert e.mask_item.label["value"] == "infeasible (greyed)"
    e.facility_select.value = "european-xfel"  # no FEL photon energy: nothing greyed for it
    assert e.photon_energy is None and "no FEL photon energy" in e.status.text
    e.facility_select.value = "lcls"
    e.facility_select.value = "facet-ii"  # 10 GeV is not on this store's energy grid: refused, lcls lifted
    assert "not within 5%" in e.status.text
    assert e.photon_energy is None and e.slice.off_line is None


# ------------------------------------------------------------------------------------------ report index


def test_report_index_is_self_contained(tmp_path):
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                           "AAAABJRU5ErkJggg==")
    (tmp_path / "map_lcls.png").write_bytes(png)
    rows = [{"facility": "lcls", "n_coh": 1.5e15, "feasible": True}, {"facility": "a<b", "n_coh": None}]
    out = report_index(str(tmp_path), [("LCLS <map>", "map_lcls.png")], rows)
    with open(out) as f:
        text = f.read()
    assert out == str(tmp_path / "index.html")
    assert base64.b64encode(png).decode() in text and "data:image/png;base64," in text
    assert "src=\"map_lcls.png\"" not in text and "http" not in text  # nothing fetched from anywhere
    assert "LCLS &lt;map&gt;" in text and "a&lt;b" in text  # escaped
    assert text.count("<tr>") == 3  # header + two rows
    assert "1.5e+15" in text


# ------------------------------------------------------------------------------------------ CLI


def run_cli(*args, timeout=60):
    return subprocess.run([*cusweep_exe(), *args], capture_output=True, text=True, timeout=timeout)


def test_bad_store_and_port_are_one_line_errors(tmp_path, store_path):
    r = run_cli("explore", str(tmp_path / "nope.zarr"), "--no-browser")
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "not a cusweep store" in r.stderr
    r = run_cli("explore", store_path, "--no-browser", "--port", "70000")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--port" in r.stderr


def test_a_failed_bind_leaks_no_socket(view):
    """A port already taken: make_server raises OSError and leaves no socket open (tornado's bind_sockets
    does not close the one it made; a ResourceWarning when it is collected)."""
    import gc
    import socket
    import warnings

    from cusweep.explore.server import HOST, make_server

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with pytest.raises(OSError):
                make_server(view, port)
            gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]
    assert leaks == []


def listening_addresses(port):
    """Local addresses with a socket listening on ``port`` (Linux /proc/net/tcp and tcp6)."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, p = local.split(":")
                if int(p, 16) == port and state == "0A":  # LISTEN
                    out.append(addr)
    return out


def test_serves_on_loopback_only_and_ctrl_c_stops_cleanly(store_path):
    with explore_server(store_path) as (proc, url):
        port = int(re.search(r":(\d+)/", url).group(1))
        assert url.startswith("http://127.0.0.1:")
        assert listening_addresses(port) == ["0100007F"]  # 127.0.0.1, nothing else (no 0.0.0.0, no ::)
        with urllib.request.urlopen(url, timeout=30) as response:
            html = response.read().decode()
        sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert sources and all(s.startswith("/") for s in sources), sources  # no CDN, nothing remote
        assert "cdn" not in html.lower()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "stopped" in "".join(list(proc.lines.queue))


# ------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="module")
def browser(store_path):
    with explore_server(store_path) as (proc, url):
        driver = chromium()
        try:
            driver.get(url)
            wait_for(driver, "return window.Bokeh !== undefined && Bokeh.documents.length > 0 && "
                     "Bokeh.documents[0].get_model_by_name('image_source') !== null && "
                     "Bokeh.documents[0].get_model_by_name('image_source').data.image[0].length > 1",
                     what="the page and its first slice")
            yield driver
        finally:
            driver.quit()
        assert proc.poll() is None, "the server died during the browser tests"


def image_values(driver):
    data = model_data(driver, "image_source")
    return np.array([np.nan if v is None else v for v in data["image"][0]], dtype=np.float64)


def test_page_loads_with_plot_and_controls_and_no_console_errors(browser, view):
    present = browser.execute_script(FIND_VIEW + """
        return arguments[0].map(n => findView(n) !== null);""",
        ["plot", "var_select", "x_select", "y_select", "slider_energy", "slider_sigma_z", "slider_bunching",
         "facility_select", "best_button", "point_table"])
    assert all(present), present
    assert browser.execute_script("return Bokeh.documents[0].get_model_by_name('colorbar') !== null")
    canvas = browser.execute_script(FIND_VIEW + """
        const r = findView('plot').canvas_view.el.getBoundingClientRect(); return [r.width, r.height];""")
    assert canvas[0] > 300 and canvas[1] > 300
    z = image_values(browser)
    assert z.size == 30 * 40 and np.isfinite(z).sum() > 100
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def test_slider_move_changes_the_plotted_data(browser, store_path, view):
    from selenium.webdriver.common.keys import Keys

    before = image_values(browser)
    at0 = {"energy": 0, "sigma_z": 0, "bunching": 0}
    np.testing.assert_array_equal(before, stored(store_path, "n_coh", **at0).T.reshape(-1))
    handle = browser.execute_script(FIND_VIEW + "return findView('slider_energy').shadow_el"
                                    ".querySelector('.noUi-handle');")
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)  # a real key press on the slider: energy index 0 -> 1
    deadline = time.monotonic() + 30
    after = image_values(browser)
    while np.array_equal(after, before, equal_nan=True) and time.monotonic() < deadline:
        time.sleep(0.2)
        after = image_values(browser)
    expect = stored(store_path, "n_coh", **{**at0, "energy": 1}).T.reshape(-1)
    np.testing.assert_array_equal(after, np.where(expect > 0, expect, np.nan))
    title = browser.execute_script("return Bokeh.documents[0].get_model_by_name('slider_energy').title")
    assert "13.6 GeV" in title
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_click_shows_every_variable_at_the_point(browser, store_path, view):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    i, j = 25, 12  # period index, amplitude index; the other dims where the page's sliders are
    at = {"period": i, "amplitude": j, **slider_positions(browser)}
    xs = math.log10(float(view.display_coord("period")[i]))
    ys = math.log10(float(view.display_coord("amplitude")[j]))
    px, py = browser.execute_script(FIND_VIEW + """
        const v = findView('plot'); const r = v.canvas_view.el.getBoundingClientRect();
        return [r.x + v.frame.x_scale.compute(arguments[0]), r.y + v.frame.y_scale.compute(arguments[1])];""",
        xs, ys)
    click = ActionBuilder(browser)
    click.pointer_action.move_to_location(int(round(px)), int(round(py)))
    click.pointer_action.click()
    click.perform()  # a real mouse click on the canvas
    wait_for(browser, "return Bokeh.documents[0].get_model_by_name('point_source').data.name.length > 0",
             what="the point table")
    table = model_data(browser, "point_source")
    rows = dict(zip(table["name"], table["value"], strict=True))
    assert set(view.variables) <= set(rows)
    for name in view.variables:
        expect = stored(store_path, name, **at).reshape(-1)[0]
        if expect.dtype == bool:
            assert rows[name] == ("true" if expect else "false"), name
        else:
            assert float(rows[name]) == pytest.approx(float(expect) / view.factor(name), rel=1e-5), name
    assert float(rows["period"]) == pytest.approx(float(view.display_coord("period")[i]), rel=1e-5)
    title = browser.execute_script("return Bokeh.documents[0].get_model_by_name('point_title').text")
    assert view.value_text("energy", at["energy"]) in title


def slider_positions(browser):
    """The grid index of every slider of the page (where the tests before left them)."""
    return {d: int(browser.execute_script(f"return Bokeh.documents[0].get_model_by_name('slider_{d}').value"))
            for d in ("energy", "sigma_z", "bunching")}


def test_best_in_this_slice_button(browser, store_path, view):
    browser.execute_script(FIND_VIEW + "findView('best_button').shadow_el.querySelector('button').click();")
    wait_for(browser, "return Bokeh.documents[0].get_model_by_name('status').text.includes('largest')",
             what="the best point")
    at = slider_positions(browser)
    z, ok = stored(store_path, "n_coh", **at), stored(store_path, "feasible", **at)
    rows = dict(zip(*[model_data(browser, "point_source")[k] for k in ("name", "value")], strict=True))
    assert float(rows["n_coh"]) == pytest.approx(float(np.max(z[ok])), rel=1e-5)
    marker = model_data(browser, "marker_source")
    assert len(marker["x"]) == 1


def test_model_first_label_then_confirmed_by_the_store(browser, store_path, view):
    """A slice not read yet (another variable over period x amplitude, which crosses many blocks) is drawn
    from cusweep's model at once, labelled so; the label turns to "= store" once the background read of the
    store has confirmed it, and the plotted values are the store's."""
    import html

    from selenium.webdriver.support.select import Select

    from cusweep.explore.page import MODEL_CONFIRMED, MODEL_PENDING

    get_note = "return Bokeh.documents[0].get_model_by_name('source_note').text"
    wait_for(browser, get_note.replace("return ", "return !") + ".includes('checking')",
             what="no check running")
    # every text the label takes from now on, in the browser
    browser.execute_script("""
        const m = Bokeh.documents[0].get_model_by_name('source_note');
        window.sourceLog = [];
        m.properties.text.change.connect(() => window.sourceLog.push(m.text));""")
    var_select = browser.execute_script(FIND_VIEW + "return findView('var_select').shadow_el"
                                        ".querySelector('select');")
    try:
        Select(var_select).select_by_value("photons_coh")
        log = wait_for(browser, "return window.sourceLog.some(t => t.includes('= store')) && "
                       "window.sourceLog", what="the store's confirmation")
        texts = [html.unescape(t) for t in log]
        assert texts[0] == MODEL_PENDING, texts
        assert texts[-1] == MODEL_CONFIRMED, texts
        title = browser.execute_script("return Bokeh.documents[0].get_model_by_name('plot').title.text")
        assert "photons_coh" in title and "= store" in title
        expect = stored(store_path, "photons_coh", **slider_positions(browser)).T.reshape(-1)
        positive = expect[np.isfinite(expect) & (expect > 0)]
        if positive.max() / positive.min() > 100:  # log colour scale: the page blanks values <= 0
            expect = np.where(expect > 0, expect, np.nan)
        np.testing.assert_array_equal(image_values(browser), expect)
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:  # the other tests look at n_coh
        Select(var_select).select_by_value("n_coh")
        wait_for(browser, "return Bokeh.documents[0].get_model_by_name('plot').title.text.includes('n_coh')",
                 what="n_coh again")
        wait_for(browser, get_note.replace("return ", "return !") + ".includes('checking')",
                 what="no check running")


def expected_grey(store_path, at, photon_energy=None):
    """The page's grey overlay over period (x) x amplitude (y) at ``at``, flattened as the browser holds it:
    infeasible designs and, with ``photon_energy``, those whose resonance lies outside the line width."""
    grey = ~stored(store_path, "feasible", **at)
    if photon_energy is not None:
        er = stored(store_path, "resonance_energy", **at)
        n = stored(store_path, "n_periods", **at)[:, None]
        grey |= 2 * n * np.abs(er / photon_energy - 1) > 1
    return grey.T.reshape(-1)


def test_facility_selector_greys_designs_off_its_photon_energy(browser, store_path):
    """Choosing LCLS in the page's selector fixes energy and sigma_z and greys, besides the infeasible
    designs, every design that does not radiate at its 8.3 keV (none of this coarse grid does)."""
    from selenium.webdriver.support.select import Select

    from cusweep import materials

    fac = materials.facility("lcls")
    before = np.array([v is not None for v in model_data(browser, "mask_source")["image"][0]])
    at0 = slider_positions(browser)  # where the tests before left the sliders
    np.testing.assert_array_equal(before, expected_grey(store_path, at0))
    element = browser.execute_script(FIND_VIEW + "return findView('facility_select').shadow_el"
                                     ".querySelector('select');")
    Select(element).select_by_value("lcls")
    wait_for(browser, "return Bokeh.documents[0].get_model_by_name('status').text.includes('lcls preset')",
             what="the facility preset")
    after = np.array([v is not None for v in model_data(browser, "mask_source")["image"][0]])
    at = {**at0, "energy": 1, "sigma_z": 1}  # 13.6 GeV, 9 um
    expect = expected_grey(store_path, at, fac.photon_energy)
    np.testing.assert_array_equal(after, expect)
    assert not np.array_equal(after, expected_grey(store_path, at)), "the photon energy greyed nothing"
    status = browser.execute_script("return Bokeh.documents[0].get_model_by_name('status').text")
    assert "8.3 keV" in status and "1/(2 n_periods)" in status
    legend = browser.execute_script("""
        const items = Bokeh.documents[0].get_model_by_name('plot').center.filter(m => m.items)[0].items;
        return items.map(it => it.label.value ?? String(it.label));""")
    assert any("lcls's photon energy" in str(t) for t in legend), legend
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_decoded_bytes_follow_the_stored_chunks(view, store_path):
    import json
    from pathlib import Path

    meta = json.loads((Path(store_path) / "n_coh" / "zarr.json").read_text())
    shape, chunk = meta["shape"], meta["chunk_grid"]["configuration"]["chunk_shape"]
    dims = list(view.ds["n_coh"].dims)
    for x, y in (("period", "amplitude"), ("amplitude", "energy")):
        expect = 8
        for d, n, k in zip(dims, shape, chunk, strict=True):
            expect *= n if d in (x, y) else min(k, n)
        assert view.decoded_bytes("n_coh", x, y) == expect
    spanned = [d for d, n, k in zip(dims, shape, chunk, strict=True) if k >= n and n > 1]
    assert view.whole_chunk_dims("n_coh") == spanned


def test_first_page_avoids_slices_that_decode_the_whole_store(view, monkeypatch):
    from cusweep.explore import page as page_module

    assert page_module.default_axes(view, "n_coh") == ("period", "amplitude")  # small store: the physics view
    # as if every chunk spanned all but period: period x amplitude decodes everything; pick the cheapest pair
    monkeypatch.setattr(page_module, "SLOW_BYTES", 1)
    x, y = page_module.default_axes(view, "n_coh")
    swept = [d for d in view.dims if view.size(d) > 1]
    cheapest = min(view.decoded_bytes("n_coh", a, b) for i, a in enumerate(swept) for b in swept[i + 1:])
    assert view.decoded_bytes("n_coh", x, y) == cheapest


# ------------------------------------------------------------------------------------------ slider-axis cubes

#: slider moves from a start position, one dim at a time (grid indices)
MOVES = [("energy", 2), ("bunching", 0), ("sigma_z", 1), ("energy", 0), ("energy", 1), ("bunching", 1),
         ("sigma_z", 0)]


def count_store_reads(monkeypatch):
    """Count the reads of zarr arrays through xarray's backend (every chunk read of a StoreView) outside
    the background refresh thread (those the page waits for)."""
    import threading

    from xarray.backends import zarr as xzarr

    calls = [0]
    for meth in ("_getitem", "_oindex", "_vindex"):
        orig = getattr(xzarr.ZarrArrayWrapper, meth)

        def counted(self, key, _orig=orig):
            if threading.current_thread().name != "cusweep-explore-cubes":
                calls[0] += 1
            return _orig(self, key)

        monkeypatch.setattr(xzarr.ZarrArrayWrapper, meth, counted)
    return calls


def assert_same_slice(a, b):
    np.testing.assert_array_equal(a.z.view(np.uint64), b.z.view(np.uint64))  # bitwise, NaN included
    for name in ("infeasible", "off_line"):
        got, want = getattr(a, name), getattr(b, name)
        assert (got is None) == (want is None)
        if got is not None:
            assert got.dtype == want.dtype == bool
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(a.xi, b.xi)
    np.testing.assert_array_equal(a.yi, b.yi)


def test_period_amplitude_crosses_enough_blocks_for_cubes(view):
    s = view.slice("n_coh", "period", "amplitude", {"energy": 0, "sigma_z": 0, "bunching": 0})
    plan = view._plan("n_coh", "period", "amplitude", s.at, s.xi, s.yi)
    assert plan is not None and {d for d, _, _ in plan.ranges} == {"energy", "sigma_z", "bunching"}
    assert view._plan("n_coh", "amplitude", "energy", {"period": 0, "sigma_z": 0, "bunching": 0},
                      np.arange(3), np.arange(30)) is None  # one block: a plain read


@pytest.mark.parametrize("with_photon", [False, True])
@pytest.mark.parametrize("cells", [1000, 7])
def test_cached_slices_equal_uncached_reads_bitwise(store_path, with_photon, cells):
    cached = StoreView(store_path)
    plain = StoreView(store_path, cube_min_blocks=10**9)
    # a photon energy one design of the start position resonates at (energy index 1)
    photon = float(stored(store_path, "resonance_energy", energy=1)[23, 0]) if with_photon else None
    at = {"energy": 1, "sigma_z": 0, "bunching": 1}
    if with_photon:  # the off-line mask comes from the cubes of the stored resonance_energy and n_periods
        assert cached._plan("resonance_energy", "period", "amplitude", at, np.arange(40),
                            np.arange(30)) is not None
    greyed = set()
    for k, (d, i) in enumerate([(None, None), *MOVES]):
        if d is not None:
            at[d] = i
        for var in ("n_coh", "photons_coh", "feasible"):
            a = cached.slice(var, "period", "amplitude", at, max_cells=cells, photon_energy=photon)
            b = plain.slice(var, "period", "amplitude", at, max_cells=cells, photon_energy=photon)
            assert_same_slice(a, b)
            if photon is not None:
                greyed.update(np.unique(a.off_line).tolist())
        if k % 2:
            cached.wait_refresh(60)  # every other move: right after the previous one, the refresh running
    assert len(cached.cubes) > 0 and len(plain.cubes) == 0
    if cells == 1000:  # unstrided: some designs greyed, not all
        assert greyed == ({False, True} if with_photon else set())


def test_a_one_slider_move_reads_nothing_from_the_store(store_path, monkeypatch):
    view = StoreView(store_path)
    plain = StoreView(store_path, cube_min_blocks=10**9)
    reads = count_store_reads(monkeypatch)
    at = {"energy": 1, "sigma_z": 0, "bunching": 1}
    view.slice("n_coh", "period", "amplitude", at)
    assert reads[0] > 0  # the counter sees the reads of the first view
    for d, i in MOVES:
        at[d] = i
        assert view.wait_refresh(60)  # the refresh of the new position has finished
        before = reads[0]
        s = view.slice("n_coh", "period", "amplitude", at)
        assert reads[0] == before, f"move of {d} read the store"
        view.wait_refresh(60)
        assert_same_slice(s, plain.slice("n_coh", "period", "amplitude", at))
    # from a first view, a move of two sliders at once is not in the cubes: read (and right)
    view = StoreView(store_path)
    view.slice("n_coh", "period", "amplitude", at)
    at.update(energy=2, sigma_z=1)
    before = reads[0]
    s = view.slice("n_coh", "period", "amplitude", at)
    assert reads[0] > before
    assert_same_slice(s, plain.slice("n_coh", "period", "amplitude", at))


def test_cube_cache_respects_its_memory_cap(store_path):
    from cusweep.explore.data import CubeCache

    cap = 60_000  # bytes: one position's cubes (n_coh and feasible, 75,600 bytes) do not all fit
    view = StoreView(store_path, cache_bytes=cap)
    plain = StoreView(store_path, cube_min_blocks=10**9)
    at = {"energy": 1, "sigma_z": 0, "bunching": 1}
    for d, i in [(None, None), *MOVES]:
        if d is not None:
            at[d] = i
        assert_same_slice(view.slice("n_coh", "period", "amplitude", at),
                          plain.slice("n_coh", "period", "amplitude", at))
        view.wait_refresh(60)
        assert 0 < view.cubes.nbytes <= cap
        assert view.cubes.nbytes == sum(c.nbytes for c in view.cubes._cubes.values())
    # the cache alone: least recently used out first, a cube over half the cap never kept
    cache = CubeCache(100)
    a, b, c = (np.zeros(40, dtype=np.uint8) for _ in range(3))
    cache.put(("a",), a)
    cache.put(("b",), b)
    assert cache.get(("a",)) is a  # now b is the least recently used
    cache.put(("c",), c)
    assert ("b",) not in cache and ("a",) in cache and ("c",) in cache and cache.nbytes == 80
    cache.put(("big",), np.zeros(51, dtype=np.uint8))
    assert ("big",) not in cache and cache.nbytes == 80
