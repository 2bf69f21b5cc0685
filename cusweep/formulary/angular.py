r"""Photon counts: Eq. (12a) of [G24v1] integrated over the emission angle.

The paper's Eq. (14) is d²N/(dω d(ϑ²)) at ϑ = 0, a density per unit ω *and per unit ϑ²*; Eqs. (15),
(22), (23) multiply it by a bandwidth only, so they are photons per unit ϑ² at zero angle. The functions
here integrate Eq. (12a) over ϑ² and φ (its polarisation bracket at the small-angle value 1, the
definition used throughout: with the full bracket the small-angle form's ϑ² integral diverges), with
the transverse form factor F_R of Eq. (18) for the coherent count, which gives photon numbers.

With x = a − (πω/2Ω)ϑ², a = x(ω, 0):

.. math::
    S(\omega) = \int_0^\infty d(\vartheta^2)\int_0^{2\pi}d\varphi\,
    \frac{d^3N}{d\omega\,d\vartheta^2\,d\varphi}
    = \frac{\alpha n q^2}{2\Omega\gamma^2}\,G(na),\qquad
    G(A) = \int_{-\infty}^{A}\frac{\sin^2u}{u^2}du = \frac{\pi}{2} + \mathrm{Si}(2A) - \frac{\sin^2A}{A}

and with F_R = exp(−(ωσRϑ/c)²) inside the ϑ² integral G becomes
H(A, μ) = ∫_{−∞}^{A} sin²u/u² e^{−μ(A−u)} du, μ = 2ΩωσR²/(πnc²), evaluated in closed form through the
exponential integral of complex argument (scipy.special.exp1), or by Gauss–Laguerre quadrature where
μ is large (the integrand is then smooth on the scale of the damping).

Angular frequencies in rad/s, lengths in cm, energies in eV (CGS inside). Never imports dask/xarray/zarr.
"""

import numpy as np

from .. import constants as k
from ._util import asfloat, out

SOURCE_S = (
    "[G24v1] Eq. (12a) integrated over theta^2 and phi (polarisation bracket at its small-angle value 1): "
    "S(omega) = alpha n q^2 G(n x(omega,0)) / (2 Omega gamma^2), G(A) = pi/2 + Si(2A) - sin^2 A / A"
)
#: the transverse form factor is absent: F_R = 1
POINT_LIKE = "transversely point-like bunch (upper bound)"

#: μ at and above which H(A, μ) is computed by Gauss–Laguerre quadrature instead of the closed form
MU_QUADRATURE = 50.0
#: μ below which the damping is negligible (H = G to 1e-13)
MU_NEGLIGIBLE = 1e-15
#: |A| below which H(A, μ) is its first-order expansion around A = 0
A_NEGLIGIBLE = 1e-9
_LAGUERRE_X, _LAGUERRE_W = np.polynomial.laguerre.laggauss(32)
#: |z| at and above which e^z E1(z) is summed from its asymptotic series (error below 1e-16 there)
_ASYMPTOTIC = 30.0
_ASYMPTOTIC_TERMS = 30


def sinc2_integral(A):
    r"""Integral of the diffraction sine squared up to A.

    .. math:: G(A) = \int_{-\infty}^{A}\frac{\sin^2u}{u^2}du
              = \frac{\pi}{2} + \mathrm{Si}(2A) - \frac{\sin^2A}{A}

    Parameters
    ----------
    A : array_like
        Upper limit [1].

    Returns
    -------
    G : ndarray or float
        [1]; G(−∞) = 0, G(0) = π/2 (half the lobe), G(∞) = π. NaN in, NaN out.

    Source: closed form through the sine integral Si (scipy.special.sici).
    Validity: any real A.

    >>> f"{sinc2_integral(0.0):.6f}"
    '1.570796'
    """
    from scipy import special  # imported on first use: scipy.special costs ~0.3 s at import

    A = asfloat(A)
    si, _ = special.sici(2.0 * A)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sin(A)
        tail = np.where(A == 0.0, 0.0, s * s / np.where(A == 0.0, 1.0, A))
    return out(0.5 * np.pi + si - tail)


