"""Registry of every stored name: units, long_name, symbol, source, kind, and what it depends on.

One name per quantity in code, store, plots and CLI (style.md). The dependency sets decide each
variable's natural dims: a variable carries exactly the sweep dims among its dependencies, in the
sweep's dim order.
"""

from __future__ import annotations

from dataclasses import dataclass

CANONICAL_DIMS = ("period", "amplitude", "energy", "sigma_z", "bunching")
EXTRA_DIMS = ("photon_energy", "thickness", "n_positrons", "crystal")
ALL_DIMS = CANONICAL_DIMS + EXTRA_DIMS

REFERENCES = (
    "[G24v1] H. L. Gevorgyan, L. A. Gevorgian, 'Coherent X-ray crystalline undulator radiation from a "
    "FEL-modulated positron bunch at zero angle', arXiv:2412.10205 v1 (2024); "
    "[KSG13] A. V. Korol, A. V. Solov'yov, W. Greiner, Channeling and Radiation in Periodically Bent "
    "Crystals, Springer (2013); "
    "[BCK97] V. M. Biryukov, Yu. A. Chesnokov, V. I. Kotov, Crystal Channeling and its Application at "
    "High-Energy Accelerators, Springer (1997); "
    "[xraydb] xraydb, Elam-Ravel-Sieber X-ray data (2002)"
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
             "[G24v1] Eq. (13): tuned hbar omega_r = (hbar omega_p)^2 / (2 hbar Omega)"),
    Quantity("n_periods", "1", "number of CU periods on the radiating length", r"$n$",
             "[G24v1] Sec. II: n = L/l"),
    Quantity("n_soft", "1", "soft-line photons per positron", r"$N_{ph}$",
             "[G24v1] Eq. (15) with lambda_- (erratum: paper prints lambda_+)"),
    Quantity("n_coh", "1", "coherent photons per bunch", r"$N_{coh}$", "[G24v1] Eq. (22)"),
    Quantity("n_incoh", "1", "incoherent photons per bunch in the coherent bandwidth", r"$N_{incoh}$",
             "[G24v1] Eq. (23)"),
    Quantity("coherence_gain", "1", "coherent / incoherent photons", r"$K$",
             "[G24v1] Eq. (24): K = sqrt(pi) Nb b^2 / 8 (erratum: typeset like sqrt(pi/8))"),
    Quantity("linewidth_coh", "1", "relative energy spread of the coherent line", r"$\delta_{coh}$",
             "[G24v1] Sec. IV: delta_coh = lambda_r / (2 pi sigma_Z)"),
    Quantity("coherent_regime", "1", "coherent regime (lambda_r < pi sigma_Z / n)",
             r"$\lambda_r<\pi\sigma_Z/n$", "[G24v1] Sec. IV", "bool"),
    Quantity("bending_parameter", "1", "bending parameter", r"$C$",
             "model beyond [G24v1]: C = 4 pi^2 E A / (U'max l^2) [KSG13]"),
    Quantity("dechanneling_length", "m", "dechanneling length in the bent crystal", r"$L_d$",
             "model beyond [G24v1]: L_d(C) = (1-C)^2 L_d(0) [BCK97]"),
    Quantity("feasible", "1", "channeling, C < 1, above threshold, coherent and n l <= L_d",
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
    Quantity("transmission", "1", "mean photon survival in the crystal at the resonance", r"$T$",
             "model beyond [G24v1]: T = (L_a/L)(1 - exp(-L/L_a)), L_a from xraydb"),
    Quantity("effective_length", "m", "effective radiating length with dechanneling and absorption",
             r"$L_{eff}$",
             "model beyond [G24v1]: channeled fraction exp(-z/L_d), photon survival exp(-(L-z)/L_a): "
             "L_eff = L_d L_a/(L_a - L_d) (exp(-L/L_a) - exp(-L/L_d)); L_a from xraydb, L_d as "
             "dechanneling_length"),
    Quantity("optimal_thickness", "m", "crystal thickness that maximises the effective length", r"$L^*$",
             "model beyond [G24v1]: L* = L_d L_a/(L_a - L_d) ln(L_a/L_d), the maximum of effective_length "
             "over L; L_a from xraydb"),
]}

#: optional outputs that need photon attenuation lengths (xraydb tables sent to the workers)
ABSORPTION_OUTPUTS = ("transmission", "effective_length", "optimal_thickness")
#: optional outputs: the feasibility margins (cusweep.feasibility), evaluated by maps and best on demand
MARGIN_OUTPUTS = ("channeling_ratio", "threshold_ratio", "coherence_ratio", "dechanneling_ratio")

