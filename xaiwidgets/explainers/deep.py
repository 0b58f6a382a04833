"""`DeepExplainer`: DeepLIFT with the rescale rule, averaged over a background (DeepSHAP).

DeepLIFT (Shrikumar, Greenside & Kundaje, ICML 2017) explains ``f(x) - f(r)`` for a reference
``r`` by back-propagating *multipliers* ``Δy / Δu`` through the nonlinearities instead of
derivatives; DeepSHAP (Lundberg & Lee, NeurIPS 2017) averages the attributions over a
background set ``R``:

    phi_i(x) = mean_{r in R} m_i(x, r) * (x_i - r_i),   sum_i phi_i(x) = f(x) - mean_r f(r)

(completeness, per image and per explained output). Nonlinearities follow shap's
DeepExplainer where shap has a rule: rescale for elementwise activations, the split difference
for max pooling, and a softmax rule that keeps completeness on probability outputs (see
:mod:`xaiwidgets.backends._deeplift_rules`); products of two varying inputs (gates, attention,
normalisation) take their Shapley split. The framework part lives in the backends
(``backend.deeplift``), over the framework's own primitive graph: each image is paired with
every background image in one batch, so all outputs of a batch of images come from one forward
pass and one backward pass per output.

Completeness is checked after every call (:mod:`._completeness`): above a relative error of
:data:`COMPLETENESS_TOLERANCE` (1e-3 of the largest ``|f(x) - base|``) the explainer warns
with :class:`~xaiwidgets.IncompleteAttributionWarning`, naming the ops the backend crossed
without a DeepLIFT rule, or raises :class:`~xaiwidgets.IncompleteAttributionError` with
``strict=True``. The values are never rescaled to make the sums match.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from .._arrays import as_images, check_int
from .._progress import RunControl
from ._completeness import check_completeness, completeness_gap
from ._paced import predict_paced
from .base import Explainer

#: Relative completeness error above which DeepExplainer warns (or raises with ``strict``):
#: ``max |f(x) - base - sum(phi)| / max |f(x) - base|`` over the images and outputs of a call.
COMPLETENESS_TOLERANCE = 1e-3

_SOFTMAX_RULES = ("shapley", "diagonal")


def sample_background(background: Any, size: int | None, seed: int | None) -> np.ndarray:
    """``background`` as float32 NHWC, subsampled without replacement to ``size`` images
    (all of them when it has no more, or when ``size`` is ``None``)."""
    bg = as_images(background, name="background")
    if size is not None:
        size = check_int(size, "background_size", 1)
        if len(bg) > size:
            pick = np.random.default_rng(seed).choice(len(bg), int(size), replace=False)
            bg = bg[np.sort(pick)]
    return bg


class BackgroundMean:
    """Mixin of the explainers that hold a ``background`` set: ``expected_value``, the mean
    model output over it, ``(k,)``, computed on first use (in a call: in paced model calls
    with a cancel check before each, :meth:`_background_mean`)."""

    background: np.ndarray
    backend: Any

    @functools.cached_property
    def expected_value(self) -> np.ndarray:
        """Mean model output over the background, ``(k,)``."""
        return self.backend.predict(self.background).mean(axis=0)

    def _background_mean(self, ctl: RunControl) -> np.ndarray:
        """:attr:`expected_value`, computed (once) by :func:`._paced.predict_paced`."""
        known = self.__dict__.get("expected_value")
        if known is None:
            known = predict_paced(self.backend, self.background, ctl).mean(axis=0)
            self.__dict__["expected_value"] = known
        return known


class DeepExplainer(BackgroundMean, Explainer):
    """DeepLIFT (rescale rule) / DeepSHAP attributions for torch, Keras/TensorFlow and JAX
    models.

    Parameters
    ----------
    model : torch ``nn.Module``, Keras 3 model, Flax module + params, ... (see
        :func:`~xaiwidgets.backends.wrap`), or a backend.
    background : images ``(b, h, w, c)`` (any accepted form): the references the attributions
        are averaged over.
    background_size : int or None
        At most this many background images are used, drawn without replacement with
        ``seed`` (default 100, as in shap's MNIST example); ``None`` keeps them all. The cost
        grows linearly with it.
    softmax : {"shapley", "diagonal"}
        How a softmax layer is crossed. ``"shapley"`` (default; shap's TensorFlow rule):
        ``exp`` by rescale and the normalising division by the Shapley split of its two
        inputs, so each probability's attributions also count the other classes' logits.
        ``"diagonal"`` (shap's PyTorch rule): probability ``j`` by ``Δp_j / Δz_j`` through its
        own logit only. Both keep completeness on the probabilities.
    seed : int or None
        Seed of the background subsample (default 0).
    max_rows : int, optional
        Pair rows (image x background) per pass; default: the backend's plan (torch and
        JAX ``max(batch_size, b)``, TensorFlow ``max(2 * batch_size, b)``, lowered to keep
        the pass within the memory budget and to about half a second (timed on the model's
        forward pass), the background split into chunks when one image's rows do not fit).
        Progress is reported and cancel checked between passes, so a cancel returns within
        about one pass. Given: exactly that many rows (no memory or time bound).
    strict : bool
        Raise :class:`~xaiwidgets.IncompleteAttributionError` instead of warning
        (:class:`~xaiwidgets.IncompleteAttributionWarning`) when the attributions miss
        completeness by more than :data:`COMPLETENESS_TOLERANCE` relative (default False).
    class_names, backend_kwargs : as :class:`~xaiwidgets.explainers.base.Explainer`.

    Call it like every explainer: ``DeepExplainer(model, background)(images, outputs=None |
    "top3" | [...])`` returns an :class:`~xaiwidgets.Explanation` with ``values`` ``(n, h, w,
    c, o)`` and ``base_values`` ``(n, o)`` = the mean model output on the background. Its
    ``params`` carry the completeness diagnostics: ``max_completeness_error`` (absolute),
    ``relative_completeness_error``, ``completeness_tolerance`` and ``ops_without_rule`` (ops
    the backend crossed by their derivative, with where they are, empty when every op had a
    rule).

    Attributes
    ----------
    background : float32 ``(b, h, w, c)``, the references used.
    expected_value : ``(k,)`` mean model output over the background.

    The completeness error of every image and output, ``f(x) - base - sum(values)``, is
    ``predictions[idx] - base_values - values.sum()`` of the Explanation; nothing of a call
    is kept on the explainer.
    """

    method = "deep"

    def __init__(
        self,
        model: Any,
        background: Any,
        *,
        background_size: int | None = 100,
        softmax: str = "shapley",
        seed: int | None = 0,
        max_rows: int | None = None,
        strict: bool = False,
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        if softmax not in _SOFTMAX_RULES:
            raise ValueError(f"softmax: expected one of {_SOFTMAX_RULES}, got {softmax!r}")
        if max_rows is not None and int(max_rows) < 1:
            raise ValueError(f"max_rows: expected a positive integer, got {max_rows}")
        self.background_size = background_size
        self.softmax = softmax
        self.seed = seed
        self.max_rows = None if max_rows is None else int(max_rows)
        self.background = sample_background(background, background_size, seed)
        self.strict = bool(strict)

    def params(self) -> dict[str, Any]:
        return {
            "background": int(len(self.background)),
            "softmax": self.softmax,
            "seed": self.seed,
            "strict": self.strict,
            "completeness_tolerance": COMPLETENESS_TOLERANCE,
        }

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        bg = self.background
        if bg.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"images: expected the background's shape {bg.shape[1:]}, got {x.shape[1:]}"
            )
        base = self._background_mean(ctl)[outputs]
        fallbacks: list[str] = []
        # the backend plans its passes within its memory budget and calls ``progress`` before
        # each one: progress moves, and a cancel is seen, between model passes
        values = np.asarray(
            self.backend.deeplift(
                x,
                bg,
                outputs,
                softmax=self.softmax,
                max_rows=self.max_rows,
                fallbacks=fallbacks,
                progress=ctl.step,
            ),
            np.float32,
        )
        fx = np.take_along_axis(model_outputs, outputs, axis=1)
        diagnostics = self._check(values, fx, base, fallbacks)
        return values, base.astype(np.float32), diagnostics

    def _check(
        self, values: np.ndarray, fx: np.ndarray, base: np.ndarray, fallbacks: list
    ) -> dict[str, Any]:
        """Completeness of this call, warned about (or raised) above the tolerance, naming
        the ops crossed without a rule (reported even when complete). Returns the call's
        diagnostics (its Explanation's params)."""
        ops = list(dict.fromkeys(fallbacks))
        gap = completeness_gap(values, fx, base)
        culprit = ("ops crossed without a DeepLIFT rule: " + "; ".join(ops)) if ops else None
        relative = check_completeness(
            gap,
            fx,
            base,
            method="DeepExplainer",
            tolerance=COMPLETENESS_TOLERANCE,
            culprit=culprit,
            strict=self.strict,
            stacklevel=6,
        )
        if ops and relative <= COMPLETENESS_TOLERANCE:
            warnings.warn(
                f"DeepExplainer: {culprit}; crossed by their derivative (completeness still "
                f"holds here: relative error {relative:.2g})",
                stacklevel=5,
            )
        return {
            "max_completeness_error": float(np.abs(gap).max()) if gap.size else 0.0,
            "relative_completeness_error": relative,
            "ops_without_rule": ops,
        }