def _e1_scaled(z):
    """e^z E1(z) for complex z off the negative real axis (principal branch), bounded for |z| → ∞."""
    from scipy import special

    z = np.asarray(z, dtype=np.complex128)
    res = np.empty_like(z)
    big = np.abs(z) >= _ASYMPTOTIC
    small = ~big
    if small.any():
        zs = z[small]
        res[small] = np.exp(zs) * special.exp1(zs)
    if big.any():
        zb = z[big]
        term = 1.0 / zb
        acc = term.copy()
        for j in range(1, _ASYMPTOTIC_TERMS):
            term = term * (-j / zb)
            acc = acc + term
        res[big] = acc
    return res


def _ei_scaled_cut(x):
    """e^{−x} E1(−x − i0) = −e^{−x} Ei(x) + iπ e^{−x} for x > 0 (the lower lip of the cut)."""
    from scipy import special

    x = np.asarray(x, dtype=np.float64)
    res = np.empty(x.shape, dtype=np.complex128)
    big = x >= _ASYMPTOTIC
    small = ~big
    if small.any():
        xs = x[small]
        res[small] = -np.exp(-xs) * special.expi(xs) + 1j * np.pi * np.exp(-xs)
    if big.any():
        xb = x[big]
        term = 1.0 / xb
        acc = term.copy()
        for j in range(1, _ASYMPTOTIC_TERMS):
            term = term * (j / xb)
            acc = acc + term
        res[big] = -acc
    return res


def _damped_closed(A, mu):
    """H(A, μ) for 0 < μ, by the exponential integral (1-D arrays of equal length)."""
    with np.errstate(all="ignore"):
        return _damped_closed_unguarded(A, mu)


def _damped_closed_unguarded(A, mu):
    res = np.empty(A.shape, dtype=np.float64)
    zero = A == 0.0
    pos = A > 0.0
    neg = A < 0.0
    if zero.any():
        m = mu[zero]
        res[zero] = np.arctan2(2.0, m) - 0.25 * m * np.log1p(4.0 / (m * m))
    # H = Re[(1 − iμ/2) W] − sin²A/A with W = ∫_0^2 e^{iAk}/(μ + ik) dk (the Fourier form of sinc²)
    if pos.any():
        a, m = A[pos], mu[pos]
        W = -1j * (_ei_scaled_cut(a * m) - np.exp(2j * a) * _e1_scaled(-a * m - 2j * a))
        s = np.sin(a)
        res[pos] = np.real((1.0 - 0.5j * m) * W) - s * s / a
    if neg.any():
        b, m = -A[neg], mu[neg]
        W = -1j * (_e1_scaled(b * m + 0j) - np.exp(-2j * b) * _e1_scaled(b * m + 2j * b))
        s = np.sin(b)
        res[neg] = np.real((1.0 - 0.5j * m) * W) + s * s / b
    return res


def _damped_quadrature(A, mu):
    """H(A, μ) = (1/μ) ∫_0^∞ sinc²(A − v/μ) e^{−v} dv by 32-point Gauss–Laguerre (large μ: the nodes span
    less than 2.4 in u, where sinc² is a polynomial of degree 63 to rounding)."""
    u = A[:, None] - _LAGUERRE_X[None, :] / mu[:, None]
    s = np.sin(u)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (s * s) / (u * u)
    f[u == 0.0] = 1.0
    return (f @ _LAGUERRE_W) / mu


