"""Registry of every stored name: units, long_name, symbol, source, kind, and what it depends on.

One name per quantity in code, store, plots and CLI (style.md). The dependency sets decide each
variable's natural dims: a variable carries exactly the sweep dims among its dependencies, in the
sweep's dim order.
"""

from __future__ import annotations

from dataclasses import dataclass

CANONICAL_DIMS = ("period", "amplitude", "energy", "sigma_z", "bunching")
EXTRA_DIMS = ("photon_energy", "thickness", "n_positrons", "crystal", "sigma_r")
ALL_DIMS = CANONICAL_DIMS + EXTRA_DIMS

REFERENCES = (
    "[G24v1] H. L. Gevorgyan, L. A. Gevorgian, 'Coherent X-ray crystalline undulator radiation from a "
    "FEL-modulated positron bunch at zero angle', arXiv:2412.10205 v1 (2024); [KSG13] A. V. Korol, A. V. "
    "Solov'yov, W. Greiner, Channeling and Radiation in Periodically Bent Crystals, Springer (2013); [BCK97] "
    "V. M. Biryukov, Yu. A. Chesnokov, V. I. Kotov, Crystal Channeling and its Application at High-Energy "
    "Accelerators, Springer (1997); [xraydb] xraydb, Elam-Ravel-Sieber X-ray data (2002)"
)


@dataclass(frozen=True)
class Quantity:
    name: str
    units: str
    long_name: str
    symbol: str
    source: str
    kind: str = "float"  # "float" | "bool"


COORDS: dict[str, Quantity] = {q.name: q for q in [
    Quantity("period", "m", "CU period", r"$l$", "[G24v1] Sec. II"),
    Quantity("amplitude", "m", "CU amplitude", r"$A$", "[G24v1] Sec. II"),
    Quantity("energy", "eV", "positron beam energy", r"$E$", "[G24v1] Sec. V"),
    Quantity("sigma_z", "m", "rms bunch length", r"$\sigma_Z$", "[G24v1] Eq. (18)"),
    Quantity("bunching", "1", "modulation depth", r"$b$", "[G24v1] Eq. (20)"),
    Quantity("photon_energy", "eV", "FEL photon energy (bunch modulation)", r"$\hbar\omega_r$",
             "[G24v1] Eq. (20)"),
    Quantity("thickness", "m", "crystal thickness", r"$L$", "[G24v1] Sec. II"),
    Quantity("n_positrons", "1", "positrons per bunch", r"$N_b$", "[G24v1] Eq. (16)"),
    Quantity("crystal", "1", "crystal channel", r"crystal", "cusweep materials table"),
    Quantity("sigma_r", "m", "rms transverse bunch size", r"$\sigma_R$", "[G24v1] Eq. (18)"),
]}

_K = frozenset({"period", "amplitude", "energy", "crystal"})   # kinematics in the crystal

