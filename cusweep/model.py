"""Evaluate the formulary on one block of the sweep grid: coordinate arrays in, each output on its
natural dims out. Pure numpy (no dask/xarray/zarr); store units at the boundary (m, eV), CGS inside.

Each coordinate is reshaped to broadcast along its own axis, so every intermediate is computed on
exactly the axes it depends on (no broadcasting of 1-D axes to the full grid, engine-notes §11).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import constants as k
from . import feasibility, fused
from .formulary import angular, channeling, coherence, kinematics, spectrum

if TYPE_CHECKING:
    from .materials import Crystal
from .quantities import VARIABLES, natural_dims

CRYSTAL_FIELDS = (
    "potential_depth",
    "plasma_energy",
    "interplanar_spacing",
    "max_field",
    "thomas_fermi_radius",
    "mean_excitation_energy",
)


@dataclass(frozen=True)
class Setup:
    """Everything the model needs besides the grid: picklable, sent to every worker.

    Building a Setup touches no data tables: the xraydb tables (attenuation lengths, the effective
    plasma energy of ``dielectric = "xraydb"``) are loaded on first use by the model, once per process
    and crystal (:func:`tables`), so planning and dry runs never call xraydb.
    """

    dims: tuple[str, ...]
    scalars: dict[str, Any]
    crystals: dict[str, Crystal]
    length_model: str = "thickness"
    dechanneling_model: str = "ksg"
    #: optional crystal -> (energies eV, lengths m) tables, used only for materials xraydb does not know
    attenuation: dict[str, Any] = field(default_factory=dict)

    @property
    def tuned(self) -> bool:
        return "photon_energy" not in self.dims and self.scalars.get("photon_energy") is None

    @property
    def dielectric(self) -> str:
        """"free-electron" (the paper's ε = 1 − ωp²/ω², default) or "xraydb" (effective ħωp from f1)."""
        return str(self.scalars.get("dielectric") or "free-electron")

    @property
    def point_like(self) -> bool:
        """True when the sweep gives no transverse bunch size (F_R = 1: an upper bound)."""
        return "sigma_r" not in self.dims and self.scalars.get("sigma_r") is None

    def natural_dims(self, name: str) -> tuple[str, ...]:
        return natural_dims(name, self.dims, tuned=self.tuned, length_model=self.length_model,
                            dielectric=self.dielectric)

    @classmethod
    def from_spec(cls, spec: Any) -> Setup:
        """The Setup of a validated SweepSpec (pure: no I/O, no xraydb)."""
        return cls(
            dims=tuple(spec.dims),
            scalars=dict(spec.scalars),
            crystals=dict(spec.crystals),
            length_model=spec.length_model,
            dechanneling_model=spec.dechanneling_model,
        )


#: dielectric = "xraydb", tuned: the self-consistent edge is searched within [E/4, 4E] of the free-electron
#: edge E (the effective ħωp of the built-in crystals is within ±10 % of the free-electron one), to 2^-60
EDGE_BRACKET = 4.0
EDGE_BISECTIONS = 60
#: photon energies [eV] of the xraydb tables (log-log interpolated inside the model)
TABLE_ENERGIES = np.geomspace(100.0, 8.0e5, 20001)


def _material(crystal: Any) -> tuple[str, float]:
    """(formula, density) of a crystal; a crystal rebuilt from store attrs falls back to the built-in
    row of the same name; ("", NaN) when unknown."""
    formula = str(getattr(crystal, "formula", "") or "")
    density = float(getattr(crystal, "density", math.nan))
    if formula and math.isfinite(density):
        return formula, density
    from . import materials

    builtin = materials.crystals().get(str(crystal.name))
    if builtin is None:
        return "", math.nan
    return builtin.formula, builtin.density


@functools.lru_cache(maxsize=64)
def _tables_of(formula: str, density: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from . import materials

    nan = np.full_like(TABLE_ENERGIES, np.nan)
    if not formula or not math.isfinite(density):
        return {"attenuation": (TABLE_ENERGIES, nan), "plasma_energy": (TABLE_ENERGIES, nan)}
    c = materials.Crystal(name="table", potential_depth=1.0, plasma_energy=1.0, interplanar_spacing=1.0,
                          max_field=1.0, density=density, formula=formula)
    att = np.asarray(materials.attenuation_length(c, TABLE_ENERGIES), dtype=np.float64)
    hwp = np.asarray(materials.effective_plasma_energy(c, TABLE_ENERGIES), dtype=np.float64)
    return {"attenuation": (TABLE_ENERGIES, att), "plasma_energy": (TABLE_ENERGIES, hwp)}


def tables(crystal: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """xraydb tables of one crystal over :data:`TABLE_ENERGIES`: ``attenuation`` (1/μ_total [m]) and
    ``plasma_energy`` (effective ħωp = E√(2δ(E)) [eV], from f1). Loaded once per process (cached)."""
    return _tables_of(*_material(crystal))


def attenuation_tables(spec: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Attenuation length tables of every crystal of a sweep (xraydb; cached per process)."""
    return {name: tables(c)["attenuation"] for name, c in spec.crystals.items()}


class _Inputs:
    """Lazily computed, memoised intermediates of one block (CGS)."""

    buffers: fused.Buffers | None = None

    def __init__(self, setup: Setup, coords: Mapping[str, np.ndarray], buffers: fused.Buffers | None = None):
        self.setup = setup
        ndim = len(setup.dims)
        self.shape = tuple(len(coords[d]) for d in setup.dims)
        self._memo: dict[str, Any] = {}
        #: the full-block outputs are computed by cusweep.fused into these reused buffers
        self.buffers = buffers if buffers is not None and math.prod(self.shape) >= fused.MIN_POINTS else None
        #: {constraint name: (points where it fails, points)} counted by a fused pass
        self.counts: dict[str, tuple[int, int]] = {}
        self._axis: dict[str, Any] = {}
        for i, d in enumerate(setup.dims):
            shape = [1] * ndim
            shape[i] = -1
            v = np.asarray(coords[d])
            self._axis[d] = v.reshape(shape) if d != "crystal" else (v, i)
        self.ndim = ndim

    def raw(self, name: str) -> Any:
        """A sweep input in store units: an axis (broadcastable) or a scalar."""
        if name in self._axis:
            return self._axis[name]
        return self.setup.scalars[name]

    def crystal(self, attr: str) -> Any:
        if "crystal" in self._axis:
            names, i = self._axis["crystal"]
            shape = [1] * self.ndim
            shape[i] = -1
            return np.array(
                [getattr(self.setup.crystals[str(n)], attr) for n in names], dtype=np.float64
            ).reshape(shape)
        return float(getattr(self.setup.crystals[self.setup.scalars["crystal"]], attr))

    def __getitem__(self, key: str) -> Any:
        if key not in self._memo:
            self._memo[key] = getattr(self, "_" + key)()
        return self._memo[key]

    # ---- inputs in CGS
    def _E(self):
        return np.asarray(self.raw("energy"), dtype=np.float64)

    def _l(self):
        return np.asarray(self.raw("period"), dtype=np.float64) * k.CM_PER_M

    def _A(self):
        return np.asarray(self.raw("amplitude"), dtype=np.float64) * k.CM_PER_M

    def _sigma(self):
        return np.asarray(self.raw("sigma_z"), dtype=np.float64) * k.CM_PER_M

    def _b(self):
        return np.asarray(self.raw("bunching"), dtype=np.float64)

    def _Nb(self):
        return np.asarray(self.raw("n_positrons"), dtype=np.float64)

    def _thickness(self):
        return np.asarray(self.raw("thickness"), dtype=np.float64) * k.CM_PER_M

    def _U0(self):
        return self.crystal("potential_depth")

    def _sigma_r(self):
        if "sigma_r" in self._axis:
            return np.asarray(self.raw("sigma_r"), dtype=np.float64) * k.CM_PER_M
        value = self.setup.scalars.get("sigma_r")
        return 0.0 if value is None else float(value) * k.CM_PER_M

    def _hwp(self):
        """ħωp [eV]: the crystal's (free-electron, the paper's), or the effective one from xraydb's f1 at
        the resonance (dielectric = "xraydb"; tuned: at the exact soft edge, which itself depends on ħωp:
        the root of E = edge(ħωp,eff(E)), by bisection; NaN where no root is bracketed or below threshold)."""
        if self.setup.dielectric != "xraydb":
            return self.crystal("plasma_energy")
        if not self.setup.tuned:
            return self._table("plasma_energy", np.asarray(self.raw("photon_energy"), dtype=np.float64))

        def edge_of(hwp):
            g_th = kinematics.threshold_gamma(self["l"], self["Q"], hwp)
            return kinematics.omega_minus(self["Omega"], self["gamma"], self["Q"], g_th) * k.hbar

        # the edge E solves E = edge(ħωp,eff(E)); bisection on a bracket around the free-electron edge
        # (a root exists there; near an absorption edge, where f1 dips, it is one of several)
        free = edge_of(self.crystal("plasma_energy"))
        lo, hi = free / EDGE_BRACKET, free * EDGE_BRACKET
        for _ in range(EDGE_BISECTIONS):
            mid = np.sqrt(lo * hi)
            above = edge_of(self._table("plasma_energy", mid)) > mid
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        root = np.sqrt(lo * hi)
        ok = (edge_of(self._table("plasma_energy", free / EDGE_BRACKET)) > free / EDGE_BRACKET) & (
            edge_of(self._table("plasma_energy", free * EDGE_BRACKET)) < free * EDGE_BRACKET)
        return np.where(ok, self._table("plasma_energy", root), np.nan)

    def _d(self):
        return self.crystal("interplanar_spacing") * k.CM_PER_M

    def _Umax(self):
        return self.crystal("max_field") / k.CM_PER_M

    def _aTF(self):
        return self.crystal("thomas_fermi_radius") * k.CM_PER_M

    def _I(self):
        return self.crystal("mean_excitation_energy")

    # ---- kinematics
    def _gamma(self):
        return kinematics.lorentz_factor(self["E"])

    def _Omega(self):
        return kinematics.omega_cu(self["l"])

    def _q(self):
        return kinematics.undulator_parameter(self["A"], self["l"], self["gamma"])

    def _Q(self):
        return kinematics.resonance_factor(self["q"])

    def _q_ch(self):
        return channeling.channeling_limit(self["gamma"], self["U0"])

    def _gamma_th(self):
        return kinematics.threshold_gamma(self["l"], self["Q"], self["hwp"])

    def _w_minus(self):
        return kinematics.omega_minus(self["Omega"], self["gamma"], self["Q"], self["gamma_th"])

    def _w_plus(self):
        return kinematics.omega_plus(self["Omega"], self["gamma"], self["Q"], self["gamma_th"])

    def _w_minus_approx(self):
        return kinematics.omega_minus_approx(self["Omega"], self["hwp"])

    def _w_plus_approx(self):
        return kinematics.omega_plus_approx(self["Omega"], self["gamma"], self["Q"])

    def _lam_minus(self):
        return kinematics.wavelength(self["w_minus_approx"])

    # ---- channeling
    def _C(self):
        return channeling.bending_parameter(self["E"], self["A"], self["l"], self["Umax"])

    def _L_d0(self):
        return channeling.dechanneling_length_straight(
            self["gamma"], self["d"], self["aTF"], self["I"], model=self.setup.dechanneling_model
        )

    def _L_d(self):
        return channeling.dechanneling_length(self["L_d0"], self["C"])

    def _L(self):
        if self.setup.length_model == "dechanneling":
            return np.minimum(self["thickness"], self["L_d"])
        return self["thickness"]

    def _n(self):
        return spectrum.n_periods(self["L"], self["l"])

    # ---- resonance: tuned = the exact soft edge of Eq. (12b); detuned = the FEL photon
    def _w_r(self):
        if self.setup.tuned:
            return self["w_minus"]
        return np.asarray(self.raw("photon_energy"), dtype=np.float64) / k.hbar

    def _lam_r(self):
        return kinematics.wavelength(self["w_r"])

    def _dn_domega_r(self):
        """Eq. (14) at ωr with the exact ω∓ of Eq. (12b) (tuned: at ω−, where sinc = 1)."""
        return spectrum.spectral_density(
            self["w_r"], self["q"], self["Q"], self["n"], self["Omega"], self["w_minus"], self["w_plus"]
        )

    # ---- angle-integrated spectra (photon counts)
    def _edge_r(self):
        """x(ωr, 0) of Eq. (12a): exactly 0 when tuned (NaN below threshold, where ω− has no value)."""
        if self.setup.tuned:
            return np.where(np.isnan(self["w_minus"]), np.nan, 0.0)
        return angular.edge_argument(self["w_r"], self["Omega"], self["gamma"], self["Q"], self["hwp"])

    def _S_minus(self):
        """S(ω−): the angle-integrated spectrum at the exact soft edge (half the sinc² lobe)."""
        edge = np.where(np.isnan(self["w_minus"]), np.nan, 0.0)
        return angular.spectral_density(self["w_minus"], self["q"], self["n"], self["Omega"], self["gamma"],
                                        edge)

    def _S_r(self):
        return angular.spectral_density(self["w_r"], self["q"], self["n"], self["Omega"], self["gamma"],
                                        self["edge_r"])

    def _S_R_r(self):
        """S_R(ωr): with the transverse form factor F_R(σR) of Eq. (18) inside the ϑ² integral."""
        if self.setup.point_like:
            return self["S_r"]
        return angular.spectral_density(self["w_r"], self["q"], self["n"], self["Omega"], self["gamma"],
                                        self["edge_r"], self["sigma_r"])

    # ---- outputs (store units)
    def _out_gamma(self):
        return self["gamma"]

    def _out_q(self):
        return self["q"]

    def _out_q_ch(self):
        return self["q_ch"]

    def _out_channeling(self):
        return channeling.channeling(self["q"], self["q_ch"])

    def _out_gamma_th(self):
        return self["gamma_th"]

    def _out_above_threshold(self):
        return kinematics.above_threshold(self["gamma"], self["gamma_th"])

    def _out_photon_energy_minus(self):
        return self["w_minus"] * k.hbar

    def _out_photon_energy_plus(self):
        return self["w_plus"] * k.hbar

    def _out_resonance_energy(self):
        return self["w_r"] * k.hbar

    def _out_n_periods(self):
        return self["n"]

    def _out_n_soft(self):
        return spectrum.soft_line_photons(self["n"], self["q"], self["l"], self["gamma"], self["lam_minus"])

    def _out_n_coh(self):
        # Eq. (14) (exact ω∓) at ωr × (b²/4) Nb² √π c/σZ: Eq. (22) at the tuned edge for γ ≫ γth
        if self.buffers is not None:
            # the formula at b = 1 (its last factor, b², is then 1: x · 1 = x exactly) times b·b, the
            # formula's own last product, into a reused buffer (cusweep.fused; tests/test_fused.py)
            row = coherence.n_coh_detuned(self["dn_domega_r"], self["Nb"], self["sigma"], 1.0)
            value = fused.outer(self.shape, row, self["b"] * self["b"], self.buffers)
            if value is not None:
                return value
        return coherence.n_coh_detuned(self["dn_domega_r"], self["Nb"], self["sigma"], self["b"])

    def _out_n_incoh(self):
        # Nb × Eq. (14) (exact ω∓) at ωr × 2c/σZ: Eq. (23) at the tuned edge for γ ≫ γth
        return coherence.n_incoh_detuned(self["dn_domega_r"], self["Nb"], self["sigma"])

    def _out_coherence_gain(self):
        return coherence.coherence_gain(self["Nb"], self["b"])  # = n_coh / n_incoh at every detuning

    def _out_photons_soft(self):
        return angular.photons_soft(self["S_minus"], self["w_minus"], self["n"])

    def _energy_chain(self):
        """photons_coh, energy_fraction and feasible into reused buffers (cusweep.fused), or None.

        Each is its formula's last operations on factors the formulary computes: photons_coh at b = 1
        times b·b, energy_fraction of one photon times photons_coh, feasible as the AND of every other
        constraint (the energy margin set to -inf, which holds) with the energy constraint."""
        if self.buffers is None:
            return None
        energy = next(c for c in feasibility.CONSTRAINTS if c.margin == "energy_fraction")
        others = {m: (-np.inf if m == energy.margin else self["out_" + m]) for m in feasibility.MARGINS}
        chain = fused.energy_chain(
            self.shape,
            angular.photons_coh(self["S_R_r"], self["Nb"], self["sigma"], 1.0),
            self["b"] * self["b"],
            angular.energy_fraction(1.0, self["w_r"] * k.hbar, self["Nb"], self["E"]),
            feasibility.feasible(others),
            energy.strict,
            self.buffers,
        )
        if chain is not None:
            self.counts[energy.name] = (chain[3], chain[0].size)
        return chain

    def _out_photons_coh(self):
        if self["energy_chain"] is not None:
            return self["energy_chain"][0]
        return angular.photons_coh(self["S_R_r"], self["Nb"], self["sigma"], self["b"])

    def _out_photons_incoh(self):
        return angular.photons_incoh(self["S_r"], self["Nb"], self["sigma"])

    def _out_energy_fraction(self):
        if self["energy_chain"] is not None:
            return self["energy_chain"][1]
        return angular.energy_fraction(self["out_photons_coh"], self["w_r"] * k.hbar, self["Nb"], self["E"])

    def _out_linewidth_coh(self):
        return coherence.linewidth(self["lam_r"], self["sigma"])

    def _out_coherent_regime(self):
        return coherence.coherent_regime(self["lam_r"], self["sigma"], self["n"])

    def _out_bending_parameter(self):
        return self["C"]

    def _out_dechanneling_length(self):
        return self["L_d"] / k.CM_PER_M

    # ---- feasibility: each constraint's margin (must stay below 1), then their AND (cusweep.feasibility)
    def _out_channeling_ratio(self):
        return self["q"] / self["q_ch"]

    def _out_threshold_ratio(self):
        return self["gamma_th"] / self["gamma"]

    def _out_coherence_ratio(self):
        return self["lam_r"] * self["n"] / (np.pi * self["sigma"])

    def _out_dechanneling_ratio(self):
        # n l / L_d(C) = L / L_d: inf where L_d = 0 (C >= 1)
        return self["L"] / self["L_d"]

    def _out_feasible(self):
        if self["energy_chain"] is not None:
            return self["energy_chain"][2]
        return feasibility.feasible({m: self["out_" + m] for m in feasibility.MARGINS})

    def _L_a(self):
        """Photon attenuation length at the resonance [cm] (xraydb tables, log-log interpolated)."""
        return self._attenuation(self["w_r"] * k.hbar) * k.CM_PER_M

    def _out_transmission(self):
        return channeling.transmission(self["L"], self["L_a"])

    def _out_effective_length(self):
        return channeling.effective_length(self["thickness"], self["L_d"], self["L_a"]) / k.CM_PER_M

    def _out_optimal_thickness(self):
        return channeling.optimal_thickness(self["L_d"], self["L_a"]) / k.CM_PER_M

    def _out_photons_coh_exit(self):
        # coherent amplitudes add: they attenuate with 2 L_a and the channeled fraction enters squared
        ratio = channeling.effective_length(self["L"], self["L_d"], 2.0 * self["L_a"]) / self["L"]
        return self["out_photons_coh"] * (ratio * ratio)

    def _out_optimal_thickness_coh(self):
        return channeling.optimal_thickness(self["L_d"], 2.0 * self["L_a"]) / k.CM_PER_M

    def _attenuation(self, energy_ev):
        """Attenuation length [m] at photon energies [eV] (broadcastable; per crystal)."""
        return self._table("attenuation", energy_ev)

    def _crystal_table(self, name: str, kind: str):
        table = tables(self.setup.crystals[name])[kind]
        # a table given with the Setup is used only for a material the lazy tables do not know
        if kind == "attenuation" and name in self.setup.attenuation and np.isnan(table[1]).all():
            return self.setup.attenuation[name]
        return table

    def _table(self, kind: str, energy_ev):
        """A crystal's xraydb table (``tables``) interpolated at photon energies [eV]."""
        if "crystal" not in self._axis:
            return _loglog(self._crystal_table(self.setup.scalars["crystal"], kind), energy_ev)
        names, i = self._axis["crystal"]
        e = np.asarray(energy_ev)
        e = e.reshape((1,) * (self.ndim - e.ndim) + e.shape)
        parts = [
            _loglog(self._crystal_table(str(n), kind), e if e.shape[i] == 1 else np.take(e, [j], axis=i))
            for j, n in enumerate(names)
        ]
        shape = np.broadcast_shapes(*[p.shape for p in parts])
        return np.concatenate([np.broadcast_to(p, shape) for p in parts], axis=i)


def _loglog(table, x):
    xs, ys = table
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(np.interp(np.log(x), np.log(xs), np.log(ys), left=np.nan, right=np.nan))


def evaluate(
    setup: Setup,
    coords: Mapping[str, np.ndarray],
    outputs: Iterable[str],
    *,
    buffers: fused.Buffers | None = None,
    counts: dict[str, tuple[int, int]] | None = None,
    sink: Callable[[str, np.ndarray], None] | None = None,
) -> dict[str, np.ndarray]:
    """Compute ``outputs`` on the block spanned by ``coords`` (dim -> 1-D coordinate values).

    Returns each output as an ndarray on its natural dims (``setup.natural_dims(name)``), float64 or bool.
    Yields follow the paper's formulas wherever their inputs are finite; validity lives in the flags.

    The engine's options (same values, bit for bit):

    buffers : the full-block outputs of large blocks are computed by :mod:`cusweep.fused` into these
        reused buffers (overwritten by the next call in the same thread).
    counts : receives {constraint name: (points where it fails, points)} for the constraints such a pass
        counted.
    sink : called as ``sink(name, value)`` with each output as soon as it is computed, in order, instead
        of returning them (the result is then ``{}``); an output nothing else needs (``n_coh``) gives its
        buffer back once the sink returns, so the next full-block output reuses it.
    """
    if buffers is not None:
        buffers.start()
    inputs = _Inputs(setup, coords, buffers)
    result = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for name in outputs:
            if name not in VARIABLES:
                raise KeyError(f"unknown output {name!r}")
            value = np.asarray(inputs["out_" + name])
            value = _on_dims(value, setup.dims, setup.natural_dims(name), inputs.shape, name)
            if sink is None:
                result[name] = value
                continue
            sink(name, value)
            if name in _UNUSED_BY_OTHERS and inputs.buffers is not None:
                # computed again if asked for again (not into the buffer the next output now uses)
                buffers.give(inputs._memo.pop("out_" + name))  # type: ignore[union-attr]
    if counts is not None:
        counts.update(inputs.counts)
    return result


#: outputs no other quantity of the model is computed from (their buffers can be reused once written)
_UNUSED_BY_OTHERS = frozenset({"n_coh"})


def _on_dims(
    value: np.ndarray, dims: tuple[str, ...], keep: tuple[str, ...], shape: tuple[int, ...], name: str
) -> np.ndarray:
    """Broadcast ``value`` to the block's extent along ``keep`` and drop the other (length-1) axes."""
    value = value.reshape(
        value.shape if value.ndim == len(dims) else (1,) * (len(dims) - value.ndim) + value.shape
    )
    target = tuple(n if d in keep else 1 for d, n in zip(dims, shape, strict=True))
    try:
        full = np.broadcast_to(value, target)
    except ValueError:
        raise AssertionError(
            f"{name}: computed on shape {value.shape}, which varies along dims outside "
            f"its declared dependencies {keep}"
        ) from None
    out_shape = tuple(n for d, n in zip(dims, shape, strict=True) if d in keep)
    return np.ascontiguousarray(full.reshape(out_shape)).reshape(out_shape)  # ascontiguousarray makes 0-d 1-d