def sinc2_integral_damped(A, mu):
    r"""Integral of the diffraction sine squared up to A, damped exponentially below A.

    .. math:: H(A, \mu) = \int_{-\infty}^{A}\frac{\sin^2u}{u^2}e^{-\mu(A-u)}du
              = \mathrm{Re}\left[\left(1-\frac{i\mu}{2}\right)\int_0^2\frac{e^{iAk}dk}{\mu+ik}\right]
                - \frac{\sin^2A}{A}

    (the k integral in closed form through E1 of complex argument); H(0, μ) = arctan(2/μ) −
    (μ/4) ln(1 + 4/μ²), H(A, 0) = G(A) (:func:`sinc2_integral`).

    Parameters
    ----------
    A : array_like
        Upper limit [1].
    mu : array_like
        Damping rate μ ≥ 0 [1].

    Returns
    -------
    H : ndarray or float
        [1]; 0 < H ≤ G(A); ≈ sinc²(A)/μ for μ ≫ 1. NaN where an input is NaN.

    Source: closed form (scipy.special.exp1, expi) for μ < 50, 32-point Gauss–Laguerre quadrature of
    (1/μ)∫_0^∞ sinc²(A − v/μ)e^{−v}dv for μ ≥ 50; both checked against adaptive quadrature to 1e-9.
    Validity: any real A, μ ≥ 0.

    >>> f"{sinc2_integral_damped(0.0, 1.0):.6f}"
    '0.704789'
    """
    A, mu = np.broadcast_arrays(asfloat(A), asfloat(mu))
    shape = A.shape
    A, mu = A.ravel(), mu.ravel()
    res = np.full(A.shape, np.nan)
    ok = np.isfinite(A) & np.isfinite(mu) & (mu >= 0.0)
    # μ below 1e-15 changes H by less than μ(1 + ln(2/μ)) < 1e-13 relative: G itself (and no 0 × log 0)
    undamped = ok & (mu < MU_NEGLIGIBLE)
    if undamped.any():
        res[undamped] = sinc2_integral(A[undamped])
    infinite = np.isfinite(A) & (mu == np.inf)  # n = 0: nothing radiates
    res[infinite] = 0.0
    quad = ok & (mu >= MU_QUADRATURE)
    if quad.any():
        res[quad] = _damped_quadrature(A[quad], mu[quad])
    closed = ok & (mu >= MU_NEGLIGIBLE) & (mu < MU_QUADRATURE)
    # |A| below 1e-9: H(A) = H(0) + A (1 − μ H(0)) + O(A²) (from H' = sinc²A − μH), exact to 1e-18; the
    # closed form would lose digits to ln|A| there
    tiny = closed & (np.abs(A) < A_NEGLIGIBLE)
    if tiny.any():
        h0 = _damped_closed(np.zeros(int(tiny.sum())), mu[tiny])
        res[tiny] = h0 + A[tiny] * (1.0 - mu[tiny] * h0)
    closed &= ~tiny
    if closed.any():
        res[closed] = _damped_closed(A[closed], mu[closed])
    return out(res.reshape(shape))


def edge_argument(omega, omega_cu, gamma, Q, plasma_energy):
    r"""The argument x(ω, ϑ = 0) of Eq. (12a): zero at the exact edges ω∓ of Eq. (12b).

    .. math:: a = \frac{\pi Q\omega}{2\Omega\gamma^2}\left(1-\frac{\omega_-}{\omega}\right)
              \left(\frac{\omega_+}{\omega}-1\right)
              = \pi\left(1 - \frac{Q\omega}{2\Omega\gamma^2} - \frac{\omega_p^2}{2\Omega\omega}\right)

    (the same quadratic, written without ω∓: defined also below threshold, where it is negative).

    Parameters
    ----------
    omega : array_like
        ω [rad/s].
    omega_cu : array_like
        Ω [rad/s].
    gamma, Q : array_like
        γ, Q [1].
    plasma_energy : array_like
        ħωp [eV].

    Returns
    -------
    a : ndarray or float
        [1]; positive between the edges (radiation on a cone), negative outside.

    Source: [G24v1] Eq. (12a), with ω−ω+ = ωp²γ²/Q and ω− + ω+ = 2Ωγ²/Q (Eq. 12b).
    Validity: as Eq. (12a).

    >>> f"{edge_argument(2.0, 1.0, 1.0, 1.0, 0.0):.6f}"
    '0.000000'
    """
    omega = asfloat(omega)
    Om = asfloat(omega_cu)
    gamma = asfloat(gamma)
    wp = asfloat(plasma_energy) / k.hbar
    return out(np.pi * (1.0 - asfloat(Q) * omega / (2.0 * Om * gamma * gamma) - wp * wp / (2.0 * Om * omega)))