VARIABLES: dict[str, Quantity] = {q.name: q for q in [
    Quantity("gamma", "1", "positron Lorentz factor", r"$\gamma$", "[G24v1] Sec. V: gamma = E/mc^2"),
    Quantity("q", "1", "undulator parameter", r"$q$", "[G24v1] Sec. III: q = 2 pi A gamma / l"),
    Quantity("q_ch", "1", "channeling limit of q", r"$q_{ch}$", "[G24v1] Sec. III: q_ch = sqrt(2 nu gamma)"),
    Quantity("channeling", "1", "positrons channel (q < q_ch)", r"$q<q_{ch}$", "[G24v1] Sec. III", "bool"),
    Quantity("gamma_th", "1", "threshold Lorentz factor", r"$\gamma_{th}$", "[G24v1] Eq. (12b)"),
    Quantity("above_threshold", "1", "zero-angle radiation exists (gamma > gamma_th)",
             r"$\gamma>\gamma_{th}$", "[G24v1] Eq. (12b)", "bool"),
    Quantity("photon_energy_minus", "eV", "soft edge photon energy (exact)", r"$\hbar\omega_-$",
             "[G24v1] Eq. (12b)"),
    Quantity("photon_energy_plus", "eV", "hard edge photon energy (exact)", r"$\hbar\omega_+$",
             "[G24v1] Eq. (12b)"),
    Quantity("resonance_energy", "eV", "photon energy of the bunch modulation", r"$\hbar\omega_r$",
             "[G24v1] Eq. (12b): tuned, the bunch is modulated at the exact soft edge hbar omega_-"),
    Quantity("n_periods", "1", "number of CU periods on the radiating length", r"$n$",
             "[G24v1] Sec. II: n = L/l"),
    Quantity("n_soft", "1/rad**2",
             "the paper's soft-line N_ph: photons per positron per unit solid-angle-theta^2 at zero angle",
             r"$N_{ph}$",
             "[G24v1] Eq. (15) with lambda_- (erratum: paper prints lambda_+), Eq. (13) omega_-+; Eq. (14) "
             "is d2N/(domega dtheta^2) at theta = 0, so this is a density in theta^2, not a count"),
    Quantity("n_coh", "1/rad**2",
             "the paper's N_coh: coherent photons per bunch per unit solid-angle-theta^2 at zero angle",
             r"$N_{coh}$", "[G24v1] Eqs. (14), (20), (21): Eq. (14) with the exact omega_-+ of Eq. (12b) at "
             "omega_r x (b^2/4) Nb^2 sqrt(pi) c/sigma_Z (Eq. (22) for gamma >> gamma_th); a density in "
             "theta^2 at theta = 0; b is the depth of the modulation b cos(omega_r z/c), twice the FEL "
             "bunching factor"),
    Quantity("n_incoh", "1/rad**2",
             "the paper's N_incoh: incoherent photons per bunch in the coherent bandwidth per unit "
             "solid-angle-theta^2 at zero angle", r"$N_{incoh}$",
             "[G24v1] Eqs. (14), (23): Nb x Eq. (14) (exact omega_-+) at omega_r x 2c/sigma_Z (Eq. (23) "
             "for gamma >> gamma_th); a density in theta^2 at theta = 0"),
    Quantity("coherence_gain", "1", "coherent / incoherent photons", r"$K$",
             "[G24v1] Eq. (24): K = sqrt(pi) Nb b^2 / 8 at every detuning (erratum: typeset like "
             "sqrt(pi/8))"),
    Quantity("photons_soft", "1", "soft-line photons per positron (all angles, bandwidth omega_-/n)",
             r"$N_{soft}$",
             "[G24v1] Eq. (12a) integrated over theta^2 and phi (bracket at its small-angle value 1) at "
             "the exact soft edge: S(omega_-) omega_-/n, S = alpha n q^2 G(n x)/(2 Omega gamma^2), G(0) = "
             "pi/2"),
    Quantity("photons_coh", "1", "coherent photons per bunch (all angles)", r"$N^{\gamma}_{coh}$",
             "[G24v1] Eqs. (12a), (16), (18), (20), (21): Nb^2 (b^2/4) sqrt(pi) (c/sigma_Z) S_R(omega_r), "
             "S_R = Eq. (12a) integrated over theta^2 and phi with F_R = exp(-(omega sigma_R theta/c)^2); "
             "b cos(omega_r z/c) modulation, phase-coherent over sigma_Z (seeded FEL, not SASE)"),
    Quantity("photons_incoh", "1", "incoherent photons per bunch in the coherent bandwidth (all angles)",
             r"$N^{\gamma}_{incoh}$",
             "[G24v1] Eqs. (12a), (16), (23): Nb S(omega_r) 2c/sigma_Z, S = Eq. (12a) integrated over "
             "theta^2 and phi"),
    Quantity("energy_fraction", "1", "share of the bunch energy radiated coherently", r"$f_E$",
             "energy conservation: photons_coh hbar omega_r / (Nb E); physical only below 1"),
    Quantity("linewidth_coh", "1", "relative energy spread of the coherent line", r"$\delta_{coh}$",
             "[G24v1] Sec. IV: delta_coh = lambda_r / (2 pi sigma_Z)"),
    Quantity("coherent_regime", "1", "coherent regime (lambda_r < pi sigma_Z / n)",
             r"$\lambda_r<\pi\sigma_Z/n$", "[G24v1] Sec. IV", "bool"),
    Quantity("bending_parameter", "1", "bending parameter", r"$C$",
             "model beyond [G24v1]: C = 4 pi^2 E A / (U'max l^2) [KSG13]"),
    Quantity("dechanneling_length", "m", "dechanneling length in the bent crystal", r"$L_d$",
             "model beyond [G24v1]: L_d(C) = (1-C)^2 L_d(0) [BCK97]"),
    Quantity("feasible", "1", "channeling, C < 1, above threshold, coherent, n l <= L_d, energy_fraction < 1",
             r"feasible", "[G24v1] Secs. III-IV and below Eq. (15), with C < 1 [KSG13]; every constraint of "
             "cusweep.feasibility", "bool"),
    Quantity("channeling_ratio", "1", "channeling margin q / q_ch (feasible below 1)", r"$q/q_{ch}$",
             "[G24v1] Sec. III"),
    Quantity("threshold_ratio", "1", "threshold margin gamma_th / gamma (feasible below 1)",
             r"$\gamma_{th}/\gamma$", "[G24v1] Eq. (12b)"),
    Quantity("coherence_ratio", "1", "coherence margin lambda_r n / (pi sigma_Z) (feasible below 1)",
             r"$\lambda_r n/(\pi\sigma_Z)$", "[G24v1] Sec. IV: validity of Eq. (22)"),
    Quantity("dechanneling_ratio", "1", "dechanneling margin n l / L_d(C) (feasible at most 1)",
             r"$nl/L_d$", "[G24v1] below Eq. (15): n <= L_D/l; L_d(C) model beyond [G24v1] [BCK97]"),
    Quantity("transmission", "1", "mean survival of incoherent photons in the crystal at the resonance",
             r"$T$",
             "model beyond [G24v1]: T = (L_a/L)(1 - exp(-L/L_a)), L_a from xraydb"),
    Quantity("effective_length", "m", "effective radiating length with dechanneling and absorption "
                                      "(incoherent)",
             r"$L_{eff}$",
             "model beyond [G24v1]: channeled fraction exp(-z/L_d), photon survival exp(-(L-z)/L_a): L_eff "
             "= L_d L_a/(L_a - L_d) (exp(-L/L_a) - exp(-L/L_d)); L_a from xraydb, L_d as "
             "dechanneling_length"),
    Quantity("optimal_thickness", "m", "crystal thickness that maximises the incoherent effective length",
             r"$L^*$",
             "model beyond [G24v1]: L* = L_d L_a/(L_a - L_d) ln(L_a/L_d), the maximum of effective_length "
             "over L; L_a from xraydb"),
    Quantity("photons_coh_exit", "1", "coherent photons per bunch leaving the crystal",
             r"$N^{\gamma}_{coh,exit}$",
             "model beyond [G24v1]: photons_coh x (L_coh/L)^2, L_coh = effective_length with the amplitude "
             "attenuation length 2 L_a (coherent amplitudes add, so the channeled fraction exp(-z/L_d) "
             "enters squared); L_a from xraydb, L_d as dechanneling_length"),
    Quantity("optimal_thickness_coh", "m", "crystal thickness that maximises the coherent yield leaving it",
             r"$L^*_{coh}$",
             "model beyond [G24v1]: L* = L_d 2L_a/(2L_a - L_d) ln(2L_a/L_d), the maximum of "
             "photons_coh_exit over L (amplitude attenuation length 2 L_a); L_a from xraydb"),
]}

