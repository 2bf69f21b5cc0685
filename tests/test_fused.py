"""The engine's buffered path for the full-block outputs (cusweep.fused) gives the plain formulary's values
bit for bit: checked against the formulas on random inputs (NaN, inf, signed zeros, subnormals), through
``model.evaluate`` on whole blocks of several sweeps, and through ``cusweep run`` on a store."""

import threading

import numpy as np
import pytest
import zarr

from cusweep import execute, feasibility, fused
from cusweep.formulary import angular, coherence
from cusweep.model import Setup, evaluate
from cusweep.plan import make_plan
from cusweep.spec import loads

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1e-310, 1e308, -1e308, 1.0, 1.0 - 2**-53])


def _random(rng, shape, special=True):
    """Positive and negative values over many decades, with special values sprinkled in."""
    x = rng.standard_normal(shape) * 10.0 ** rng.uniform(-30, 30, shape)
    if special:
        flat = x.reshape(-1)
        hit = rng.random(flat.size) < 0.05
        flat[hit] = rng.choice(SPECIAL, int(hit.sum()))
    return x


def _same(a, b):
    """Equal as stored: NaN where NaN, else the same bits (signed zeros told apart)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.dtype == bool:
        return bool(np.array_equal(a, b))
    nan = np.isnan(a)
    bits_a, bits_b = a[~nan].view(np.uint64), b[~nan].view(np.uint64)
    return bool(np.array_equal(nan, np.isnan(b)) and np.array_equal(bits_a, bits_b))


@pytest.mark.parametrize("seed", range(4))
def test_buffered_path_equals_the_formulas_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    shape = (3, 5, 7, 4, 6)  # the last axis plays bunching
    spectrum = _random(rng, (3, 5, 7, 1, 1))
    nb = abs(_random(rng, (), special=False)) + 1.0
    sigma = _random(rng, (1, 1, 1, 4, 1))
    b = _random(rng, (1, 1, 1, 1, 6))
    photon_energy, beam_energy = _random(rng, (3, 5, 7, 1, 1)), _random(rng, (1, 1, 7, 1, 1))
    other = {m: rng.uniform(0.0, 2.0, (3, 5, 7, 4, 1)) for m in feasibility.MARGINS}
    bufs = fused.Buffers()

    with np.errstate(all="ignore"):
        n_coh = coherence.n_coh_detuned(spectrum, nb, sigma, b)
        got = fused.outer(shape, coherence.n_coh_detuned(spectrum, nb, sigma, 1.0), b * b, bufs)
        assert got is not None and _same(got, n_coh)

        photons = angular.photons_coh(spectrum, nb, sigma, b)
        fraction = angular.energy_fraction(photons, photon_energy, nb, beam_energy)
        margins = {**other, "energy_fraction": fraction}
        feasible = feasibility.feasible(margins)
        energy = next(c for c in feasibility.CONSTRAINTS if c.margin == "energy_fraction")
        chain = fused.energy_chain(
            shape,
            angular.photons_coh(spectrum, nb, sigma, 1.0),
            b * b,
            angular.energy_fraction(1.0, photon_energy, nb, beam_energy),
            feasibility.feasible({**other, "energy_fraction": -np.inf}),
            energy.strict,
            bufs,
        )
    assert chain is not None
    assert _same(chain[0], photons)
    assert _same(chain[1], fraction)
    assert _same(chain[2], np.broadcast_to(feasible, shape))
    assert chain[3] == int(np.count_nonzero(~energy.holds(fraction)))


def test_buffered_path_refuses_what_is_not_a_row_times_a_column():
    bufs = fused.Buffers()
    shape = (4, 3, 5)
    assert fused.outer(shape, np.ones((4, 3, 5)), np.ones(5), bufs) is None  # row varies along the last
    assert fused.outer(shape, np.ones((4, 3, 1)), np.ones((1, 3, 5)), bufs) is None  # column too wide
    assert fused.outer((5,), np.ones(1), np.ones(5), bufs) is None  # one axis: nothing to gain
    assert fused.outer(shape, np.ones((4, 1, 1)), np.ones(5), bufs).shape == shape


def test_buffers_are_reused_per_block_and_per_thread():
    bufs = fused.Buffers()
    bufs.start()
    a, b = bufs.take((4, 5), np.float64), bufs.take((4, 5), np.float64)
    assert a is not b  # both in use in this block
    bufs.start()  # next block: both free again
    assert {id(bufs.take((4, 5), np.float64)), id(bufs.take((4, 5), np.float64))} == {id(a), id(b)}
    assert bufs.give(a) and not bufs.give(np.empty(3))
    assert bufs.take((4, 5), np.float64) is a  # given back early: reused within the block
    assert bufs.take((4, 5), np.bool_).dtype == np.bool_
    other = []
    t = threading.Thread(target=lambda: (bufs.start(), other.append(bufs.take((4, 5), np.float64))))
    t.start()
    t.join()
    assert all(other[0] is not x for x in (a, b))  # another thread has its own


SWEEP = """
name = "fused"
crystal = "diamond-110"
thickness = "1.4 mm"
{extra}
[axes]
period = {{ start = "2 um", stop = "50 um", num = 23 }}
amplitude = {{ start = "0.01 nm", stop = "0.5 nm", num = 19 }}
energy = {{ values = ["0.5 GeV", "4 GeV", "13.6 GeV", "20 GeV"] }}
sigma_z = {{ start = "0.05 um", stop = "50 um", num = 6, spacing = "log" }}
{last}
"""

NB = "n_positrons = 1.56e9"
CASES = {
    "tuned": (NB, "bunching = { values = [0.0, 0.01, 0.3, 0.7, 1.0] }"),
    "dechanneling, sigma_r": (f'{NB}\nlength_model = "dechanneling"\nsigma_r = "3 um"',
                              "bunching = { values = [0.0, 0.01, 0.3, 0.7, 1.0] }"),
    "detuned": (f'{NB}\nphoton_energy = "2 keV"', "bunching = { values = [0.01, 1.0] }"),
    "bunching not last (plain path)": ("", "bunching = { values = [0.01, 1.0] }\n"
                                     "n_positrons = { values = [1e8, 1.56e9, 1e12] }"),
}


@pytest.mark.parametrize("case", CASES)
def test_evaluate_with_buffers_equals_plain_numpy(case, monkeypatch):
    extra, last = CASES[case]
    spec = loads(SWEEP.format(extra=extra, last=last))
    setup = Setup.from_spec(spec)
    coords = {d: np.asarray(spec.coords[d]) for d in spec.dims}
    outputs = [*spec.outputs, *(m for m in feasibility.MARGINS if m not in spec.outputs)]
    plain = evaluate(setup, coords, outputs)
    monkeypatch.setattr(fused, "MIN_POINTS", 1)  # these blocks are small: use the buffers anyway
    counts: dict = {}
    looped = evaluate(setup, coords, outputs, buffers=fused.Buffers(), counts=counts)
    for name in outputs:
        assert _same(looped[name], plain[name]), name
    assert execute.block_counts(looped, counts) == execute.block_counts(plain)
    # streamed: each output handed over (copied, as a writer does) before the next is computed
    streamed: dict = {}
    got = evaluate(setup, coords, outputs, buffers=fused.Buffers(),
                   sink=lambda n, v: streamed.update({n: v.copy()}))
    assert got == {} and list(streamed) == outputs
    for name in outputs:
        assert _same(streamed[name], plain[name]), name
    assert bool(counts) == (case != "bunching not last (plain path)")


def test_run_with_large_blocks_stores_the_plain_values(tmp_path):
    """A sweep whose blocks are large enough for the buffers (2.1 x 10^6 points, 2 blocks), through
    ``cusweep run``'s engine on a LocalCluster: every stored array equals plain numpy on the whole grid."""
    last = "bunching = { start = 0.01, stop = 1.0, num = 10 }"
    text = SWEEP.format(extra=f"{NB}\nchunk_mb = 200", last=last)
    text = text.replace("num = 23", "num = 100").replace("num = 19", "num = 90")
    spec = loads(text)
    plan = make_plan(spec)
    assert plan.n_blocks >= 2 and np.prod(plan.chunks) >= fused.MIN_POINTS
    summary = execute.run_sweep(spec, str(tmp_path / "s.zarr"), workers=1)
    assert summary.computed == plan.n_blocks
    setup = Setup.from_spec(spec)
    plain = evaluate(setup, {d: np.asarray(spec.coords[d]) for d in spec.dims}, spec.outputs)
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    for name in spec.outputs:
        assert _same(root[name][...], plain[name]), name
    # the run summary's counters, as the plain path counts them
    grid = {d: np.asarray(spec.coords[d]) for d in spec.dims}
    fraction = evaluate(setup, grid, ["energy_fraction"])["energy_fraction"]
    energy = next(c for c in feasibility.CONSTRAINTS if c.margin == "energy_fraction")
    assert summary.flags_false[energy.name] == int(np.count_nonzero(~energy.holds(fraction)))