def damping(omega, omega_cu, n, sigma_r):
    r"""Rate μ of the transverse form factor F_R in the variable n·x of Eq. (12a).

    F_R = exp(−(ωσRϑ/c)²) with ϑ² = (a − x)·2Ω/(πω) is exp(−μ(na − nx)) with

    .. math:: \mu = \frac{2\Omega\omega\sigma_R^2}{\pi n c^2}

    Parameters
    ----------
    omega, omega_cu : array_like
        ω, Ω [rad/s].
    n : array_like
        Number of periods [1].
    sigma_r : array_like
        rms transverse bunch size σR [cm] (0: point-like bunch, μ = 0).

    Returns
    -------
    mu : ndarray or float
        [1].

    Source: [G24v1] Eq. (18) (sin ϑ ≈ ϑ) in the variable of Eq. (12a).
    Validity: Gaussian transverse profile, ϑ ≪ 1.

    >>> damping(1.0, 1.0, 1.0, 0.0)
    0.0
    """
    sr = asfloat(sigma_r)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = 2.0 * asfloat(omega_cu) * asfloat(omega) * sr * sr / (np.pi * asfloat(n) * k.c * k.c)
    # σR = 0: no damping, also at n = 0 (NaN only where ω is NaN)
    return out(np.where(sr == 0.0, 0.0 * asfloat(omega), mu))


def angular_prefactor(q, n, omega_cu, gamma):
    r"""S(ω)/G: the factor of the angle-integrated spectrum in front of the sinc² integral.

    .. math:: \frac{\alpha n q^2}{2\Omega\gamma^2}

    Parameters
    ----------
    q, n : array_like
        Undulator parameter, number of periods [1].
    omega_cu : array_like
        Ω [rad/s].
    gamma : array_like
        γ [1].

    Returns
    -------
    prefactor : ndarray or float
        [s/rad] per positron.

    Source: [G24v1] Eq. (12a): παω(q/2Ωγ)² × 2Ω/(πω) × n.
    Validity: as Eq. (12a).

    >>> f"{angular_prefactor(1.0, 1.0, 1.0, 1.0) / k.alpha:.3f}"
    '0.500'
    """
    q = asfloat(q)
    gamma = asfloat(gamma)
    return out(k.alpha * asfloat(n) * q * q / (2.0 * asfloat(omega_cu) * gamma * gamma))


def spectral_density(omega, q, n, omega_cu, gamma, edge, sigma_r=0.0):
    r"""Photons per positron per unit ω, integrated over the emission angle.

    .. math:: S_R(\omega) = \frac{\alpha n q^2}{2\Omega\gamma^2}\,H(na, \mu),\qquad
              S(\omega) = S_R|_{\sigma_R=0} = \frac{\alpha n q^2}{2\Omega\gamma^2}\,G(na)

    Parameters
    ----------
    omega : array_like
        ω [rad/s].
    q, n : array_like
        [1].
    omega_cu : array_like
        Ω [rad/s].
    gamma : array_like
        γ [1].
    edge : array_like
        a = x(ω, 0) of :func:`edge_argument` (0 at the exact soft edge) [1].
    sigma_r : array_like
        σR [cm]; 0 (default): no transverse form factor.

    Returns
    -------
    S : ndarray or float
        [s/rad] per positron (with σR > 0: the single-positron spectrum weighted by F_R, which is what
        the coherent sum of Eq. (16) integrates).

    Source: [G24v1] Eqs. (12a), (18).
    Validity: bracket of Eq. (12a) at its small-angle value, first harmonic, n ≫ 1.

    >>> s = spectral_density(2.0, 1.0, 10.0, 1.0, 1.0, 0.0)
    >>> f"{s / (k.alpha * 10 / 2):.6f}"
    '1.570796'
    """
    A = asfloat(n) * asfloat(edge)
    mu = damping(omega, omega_cu, n, sigma_r)
    return out(angular_prefactor(q, n, omega_cu, gamma) * asfloat(sinc2_integral_damped(A, mu)))


def first_harmonic_photons(q, Q, n):
    r"""Approximate photons per positron in the whole first harmonic (all angles, all ω).

    .. math:: N_1 \approx \pi\alpha q^2 n / Q

    Source: [G24v1] Eq. (12a) integrated over ω and angle (upper bound used to check the counts).
    Validity: n ≫ 1.

    >>> f"{first_harmonic_photons(1.0, 1.0, 1.0) / k.alpha:.4f}"
    '3.1416'
    """
    q = asfloat(q)
    return out(np.pi * k.alpha * q * q * asfloat(n) / asfloat(Q))