#: optional outputs that need photon attenuation lengths (xraydb tables sent to the workers)
ABSORPTION_OUTPUTS = ("transmission", "effective_length", "optimal_thickness", "photons_coh_exit",
                      "optimal_thickness_coh")
#: optional outputs: the feasibility margins (cusweep.feasibility), evaluated by maps and best on demand
MARGIN_OUTPUTS = ("channeling_ratio", "threshold_ratio", "coherence_ratio", "dechanneling_ratio")

#: the variables of the store contract (absorption outputs and margins are optional)
CONTRACT_OUTPUTS = tuple(n for n in VARIABLES if n not in ABSORPTION_OUTPUTS + MARGIN_OUTPUTS)
OUTPUTS = tuple(VARIABLES)


def dependencies(name: str, *, tuned: bool, length_model: str,
                 dielectric: str = "free-electron") -> frozenset[str]:
    """The inputs (dim names) a variable depends on, for a tuned/detuned sweep, a length model and a
    dielectric model (with "xraydb" and a given photon energy, ħωp and so the kinematics depend on it)."""
    kin = _K | ({"photon_energy"} if dielectric == "xraydb" and not tuned else frozenset())
    lam_r = kin if tuned else frozenset({"photon_energy"})
    length = frozenset({"thickness"}) | (_K if length_model == "dechanneling" else frozenset())
    n = length | {"period"}
    yields = kin | n | {"sigma_z", "n_positrons"} | lam_r
    regime = lam_r | {"sigma_z"} | n
    coh = yields | {"bunching", "sigma_r"}
    table = {
        "gamma": {"energy"},
        "q": {"period", "amplitude", "energy"},
        "q_ch": {"energy", "crystal"},
        "channeling": _K,
        "gamma_th": kin,
        "above_threshold": kin,
        "photon_energy_minus": kin,
        "photon_energy_plus": kin,
        "resonance_energy": lam_r,
        "n_periods": n,
        "n_soft": kin | n,
        "n_coh": yields | {"bunching"},
        "n_incoh": yields,
        "coherence_gain": {"n_positrons", "bunching"},
        "photons_soft": kin | n,
        "photons_coh": coh,
        "photons_incoh": yields,
        "energy_fraction": coh,
        "linewidth_coh": lam_r | {"sigma_z"},
        "coherent_regime": regime,
        "bending_parameter": _K,
        "dechanneling_length": _K,
        "feasible": kin | regime | length | coh,
        "channeling_ratio": _K,
        "threshold_ratio": kin,
        "coherence_ratio": regime,
        "dechanneling_ratio": _K | length,
        "transmission": lam_r | length | {"crystal"},
        "effective_length": lam_r | _K | {"thickness"},
        "optimal_thickness": lam_r | _K,
        "photons_coh_exit": coh | _K | length,
        "optimal_thickness_coh": lam_r | _K,
    }
    return frozenset(table[name])


