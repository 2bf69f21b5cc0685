"""Make docs/explore.png: a small store, `cusweep explore` on it, a click on the map, a screenshot from
Debian's headless Chromium (the browser tests' helpers).

    .venv/bin/python docs/explore_screenshot.py [OUT.png]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SWEEP = """
name = "paper-neighbourhood"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
[axes]
period = { start = "2 um", stop = "60 um", num = 120, spacing = "log" }
amplitude = { start = "0.05 angstrom", stop = "5 angstrom", num = 100, spacing = "log" }
energy = { values = ["8 GeV", "13.6 GeV", "17.5 GeV"] }
sigma_z = { values = ["3 um", "9 um", "20 um"] }
bunching = { values = [0.1, 1.0] }
"""


def main() -> int:
    import cusweep
    from tests.browser import FIND_VIEW, chromium, explore_server, wait_for

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "explore.png")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sweep.toml").write_text(SWEEP)
        store = str(Path(tmp) / "neighbourhood.zarr")
        cusweep.run_sweep(str(Path(tmp) / "sweep.toml"), store, workers=1)
        with explore_server(store) as (_proc, url):
            driver = chromium()
            try:
                driver.set_window_size(1280, 1000)
                driver.get(url)
                wait_for(driver, "return window.Bokeh !== undefined && Bokeh.documents.length > 0 && "
                         "Bokeh.documents[0].get_model_by_name('image_source').data.image[0].length > 1")
                for name, value in (("slider_energy", 1), ("slider_sigma_z", 1), ("slider_bunching", 1)):
                    driver.execute_script("const s = Bokeh.documents[0].get_model_by_name(arguments[0]);"
                                          "s.value = arguments[1]; s.value_throttled = arguments[1];",
                                          name, value)
                time.sleep(2)
                driver.execute_script(FIND_VIEW + "findView('best_button').shadow_el"
                                      ".querySelector('button').click();")
                wait_for(driver, "return Bokeh.documents[0].get_model_by_name('point_source')"
                         ".data.name.length > 0")
                time.sleep(1)
                driver.save_screenshot(str(out))
            finally:
                driver.quit()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