def photons_soft(s_minus, omega_minus, n):
    r"""Soft-line photons per positron in the paper's bandwidth ω−/n (Eq. 15's), over all angles.

    .. math:: N_{soft} = S(\omega_-)\,\omega_-/n

    Parameters
    ----------
    s_minus : array_like
        S(ω−) [s/rad].
    omega_minus : array_like
        Exact ω− [rad/s].
    n : array_like
        [1].

    Returns
    -------
    photons_soft : ndarray or float
        [1] per positron; 0 where n = 0 (no radiating length).

    Source: [G24v1] Eq. (12a) integrated over angle, bandwidth of Eq. (15).
    Validity: as Eq. (12a); n ≤ L_d/l.

    >>> photons_soft(2.0, 3.0, 6.0)
    1.0
    """
    s_minus, n = asfloat(s_minus), asfloat(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        count = s_minus * asfloat(omega_minus) / n
    # no radiating length (n = 0: S = 0 too): no photons; NaN stays NaN
    given = s_minus * asfloat(omega_minus)
    return out(np.where((n == 0) & ~np.isnan(given), 0.0, count))


def photons_incoh(s_r, n_positrons, sigma_z):
    r"""Incoherent photons per bunch in the coherent bandwidth, over all angles.

    .. math:: N_{incoh} = N_b\,S(\omega_r)\,2c/\sigma_Z

    Parameters
    ----------
    s_r : array_like
        S(ωr) [s/rad].
    n_positrons : array_like
        Nb [1].
    sigma_z : array_like
        σZ [cm].

    Returns
    -------
    photons_incoh : ndarray or float
        [1] per bunch.

    Source: [G24v1] Eq. (23)'s bandwidth with Eq. (12a) integrated over angle.
    Validity: coherent regime.

    >>> f"{photons_incoh(1.0, 1.0, 2.0 * k.c):.1f}"
    '1.0'
    """
    return out(asfloat(n_positrons) * asfloat(s_r) * (2.0 * k.c) / asfloat(sigma_z))


def photons_coh(s_r_form, n_positrons, sigma_z, bunching):
    r"""Coherent photons per bunch, over all angles, with the transverse form factor.

    .. math:: N_{coh} = N_b^2\,\frac{b^2}{4}\,\sqrt{\pi}\,\frac{c}{\sigma_Z}\,S_R(\omega_r)

    Parameters
    ----------
    s_r_form : array_like
        S_R(ωr): the angle-integrated spectrum with F_R inside [s/rad].
    n_positrons, sigma_z, bunching : array_like
        Nb [1], σZ [cm], b [1].

    Returns
    -------
    photons_coh : ndarray or float
        [1] per bunch.

    Source: [G24v1] Eqs. (12a), (16), (18), (20), (21) integrated over ω and angle.
    Validity: coherent regime; modulation phase-coherent over σZ (seeded FEL).

    >>> photons_coh(0.0, 1e9, 1e-3, 1.0)
    0.0
    """
    nb = asfloat(n_positrons)
    b = asfloat(bunching)
    # grouped so that only the last product spans the b axis (one pass over the largest array)
    return out((asfloat(s_r_form) * (0.25 * np.sqrt(np.pi) * k.c) * (nb * nb) / asfloat(sigma_z)) * (b * b))


def energy_fraction(photons, photon_energy, n_positrons, beam_energy):
    r"""Share of the bunch energy carried away by the photons.

    .. math:: f = N_{coh}\,\hbar\omega_r / (N_b E)

    Parameters
    ----------
    photons : array_like
        Photons per bunch [1].
    photon_energy : array_like
        ħωr [eV].
    n_positrons : array_like
        Nb [1].
    beam_energy : array_like
        E [eV].

    Returns
    -------
    f : ndarray or float
        [1]; physical only below 1.

    Source: energy conservation (cusweep physics notes).
    Validity: any.

    >>> energy_fraction(10.0, 1.0, 10.0, 2.0)
    0.5
    """
    return out(asfloat(photons) * (asfloat(photon_energy) / (asfloat(n_positrons) * asfloat(beam_energy))))
