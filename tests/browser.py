"""Helpers of the explorer's browser tests: `cusweep explore` as a subprocess, Debian's headless Chromium
driven by selenium through Debian's chromedriver (no driver download), and JS snippets that find Bokeh
views and models in the page."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .conftest import cusweep_exe

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--window-size=1280,1100")


@contextmanager
def explore_server(store: str, *extra: str, timeout: float = 60.0) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run ``cusweep explore STORE --no-browser`` and yield (process, URL); SIGINT and reap it at the end."""
    proc = subprocess.Popen([*cusweep_exe(), "explore", store, "--no-browser", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        url = None
        deadline = time.monotonic() + timeout
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                continue
            if "http://" in line:
                url = line[line.index("http://"):].split()[0]
        if url is None:
            proc.kill()
            proc.wait(timeout=10)
            err = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"cusweep explore printed no URL within {timeout} s; stderr: {err[-2000:]}")
        proc.lines = lines  # type: ignore[attr-defined]
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        reader.join(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def chromium() -> Any:
    """A headless Chromium (Debian's) driven through Debian's chromedriver; fails when they are missing."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(f"{CHROMIUM} / {CHROMEDRIVER} missing: install Debian's chromium and chromium-driver "
                    "(.ci/run does: apt-get install -y chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # selenium must never try to download a driver or a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for a in CHROME_ARGS:
        options.add_argument(a)
    options.add_argument("--user-data-dir=" + tempfile.mkdtemp(prefix="cusweep-chromium-"))
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


#: JS: the Bokeh view of the model named arguments[0] (walks the views from the roots)
FIND_VIEW = """
function findView(name) {
  const m = Bokeh.documents[0].get_model_by_name(name);
  const seen = new Set(); const stack = [...Bokeh.index.roots];
  while (stack.length) {
    const v = stack.pop();
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.model === m) return v;
    for (const k of (v.child_views ?? [])) stack.push(k);
  }
  return null;
}
"""


def wait_for(driver: Any, script: str, *args: Any, timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``script`` (JS, returning a value) until it is truthy; its value. Fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what or script[:80]} (last value {value!r})")


def model_data(driver: Any, name: str) -> dict[str, Any]:
    """The data of the ColumnDataSource named ``name`` as plain lists (typed arrays flattened)."""
    return driver.execute_script("""
        const s = Bokeh.documents[0].get_model_by_name(arguments[0]);
        const out = {};
        for (const [k, v] of Object.entries(s.data)) {
          out[k] = Array.from(v, e => (e && e.length !== undefined && typeof e !== 'string')
                              ? Array.from(e, x => Number.isNaN(x) ? null : x) : e);
        }
        return out;""", name)
