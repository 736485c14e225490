"""What a viewer sees at 1:1: the contrast-masking model behind the comparison tolerances.

The comparison engine allows every slice the change a viewer could see plus the
change benign noise could cause (:mod:`harness.comparing.tolerance`).  This
module holds the first part: one model, its constants and where they come from,
so that the measuring side (``blockiness`` is expressed in its units) and the
comparing side read the same numbers.

**The visibility line** (the project's definition of "visible"): two renders with
fresh +-1 LSB jitter differ by about 1.4 LSB RMS and must pass; a change is a
regression where some 32-px window changes by 3 LSB RMS or more
(:data:`VISIBLE_LSB`, :data:`INVISIBLE_LSB`).

**Amplitude changes (contrast masking).**  For a band's RMS amplitude ``A``
(``sqrt`` of its power), a channel's RMS contrast or a mean chroma, a change
``dA`` is visible when::

    |dA| > T(A) = T0 * max(1, A / A0) ** W          T0 = 0.5, A0 = 8 (LSB), W = 0.7

Below the knee ``A0`` the threshold is absolute; above it the content *masks*
the change and the threshold grows as a power of the masker amplitude with
exponent ``W = 0.7``: the slope of threshold against masker contrast that Legge
& Foley measured for a masker at the signal's own frequency (G. E. Legge and
J. M. Foley, "Contrast masking in human vision", JOSA 70(12):1458-1471, 1980:
0.6-0.7), and the exponent of Watson's DCT masking rule ``m = max(t, |c|^w t^(1-w))``
with ``w = 0.7`` (A. B. Watson, "DCTune: a technique for visual optimization of
DCT quantization matrices", SID Digest 24:946-949, 1993).  An exponent below 1 is
what a flat relative tolerance gets wrong: the *relative* threshold ``T(A)/A``
falls as the texture gets stronger (6 % of the amplitude at 8 LSB, 3.9 % at 40),
so a 10 % loss of fine energy (5 % of amplitude) on brick or grass is visible
while the same share of a faint texture is not.

``T0`` and ``A0`` place the model on the visibility line.  ``T0``: a 3-LSB change
spread over the four bands is about 1.5 LSB per band, and a 32-px window fills
between 1/4 (a 64-px tile) and 9/16 (a 32-px sub-tile) of the slice that holds it
best, so 0.4-0.8 LSB of a slice's amplitude; 0.5 sits in that range.  ``A0``:
masking sets in once the masker is well above threshold (16 ``T0``, a 3 %
contrast texture at mid-grey).  Both were chosen on half of the real-tool test
pairs (``tests/comparing/real_tools.py``) and checked on the other half.

**Block edges (``blockiness``).**  Block-wise coding errors of RMS ``o`` (per-block
offsets) change a window by about ``o`` LSB RMS and add ``2 o²`` to the mean
squared difference across block boundaries.  A block pattern at the benign line
(``o = 1.6``) therefore adds ``B0 = 2 * 1.6² = 5.1`` LSB²: any more is a block
pattern a viewer could see.  Texture masks a block edge as it masks any change:
above the interior energy ``E0 = 4 A0²`` -- a texture at the masking knee ``A0``
near Nyquist, where a neighbour difference has four times the energy of a
pixel -- the threshold grows as ``(E / E0) ** W``, the same exponent on
amplitude (energy is amplitude squared)::

    D(E) = B0 * max(1, E / E0) ** W          (LSB²; E: mean squared difference inside the blocks)

``blockiness`` is measured in units of ``D`` (one unit: a just-visible block
edge), so its allowance is 1.

**Additions (``additive``).**  An amplitude change reads a power change ``dP`` as the
texture that is there growing or shrinking: the difference image then has RMS ``|dA|``, the
least any pair of powers allows.  Something *added* on top of the content -- a periodic
overlay, noise -- is not correlated with it: its RMS is ``sqrt(|dP|)``, far more than
``|dA|`` over a strong texture.  Such a change is visible when that RMS exceeds the visible
change over what both sides share, ``A_lo = sqrt(min(P_b, P_c))``::

    |dP| > T(A_lo)²                                   (code²)

so a new pattern on a patternless image is allowed ``T0² = 0.25`` LSB².  It is the model of
metrics whose content *is* an addition (``grid``: the pattern that repeats every 8 or 16 px).

**Noise added everywhere** changes every 32-px window by its own RMS, so the visibility line
applies to it as it stands: up to :data:`INVISIBLE_LSB` RMS it is invisible
(:func:`visible_noise`; the paired ``noise`` check, :mod:`harness.comparing.added_noise`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["VISIBLE_LSB", "INVISIBLE_LSB", "VIS_T0", "VIS_KNEE", "VIS_EXPONENT", "BLOCK_JND", "BLOCK_KNEE",
           "visible_change", "visible_addition", "visible_noise", "block_threshold"]

VISIBLE_LSB = 3.0  # a 32-px window changing by this much RMS is visible
INVISIBLE_LSB = 1.6  # ... by this much or less is not (fresh +-1 LSB jitter: about 1.4)

VIS_T0 = 0.5  # LSB: the smallest visible change of a band's (or channel's) RMS amplitude
VIS_KNEE = 8.0  # LSB: the masker amplitude above which masking raises the threshold
VIS_EXPONENT = 0.7  # threshold ~ masker ** 0.7 above the knee (Legge & Foley 1980; Watson 1993)

BLOCK_JND = 2.0 * INVISIBLE_LSB**2  # LSB²: a just-visible block-edge energy over a flat interior
BLOCK_KNEE = 4.0 * VIS_KNEE**2  # LSB²: the interior energy above which texture masks block edges
BLOCK_EXPONENT = VIS_EXPONENT


def visible_change(amplitude: np.ndarray | float, lsb: float = 1.0) -> np.ndarray:
    """``T(A)`` (code values) for amplitudes ``A`` in code values; ``lsb`` is one LSB in code values."""
    a = np.maximum(np.asarray(amplitude, dtype=np.float64), 0.0) / lsb
    return lsb * VIS_T0 * np.maximum(1.0, a / VIS_KNEE) ** VIS_EXPONENT


def visible_addition(lo_power: np.ndarray | float, lsb: float = 1.0) -> np.ndarray:
    """``T(A_lo)²`` (code²): the visible power of an addition over a shared power ``lo_power`` (code²)."""
    t = visible_change(np.sqrt(np.maximum(np.asarray(lo_power, dtype=np.float64), 0.0)), lsb)
    return t * t


def visible_noise(lsb: float = 1.0) -> float:
    """The variance (code², per R, G, B channel) of white noise over the whole image that stays invisible."""
    return (INVISIBLE_LSB * lsb) ** 2


def block_threshold(interior_energy: np.ndarray | float) -> np.ndarray:
    """``D(E)`` (code²): the just-visible excess energy across block edges over an interior of energy ``E``."""
    e = np.maximum(np.asarray(interior_energy, dtype=np.float64), 0.0)
    return BLOCK_JND * np.maximum(1.0, e / BLOCK_KNEE) ** BLOCK_EXPONENT
