"""Faithfulness of attributions: numbers that say which explanation to trust.

- Deletion (Petsiuk et al. 2018, "RISE", sec. 4.2): hide the pixels of an image in the order
  of their attribution, most positive first, and follow the model's score of the explained
  class. A faithful attribution finds the evidence first, so the score falls fast and the
  area under the curve is small. The hidden pixels are filled by a masker (the explanation's
  own by default), so "which masker gives the better explanation" becomes a number: compare
  areas computed with one and the same deletion masker for a fair comparison.
- Insertion (same paper): start from the fully hidden image and reveal pixels in the same
  order; the score should rise fast, so a *larger* area is more faithful.
- MuFidelity / faithfulness correlation (Bhatt, Weller & Moura, IJCAI 2020): over random
  subsets ``S`` of pixels, the Pearson correlation between ``sum_{i in S} phi_i`` and the
  output drop ``f(x) - f(x with S := baseline)``; 1 is best.
- Sparseness (Chalasani et al., ICML 2020): the Gini index of ``|phi|``; 1 when one pixel
  holds all the attribution, 0 when it is spread evenly.

Every metric reads an :class:`~xaiwidgets.Explanation` (attributions summed over channels:
one score per pixel) and evaluates the model through the backend protocol, batched.

The metrics live one family a module: :mod:`.curves` (deletion, insertion),
:mod:`.mufidelity` (MuFidelity, sparseness), :mod:`.randomisation` (the sanity check).
"""

from .curves import PerturbationCurve, deletion_curve, insertion_curve
from .mufidelity import MuFidelity, mufidelity, sparseness
from .randomisation import RandomisationCheck, randomisation_check

__all__ = [
    "MuFidelity",
    "PerturbationCurve",
    "RandomisationCheck",
    "deletion_curve",
    "insertion_curve",
    "mufidelity",
    "randomisation_check",
    "sparseness",
]