def natural_dims(name: str, dims: tuple[str, ...], *, tuned: bool, length_model: str,
                 dielectric: str = "free-electron") -> tuple[str, ...]:
    """The dims a variable is stored on: the sweep's dims it depends on, in the sweep's order."""
    deps = dependencies(name, tuned=tuned, length_model=length_model, dielectric=dielectric)
    return tuple(d for d in dims if d in deps)


def attrs(q: Quantity) -> dict[str, str]:
    """The attrs stored with a coordinate or variable (JSON-safe strings)."""
    return {"units": q.units, "long_name": q.long_name, "symbol": q.symbol, "source": q.source}


#: sources of the variables whose formula differs when the sweep gives the FEL photon energy (detuned)
_DETUNED_SOURCES = {
    "resonance_energy": "the sweep's FEL photon energy: the bunch is modulated at omega_r ([G24v1] Eq. (20))",
    "n_coh": "[G24v1] Eqs. (14), (20), (21), detuned: Eq. (14) (exact omega_-+ of Eq. (12b)) at the FEL "
             "photon "
    "omega_r x (b^2/4) Nb^2 sqrt(pi) c/sigma_Z, per unit theta^2 at theta = 0; b is the depth of the "
    "modulation b cos(omega_r z/c), twice the FEL bunching factor",
    "n_incoh": "[G24v1] Eqs. (14), (23), detuned: Nb x Eq. (14) (exact omega_-+) at the FEL photon omega_r "
    "x 2c/sigma_Z, per unit theta^2 at theta = 0",
    "coherence_gain": "[G24v1] Eq. (24): n_coh / n_incoh = sqrt(pi) Nb b^2 / 8, also detuned (both use "
    "Eq. (14) at omega_r)",
}
#: variables computed on the radiating length L (= min(thickness, L_d) with length_model = "dechanneling")
_ON_LENGTH = ("n_periods", "n_soft", "n_coh", "n_incoh", "coherent_regime", "feasible",
              "transmission", "coherence_ratio", "dechanneling_ratio", "photons_soft", "photons_coh",
              "photons_incoh", "energy_fraction", "photons_coh_exit")
#: variables whose value uses the transverse form factor F_R(sigma_R)
_TRANSVERSE = ("photons_coh", "energy_fraction", "photons_coh_exit")
#: variables that use the plasma energy (dielectric model)
_DIELECTRIC = ("gamma_th", "above_threshold", "photon_energy_minus", "photon_energy_plus", "n_soft", "n_coh",
               "n_incoh", "photons_soft", "photons_coh", "photons_incoh",
               "energy_fraction", "threshold_ratio",
               "photons_coh_exit")

def variable_attrs(name: str, *, tuned: bool, length_model: str, dechanneling_source: str,
                   point_like: bool | None = None, dielectric: str = "free-electron") -> dict[str, str]:
    """The attrs of a stored variable for this sweep: the source names the formula actually used (tuned or
    detuned, the length model, the dechanneling model, the transverse form factor, the dielectric model).

    ``point_like``: True when the sweep gives no sigma_r (F_R = 1: an upper bound), False when it does,
    None when unknown (the source then states both cases)."""
    out = attrs(VARIABLES[name])
    if not tuned and name in _DETUNED_SOURCES:
        out["source"] = _DETUNED_SOURCES[name]
    if name == "dechanneling_length":
        out["source"] = dechanneling_source
    if length_model == "dechanneling" and name in _ON_LENGTH:
        out["source"] += "; radiating length L = min(thickness, L_d(C)) (length_model = dechanneling)"
    if name in _TRANSVERSE:
        if point_like is None:
            out["source"] += ("; F_R with the sweep's sigma_r, or F_R = 1 without one: a transversely "
                              "point-like bunch (upper bound)")
        elif point_like:
            out["source"] += "; no sigma_r given: F_R = 1, a transversely point-like bunch (upper bound)"
        else:
            out["source"] += "; F_R with the sweep's sigma_r"
    if dielectric == "xraydb" and name in _DIELECTRIC:
        out["source"] += ("; model beyond [G24v1]: effective hbar omega_p = E sqrt(2 delta(E)) from "
                          "xraydb's f1 at the resonance (dielectric = xraydb)")
    return out
