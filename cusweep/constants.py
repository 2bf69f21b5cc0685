"""Physical constants in CGS (the paper's units), CODATA 2018 exact or recommended values.

The formulary works in CGS internally (cm, s, erg, and eV for energies written as ħω);
conversion to the store's SI lengths happens only at the model boundary.
"""

CODATA_YEAR = 2018

#: speed of light c [cm/s] (exact)
c = 2.99792458e10
#: reduced Planck constant ħ [eV·s]
hbar = 6.582119569e-16
#: ħc [eV·cm], derived from ħ and c so that every conversion is consistent to rounding
hbar_c = hbar * c
#: fine-structure constant α
alpha = 7.2973525693e-3
#: electron (positron) rest energy mc² [eV]
mc2 = 0.51099895000e6
#: classical electron radius r0 = e²/mc² [cm]
r0 = 2.8179403262e-13
#: elementary charge [C] (exact, SI: for bunch charge -> number of positrons)
e_charge = 1.602176634e-19
#: centimetres per metre (store lengths are metres)
CM_PER_M = 100.0
