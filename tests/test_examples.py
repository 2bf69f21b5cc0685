"""The example notebook (examples/study.ipynb) runs end to end on its small sweep, in a fresh kernel."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_example_notebook_runs(tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "examples" / "study.ipynb", as_version=4)
    monkeypatch.setenv("CUSWEEP_EXAMPLES", str(ROOT / "examples"))
    monkeypatch.setenv("CUSWEEP_NO_PROGRESS", "1")
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "blocks done, complete" in text
    assert "best n_coh (maximised) subject to feasible and (energy == 13.6 GeV)" in text
    assert "b = " in text and "boundaries drawn: channeling" in text
    # the top table is a DataFrame in display units, rendered by the kernel
    tables = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "period [µm]" in tables and "amplitude [Å]" in tables
