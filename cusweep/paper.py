"""The paper's Sec. V example recomputed from the formulary: `cusweep paper`.

Inputs are the paper's (Sec. V): diamond (110) with U0 = 24.9 eV, ħωp = 38 eV, d = 1.26 Å; Nb = 1.56e9,
E = 13.6 GeV, σZ = 9 µm; l = 14 µm, A = 1.27 Å, L = 1.4 mm. Beyond-paper rows use U′max = 7.5 GeV/cm,
a_TF = 0.258 Å, I = 81 eV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import constants as k
from .formulary import angular, channeling, coherence, kinematics, spectrum

INPUTS = {"potential_depth": 24.9, "plasma_energy": 38.0, "interplanar_spacing": 1.26e-8,
          "n_positrons": 1.56e9, "energy": 13.6e9, "sigma_z": 9e-4, "period": 1.4e-3,
          "amplitude": 1.27e-8, "thickness": 0.14, "max_field": 7.5e9, "thomas_fermi_radius": 0.258e-8,
          "mean_excitation_energy": 81.0}


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    paper: float | None
    computed: float
    note: str = ""
    erratum: bool = False


def rows() -> list[Row]:
    """Every quantity of the Sec. V example: paper value (None where it prints none), computed value."""
    p = INPUTS
    gamma = kinematics.lorentz_factor(p["energy"])
    nu = p["potential_depth"] / k.mc2
    l, A, L = p["period"], p["amplitude"], p["thickness"]
    q = kinematics.undulator_parameter(A, l, gamma)
    Q = kinematics.resonance_factor(q)
    q_ch = channeling.channeling_limit(gamma, p["potential_depth"])
    n = spectrum.n_periods(L, l)
    Omega = kinematics.omega_cu(l)
    g_th = kinematics.threshold_gamma(l, Q, p["plasma_energy"])
    w_m = kinematics.omega_minus_approx(Omega, p["plasma_energy"])
    w_m_exact = kinematics.omega_minus(Omega, gamma, Q, g_th)
    w_p = kinematics.omega_plus(Omega, gamma, Q, g_th)
    lam_r = kinematics.wavelength(w_m)
    lam_p = kinematics.plasma_wavelength(p["plasma_energy"])
    nb, sz = p["n_positrons"], p["sigma_z"]
    n_coh = coherence.n_coh(q, L, nb, gamma, sz, lam_r, 1.0)
    n_incoh = coherence.n_incoh(q, L, nb, gamma, sz, lam_r)
    n_soft = spectrum.soft_line_photons(n, q, l, gamma, lam_r)
    K = coherence.coherence_gain(nb, 1.0)
    delta = coherence.linewidth(lam_r, sz)
    C = channeling.bending_parameter(p["energy"], A, l, p["max_field"])
    ld0 = channeling.dechanneling_length_straight(gamma, p["interplanar_spacing"], p["thomas_fermi_radius"],
                                                  p["mean_excitation_energy"])
    ld = channeling.dechanneling_length(ld0, C)
    hw = k.hbar * w_m
    # physical counts: Eq. (12a) integrated over angle, tuned to the exact soft edge (F_R = 1: point-like)
    s_edge = angular.spectral_density(w_m_exact, q, n, Omega, gamma, 0.0)
    photons_soft = angular.photons_soft(s_edge, w_m_exact, n)
    photons_incoh = angular.photons_incoh(s_edge, nb, sz)
    photons_coh = angular.photons_coh(s_edge, nb, sz, 1.0)
    hw_exact = k.hbar * w_m_exact
    fraction = angular.energy_fraction(photons_coh, hw_exact, nb, p["energy"])
    joule = k.e_charge  # J per eV
    harmonic = angular.first_harmonic_photons(q, Q, n)
    return [
        Row("gamma", "gamma", 2.66e4, gamma),
        Row("nu", "nu = U0/mc^2", 4.87e-5, nu),
        Row("lambda_p", "lambda_p [cm]", 3.26e-6, lam_p),
        Row("q", "q", 1.5, q, "paper rounds q"),
        Row("Q", "Q = 1 + q^2/2", 2.125, Q, "paper's Q uses the rounded q = 1.5"),
        Row("q_ch", "q_ch = sqrt(2 nu gamma)", 1.62, q_ch,
            "erratum: sqrt(2 x 4.87e-5 x 2.66e4) = 1.610, not 1.62", True),
        Row("n_periods", "n = L/l", 102.0, n, "erratum: 1.4 mm / 14 um = 100, not 102", True),
        Row("gamma_th", "gamma_th = l sqrt(Q)/lambda_p", None, g_th, "gamma = 2.66e4 >> gamma_th"),
        Row("photon_energy_minus", "hbar omega_- (Eq. 13) [eV]", 8.3e3, hw,
            "erratum: the 8.3 keV line is the soft edge omega_- (the paper calls it lambda_+); "
            "2 lambda_p^2 / l with hbar omega_p = 38 eV gives 8.15 keV", True),
        Row("photon_energy_minus_exact", "hbar omega_- (Eq. 12b, exact) [eV]", None, k.hbar * w_m_exact),
        Row("photon_energy_plus", "hbar omega_+ (Eq. 12b) [eV]", None, k.hbar * w_p, "hard edge"),
        Row("lambda_r", "lambda_r = 2 lambda_p^2 / l [cm]", 1.5e-8, lam_r),
        Row("n_coh", "N_coh / b^2 (Eq. 22) [1/rad^2]", 4.6e15, n_coh,
            "a density: photons per unit theta^2 at zero angle, not a count"),
        Row("n_incoh", "N_incoh (Eq. 23) [1/rad^2]", 1.3e7, n_incoh, "a density per unit theta^2"),
        Row("n_soft", "N_ph per positron, soft line (Eq. 15) [1/rad^2]", None, n_soft,
            "a density per unit theta^2; cf. the whole first harmonic below"),
        Row("n_total_incoh", "Nb N_ph, soft line (Eq. 15) [1/rad^2]", 2.5e10, nb * n_soft,
            "erratum: Eq. (15) prints lambda_+; its first form gives lambda_- (with lambda_+ the "
            f"number would be {nb * n_soft * (lam_r / kinematics.wavelength(w_p)) ** 2:.1e})", True),
        Row("coherence_gain", "K / b^2 (Eq. 24)", None, K,
            f"erratum: Eqs. (22)/(23) give sqrt(pi)/8 Nb; the typesetting sqrt(pi/8) Nb would give "
            f"{np.sqrt(np.pi / 8) * nb:.3e}", True),
        Row("relative_linewidth", "2 dw/w_r = lambda_r/(pi sigma_Z)", 5.3e-6, 2 * delta),
        Row("energy_spread", "delta_coh hbar omega_r [eV]", 0.022, delta * hw),
        Row("natural_linewidth", "natural relative linewidth", 2e-4, 1.0 / (2.0 * n),
            "erratum: inconsistent in the paper: 41.5 eV / 8.15 keV = 5.1e-3 ~ 1/(2n); 2e-4 matches "
            "neither", True),
        Row("natural_energy_spread", "natural energy spread hbar omega_-/(2n) [eV]", 41.5, hw / (2.0 * n)),
        Row("first_harmonic", "whole first harmonic pi alpha q^2 n/Q [photons/e+]", None, harmonic,
            "all angles and frequencies: fewer than the paper's soft line 'N_ph'"),
        Row("energy_paper_coh", "N_coh(b=1) hbar omega_r [J] (read as photons)", None,
            n_coh * hw * joule, "more than the bunch carries: N_coh is not a photon count"),
        Row("energy_bunch", "bunch energy Nb E [J]", None, nb * p["energy"] * joule),
        Row("photons_soft", "photons_soft: soft line, all angles [photons/e+]", None, photons_soft,
            "Eq. (12a) over angle at the exact edge (half the sinc^2 lobe), bandwidth omega_-/n"),
        Row("photons_coh", "photons_coh / b^2: all angles [photons/bunch]", None, photons_coh,
            "F_R = 1: a transversely point-like bunch (upper bound)"),
        Row("photons_incoh", "photons_incoh: all angles [photons/bunch]", None, photons_incoh,
            "same bandwidth 2c/sigma_Z as Eq. (23)"),
        Row("energy_fraction", "energy_fraction (b=1) = photons_coh hbar w_r/(Nb E)", None, fraction,
            f"photons_coh carry {photons_coh * hw_exact * joule:.2e} J of the bunch's "
            f"{nb * p['energy'] * joule:.2f} J"),
        Row("bending_parameter", "C = 4 pi^2 E A/(U'max l^2) (beyond paper)", None, C,
            "model; U'max = 7.5 GeV/cm"),
        Row("dechanneling_length_0", "L_d(0) [cm] (KSG, beyond paper)", None, ld0, "model"),
        Row("dechanneling_length", "L_d(C) = (1-C)^2 L_d(0) [cm]", 0.14, ld,
            "paper: L <= L_D ~ 0.14 cm; the model gives L_d(C) > L"),
    ]


def table() -> str:
    """Plain-text table: quantity, paper value, computed value, ratio computed/paper, note."""
    out = ["cusweep paper: [G24v1] Sec. V example (diamond (110), 13.6 GeV, Nb = 1.56e9, sigma_Z = 9 um, "
           "l = 14 um, A = 1.27 A, L = 1.4 mm)",
           "The paper's N_ph, N_coh, N_incoh are photons per unit theta^2 at zero angle [1/rad^2] (Eq. (14) "
           "is d2N/(dw dtheta^2) at theta = 0); the photons_* rows are photon counts (Eq. (12a) over all "
           "angles).",
           f"{'quantity':<56}{'paper':>12}{'computed':>12}{'ratio':>9}  note"]
    for r in rows():
        paper = f"{r.paper:.3e}" if r.paper is not None else "—"
        ratio = f"{r.computed / r.paper:.4f}" if r.paper else "—"
        out.append(f"{r.label:<56}{paper:>12}{r.computed:>12.3e}{ratio:>9}  {r.note}")
    return "\n".join(out)
