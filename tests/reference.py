"""An independent scalar re-derivation of every stored variable, written from ../shared/physics.md with
the math module only (no cusweep.formulary), to check stores point by point."""

import math

C = 2.99792458e10          # cm/s
HBAR = 6.582119569e-16     # eV s
ALPHA = 7.2973525693e-3
MC2 = 0.51099895e6         # eV
R0 = 2.8179403262e-13      # cm


def point(period, amplitude, energy, sigma_z, bunching, *, thickness, n_positrons, crystal,
          photon_energy=None, length_model="thickness", dechanneling_model="ksg"):
    """Store units in (m, eV); returns {variable: value} in store units."""
    l, A, sz, Lth = period * 100, amplitude * 100, sigma_z * 100, thickness * 100
    U0, hwp = crystal.potential_depth, crystal.plasma_energy
    d, Umax = crystal.interplanar_spacing * 100, crystal.max_field / 100
    aTF, I = crystal.thomas_fermi_radius * 100, crystal.mean_excitation_energy
    g = energy / MC2
    q = 2 * math.pi * A * g / l
    Q = 1 + q * q / 2
    qch = math.sqrt(2 * U0 / MC2 * g)
    Om = 2 * math.pi * C / l
    wp = hwp / HBAR
    lam_p = 2 * math.pi * C / wp
    gth = l * math.sqrt(Q) / lam_p
    if g > gth:
        r = math.sqrt(1 - (gth / g) ** 2)
        w_minus, w_plus = Om * g * g / Q * (1 - r), Om * g * g / Q * (1 + r)
    else:
        w_minus = w_plus = math.nan
    Cb = 4 * math.pi**2 * energy * A / (Umax * l * l)
    pre = 256 / (9 * math.pi**2)
    if dechanneling_model == "ksg":
        Ld0 = pre * aTF / R0 * d / (math.log(math.sqrt(2 * g) * MC2 / I) - 23 / 24) * g
    else:
        pv = energy * (1 - 1 / g**2)
        Ld0 = pre * pv / (math.log(2 * MC2 * g / I) - 1) * aTF * d / (R0 * MC2)
    Ld = (1 - Cb) ** 2 * Ld0 if Cb < 1 else 0.0
    L = Lth if length_model == "thickness" else min(Lth, Ld)
    n = L / l
    wm_a = wp * wp / (2 * Om)
    wp_a = 2 * Om * g * g / Q
    lam_m = 2 * math.pi * C / wm_a
    n_soft = math.pi * ALPHA * n * (q * l / (2 * g * lam_m)) ** 2
    Nb, b = n_positrons, bunching
    if photon_energy is None:
        wr, lam_r = wm_a, lam_m
        n_coh = math.sqrt(math.pi) * ALPHA / (2 * sz * lam_r) * (q * L * Nb / (4 * g)) ** 2 * b * b
        n_incoh = ALPHA * Nb / (sz * lam_r) * (q * L / (2 * g)) ** 2
    else:
        wr = photon_energy / HBAR
        lam_r = 2 * math.pi * C / wr
        z = math.pi * n * (1 - wm_a / wr) * (1 - wr / wp_a)
        sinc2 = 1.0 if z == 0 else (math.sin(z) / z) ** 2
        dn = math.pi * ALPHA / (2 * Q) * (q * n) ** 2 * wr / (Om * wp_a) * sinc2
        n_coh = dn * b * b / 4 * Nb * Nb * math.sqrt(math.pi) * C / sz
        n_incoh = ALPHA * Nb / (sz * lam_r) * (q * L / (2 * g)) ** 2  # Eq. (23) as written, at lambda_r
    coherent = lam_r < math.pi * sz / n if n > 0 else True
    return {
        "gamma": g, "q": q, "q_ch": qch, "channeling": q < qch, "gamma_th": gth, "above_threshold": g > gth,
        "photon_energy_minus": HBAR * w_minus, "photon_energy_plus": HBAR * w_plus,
        "resonance_energy": HBAR * wr, "n_periods": n, "n_soft": n_soft, "n_coh": n_coh, "n_incoh": n_incoh,
        "coherence_gain": math.sqrt(math.pi) / 8 * Nb * b * b if photon_energy is None else n_coh / n_incoh,
        "linewidth_coh": lam_r / (2 * math.pi * sz),
        "coherent_regime": coherent, "bending_parameter": Cb, "dechanneling_length": Ld / 100,
        "feasible": (q < qch) and Cb < 1 and g > gth and coherent and (L <= Ld),
    }
