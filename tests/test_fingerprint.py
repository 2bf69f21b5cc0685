"""A sweep without an ``outputs`` list fingerprints without the default outputs: a newer cusweep that adds
an output still recognises (and resumes) the stores of default sweeps made before; a listed ``outputs``
is part of the fingerprint."""

from __future__ import annotations

import pytest

import cusweep
from cusweep import spec as spec_module
from cusweep import store
from cusweep.plan import make_plan

TEXT = """
name = "fp"
crystal = "diamond-110"
thickness = "1.4 mm"
n_positrons = 1.56e9
chunk_mb = 0.01
{outputs}
[axes]
period = {{ start = "8 um", stop = "20 um", num = 7 }}
amplitude = {{ start = "0.5 angstrom", stop = "2.5 angstrom", num = 5 }}
energy = {{ values = ["8 GeV", "13.6 GeV"] }}
sigma_z = "9 um"
bunching = {{ values = [0.1, 1.0] }}
"""


def _spec(outputs: str = ""):
    return spec_module.loads(TEXT.format(outputs=outputs))


def test_default_outputs_are_not_fingerprinted(monkeypatch):
    default = _spec().fingerprint()
    listed = ", ".join(f'"{n}"' for n in spec_module.OUTPUTS)
    assert _spec(f"outputs = [{listed}]").fingerprint() == default  # the default list, written out
    assert _spec('outputs = ["n_coh", "feasible"]').fingerprint() != default  # a listed subset
    # an older cusweep with one output fewer made the same default sweep
    monkeypatch.setattr(spec_module, "OUTPUTS", spec_module.OUTPUTS[:-1])
    older = _spec()
    assert older.outputs == spec_module.OUTPUTS and older.fingerprint() == default


def test_store_of_an_older_default_sweep_resumes(tmp_path, monkeypatch, local_client):
    path = str(tmp_path / "fp.zarr")
    dropped = spec_module.OUTPUTS[-1]
    with monkeypatch.context() as m:  # "an older cusweep": one default output fewer
        m.setattr(spec_module, "OUTPUTS", spec_module.OUTPUTS[:-1])
        old = _spec()
        cusweep.run_sweep(old, path, client=local_client)
    assert dropped not in cusweep.open(path).ds
    new = _spec()
    assert dropped in new.outputs and new.fingerprint() == old.fingerprint()
    plan = make_plan(new)
    assert store.check_target(path, plan)  # the same sweep: resumable, not refused
    # an unfinished block is computed with the outputs the store holds
    store.clear_done(path, plan.with_chunks(store.stored_chunks(path, plan)), [0])
    summary = cusweep.run_sweep(new, path, client=local_client)
    assert summary.computed == 1 and summary.skipped == plan.n_blocks - 1
    sweep = cusweep.open(path)
    assert sweep.status().complete and sweep.verify().damaged == []
    assert dropped not in sweep.ds


@pytest.mark.parametrize("outputs", ['outputs = ["n_coh", "feasible"]'])
def test_a_listed_outputs_change_is_another_sweep(tmp_path, outputs, local_client):
    path = str(tmp_path / "fp.zarr")
    cusweep.run_sweep(_spec(outputs), path, client=local_client)
    with pytest.raises(cusweep.SpecError, match="holds a different sweep"):
        cusweep.run_sweep(_spec(), path, client=local_client)
