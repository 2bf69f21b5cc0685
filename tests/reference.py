"""An independent scalar re-derivation of every stored variable, written from ../shared/physics.md with
the math module and scipy only (no cusweep.formulary), to check stores point by point."""

import math

from scipy import integrate, special

C = 2.99792458e10          # cm/s
HBAR = 6.582119569e-16     # eV s
ALPHA = 7.2973525693e-3
MC2 = 0.51099895e6         # eV
R0 = 2.8179403262e-13      # cm


def sinc2_up_to(A):
    """∫_{-inf}^{A} sin²u/u² du = π/2 + Si(2A) − sin²A/A (physics.md, last section)."""
    if A == 0:
        return math.pi / 2
    return math.pi / 2 + float(special.sici(2 * A)[0]) - math.sin(A) ** 2 / A


def sinc2_damped(A, mu):
    """∫_{-inf}^{A} sin²u/u² exp(−μ(A−u)) du by adaptive quadrature (t = A − u ≥ 0); the oscillating tail
    beyond T is split into its smooth part and Fourier parts (scipy's QAWF)."""
    if mu == 0:
        return sinc2_up_to(A)

    def f(t):
        u = A - t
        return (1.0 if u == 0 else (math.sin(u) / u) ** 2) * math.exp(-mu * t)

    width = min(60.0, 60.0 / mu)
    T = max(A, 0.0) + width + 10.0
    points = sorted({p for p in (max(A, 0.0), max(A, 0.0) + width, width, 1.0 / mu) if 0 < p < T})
    body = integrate.quad(f, 0.0, T, points=points or None, limit=5000, epsabs=0, epsrel=1e-12)[0]

    def g(t):
        return math.exp(-mu * t) / (2 * (t - A) ** 2)

    smooth = integrate.quad(g, T, math.inf, epsabs=0, epsrel=1e-12)[0]
    cos_part = integrate.quad(g, T, math.inf, weight="cos", wvar=2.0)[0]
    sin_part = integrate.quad(g, T, math.inf, weight="sin", wvar=2.0)[0]
    return body + smooth - math.cos(2 * A) * cos_part - math.sin(2 * A) * sin_part


def point(period, amplitude, energy, sigma_z, bunching, *, thickness, n_positrons, crystal,
          photon_energy=None, length_model="thickness", dechanneling_model="ksg", sigma_r=None):
    """Store units in (m, eV); returns {variable: value} in store units (Python floats and bools)."""
    period, amplitude, energy, sigma_z, bunching = map(float, (period, amplitude, energy, sigma_z, bunching))
    thickness, n_positrons = float(thickness), float(n_positrons)
    photon_energy = None if photon_energy is None else float(photon_energy)
    sigma_r = None if sigma_r is None else float(sigma_r)
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
    lam_m = 2 * math.pi * C / wm_a
    n_soft = math.pi * ALPHA * n * (q * l / (2 * g * lam_m)) ** 2   # Eq. (15), Eq. (13) edges
    Nb, b = n_positrons, bunching
    # the resonance: tuned = the exact soft edge of Eq. (12b); detuned = the FEL photon
    wr = w_minus if photon_energy is None else photon_energy / HBAR
    lam_r = 2 * math.pi * C / wr
    # Eq. (14) with the exact edges at omega_r (sinc = 1 at the tuned edge)
    z = math.pi * n * (1 - w_minus / wr) * (1 - wr / w_plus)
    sinc2 = 1.0 if z == 0 else (math.sin(z) / z) ** 2
    dn = math.pi * ALPHA / (2 * Q) * (q * n) ** 2 * wr / (Om * w_plus) * sinc2
    n_coh = dn * b * b / 4 * Nb * Nb * math.sqrt(math.pi) * C / sz
    n_incoh = Nb * dn * 2 * C / sz
    # photon counts: Eq. (12a) integrated over theta^2 and phi; x(omega, 0) from the unfactored quadratic
    # (Vieta: omega_- + omega_+ = 2 Omega g^2/Q, omega_- omega_+ = omega_p^2 g^2/Q); exactly 0 when tuned

    def x0(w):
        total, product = 2 * Om * g * g / Q, wp * wp * g * g / Q
        return math.pi * Q * w / (2 * Om * g * g) * (total / w - 1 - product / w**2)

    def S(w, a, sr=0.0):
        if n == 0:
            return 0.0  # no radiating length (length_model = dechanneling with C >= 1)
        mu = 2 * Om * w * (sr * 100) ** 2 / (math.pi * n * C * C) if sr else 0.0
        return ALPHA * n * q * q / (2 * Om * g * g) * sinc2_damped(n * a, mu)

    a_r = 0.0 if photon_energy is None else x0(wr)
    if math.isnan(w_minus):
        photons_soft = math.nan  # no edge
    elif n == 0:
        photons_soft = 0.0  # no radiating length, no photons
    else:
        photons_soft = S(w_minus, 0.0) * w_minus / n
    if math.isnan(wr):
        photons_incoh = photons_coh = math.nan
    else:
        photons_incoh = Nb * S(wr, a_r) * 2 * C / sz
        photons_coh = Nb * Nb * b * b / 4 * math.sqrt(math.pi) * C / sz * S(wr, a_r, sigma_r or 0.0)
    energy_fraction = photons_coh * HBAR * wr / (Nb * energy)
    coherent = lam_r < math.pi * sz / n if n > 0 else True
    return {
        "gamma": g, "q": q, "q_ch": qch, "channeling": q < qch, "gamma_th": gth, "above_threshold": g > gth,
        "photon_energy_minus": HBAR * w_minus, "photon_energy_plus": HBAR * w_plus,
        "resonance_energy": HBAR * wr, "n_periods": n, "n_soft": n_soft, "n_coh": n_coh, "n_incoh": n_incoh,
        "coherence_gain": math.sqrt(math.pi) / 8 * Nb * b * b,
        "photons_soft": photons_soft, "photons_coh": photons_coh, "photons_incoh": photons_incoh,
        "energy_fraction": energy_fraction,
        "linewidth_coh": lam_r / (2 * math.pi * sz),
        "coherent_regime": coherent, "bending_parameter": Cb, "dechanneling_length": Ld / 100,
        "feasible": bool((q < qch) and Cb < 1 and g > gth and coherent and (L <= Ld) and energy_fraction < 1),
    }