#: the variables of the store contract (absorption outputs and margins are optional)
CONTRACT_OUTPUTS = tuple(n for n in VARIABLES if n not in ABSORPTION_OUTPUTS + MARGIN_OUTPUTS)
OUTPUTS = tuple(VARIABLES)


def dependencies(name: str, *, tuned: bool, length_model: str) -> frozenset[str]:
    """The inputs (dim names) a variable depends on, for a tuned/detuned sweep and a length model."""
    lam_r = frozenset({"period", "crystal"}) if tuned else frozenset({"photon_energy"})
    length = frozenset({"thickness"}) | (_K if length_model == "dechanneling" else frozenset())
    n = length | {"period"}
    yields = _K | n | {"sigma_z", "n_positrons"} | lam_r
    regime = lam_r | {"sigma_z"} | n
    table = {
        "gamma": {"energy"},
        "q": {"period", "amplitude", "energy"},
        "q_ch": {"energy", "crystal"},
        "channeling": _K,
        "gamma_th": _K,
        "above_threshold": _K,
        "photon_energy_minus": _K,
        "photon_energy_plus": _K,
        "resonance_energy": lam_r,
        "n_periods": n,
        "n_soft": _K | n,
        "n_coh": yields | {"bunching"},
        "n_incoh": yields,
        "coherence_gain": {"n_positrons", "bunching"} if tuned else yields | {"bunching"},
        "linewidth_coh": lam_r | {"sigma_z"},
        "coherent_regime": regime,
        "bending_parameter": _K,
        "dechanneling_length": _K,
        "feasible": _K | regime,
        "channeling_ratio": _K,
        "threshold_ratio": _K,
        "coherence_ratio": regime,
        "dechanneling_ratio": _K | length,
        "transmission": lam_r | length | {"crystal"},
        "effective_length": lam_r | _K | {"thickness"},
        "optimal_thickness": lam_r | _K,
    }
    return frozenset(table[name])


def natural_dims(name: str, dims: tuple[str, ...], *, tuned: bool, length_model: str) -> tuple[str, ...]:
    """The dims a variable is stored on: the sweep's dims it depends on, in the sweep's order."""
    deps = dependencies(name, tuned=tuned, length_model=length_model)
    return tuple(d for d in dims if d in deps)


def attrs(q: Quantity) -> dict[str, str]:
    """The attrs stored with a coordinate or variable (JSON-safe strings)."""
    return {"units": q.units, "long_name": q.long_name, "symbol": q.symbol, "source": q.source}


#: sources of the variables whose formula differs when the sweep gives the FEL photon energy (detuned)
_DETUNED_SOURCES = {
    "resonance_energy": "the sweep's FEL photon energy: the bunch is modulated at omega_r ([G24v1] Eq. (20))",
    "n_coh": "[G24v1] Eqs. (14), (20), (21), detuned: Eq. (14) at omega_r x (b^2/4) Nb^2 sqrt(pi) c/sigma_Z "
    "(equals Eq. (22) at omega_r = omega_-)",
    "n_incoh": "[G24v1] Eq. (23) as written, at lambda_r = 2 pi c/omega_r of the FEL photon",
    "coherence_gain": "n_coh / n_incoh ([G24v1] Eqs. (14), (21), (23); equals Eq. (24) only at "
    "omega_r = omega_-)",
}
#: variables computed on the radiating length L (= min(thickness, L_d) with length_model = "dechanneling")
_ON_LENGTH = ("n_periods", "n_soft", "n_coh", "n_incoh", "coherence_gain", "coherent_regime", "feasible",
              "transmission", "coherence_ratio", "dechanneling_ratio")


def variable_attrs(name: str, *, tuned: bool, length_model: str, dechanneling_source: str) -> dict[str, str]:
    """The attrs of a stored variable for this sweep: the source names the formula actually used (tuned or
    detuned, the length model, the dechanneling model)."""
    out = attrs(VARIABLES[name])
    if not tuned and name in _DETUNED_SOURCES:
        out["source"] = _DETUNED_SOURCES[name]
    if name == "dechanneling_length":
        out["source"] = dechanneling_source
    if length_model == "dechanneling" and name in _ON_LENGTH and not (tuned and name == "coherence_gain"):
        out["source"] += "; radiating length L = min(thickness, L_d(C)) (length_model = dechanneling)"
    return out
