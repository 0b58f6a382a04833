"""What :func:`~xaiwidgets.explainers.influence_maps` and
:func:`~xaiwidgets.explainers.performance_maps` return (see
:mod:`xaiwidgets.explainers.influence` for the method)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._result import Result, check_shape

_INFLUENCE_ARRAYS = (
    "maps", "plus", "minus", "base", "mean_image", "taus", "lambdas", "converged"
)  # fmt: skip


@dataclass(eq=False)
class InfluenceResult(Result):
    """Influence (or performance) maps of a test set, one per class (or one for a metric).

    Shapes use ``F`` for the feature shape: ``(h, w)`` with ``channels="mean"``, ``(h, w, c)``
    with ``channels="separate"``; ``k`` is the number of maps: the classes ``outputs`` /
    ``top_k`` chose, every class by default (their indices, in map order, are
    ``params["outputs"]``), or 1 for a performance map.

    Attributes
    ----------
    maps : (k, *F) float32 — ``plus - minus``: the influence of saturating each pixel.
    plus, minus : (k, *F) float64 — ``E_{w+}[p_k]`` and ``E_{w-}[p_k]`` (or the metric under
        the two tilts).
    base : (k,) float64 — the unweighted mean probability of each class (or the metric).
    class_names : list of k str — class names (``"0"``, ``"1"``... by default), or the metric's
        name for a performance map.
    mean_image : (h, w, c) float32 — the mean image of the test set.
    taus : (2, *F) float64 — the targets ``[tau-, tau+]`` of every feature.
    lambdas : (2, *F) float64 — the tilts ``[lambda-, lambda+]`` (``±inf`` where the target is
        the feature's minimum/maximum: the uniform weights on the samples there).
    converged : (2, *F) bool — whether each tilt met the tolerance.
    alpha : float; channels : ``"mean"`` | ``"separate"``; kind : ``"influence"`` |
    ``"performance"``; metric : the metric's name or ``None``; n_samples : int.

    Keeps the result protocol (:class:`~xaiwidgets._result.Result`): ``params``,
    ``save``/``load``, ``widget()`` (an :class:`~xaiwidgets.widgets.InfluenceGrid`),
    ``_repr_mimebundle_``.
    """

    _arrays: ClassVar[tuple[str, ...]] = _INFLUENCE_ARRAYS
    _required: ClassVar[tuple[str, ...]] = _INFLUENCE_ARRAYS
    _meta: ClassVar[tuple[str, ...]] = (
        "class_names", "alpha", "channels", "kind", "metric", "n_samples", "params"
    )  # fmt: skip

    maps: np.ndarray
    plus: np.ndarray
    minus: np.ndarray
    base: np.ndarray
    class_names: list[str]
    mean_image: np.ndarray
    taus: np.ndarray
    lambdas: np.ndarray
    converged: np.ndarray
    alpha: float
    channels: str
    kind: str = "influence"
    metric: str | None = None
    n_samples: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.maps.shape[0])

    @property
    def limit(self) -> float:
        """``max |maps|``: the half-width of a shared symmetric colour scale (0 if all 0)."""
        return float(np.abs(self.maps).max()) if self.maps.size else 0.0

    def class_index(self, key: int | str) -> int:
        """Index of a class given by index or by name."""
        if isinstance(key, str):
            if key not in self.class_names:
                raise KeyError(f"unknown class {key!r}; classes are {self.class_names}")
            return self.class_names.index(key)
        k = int(key)
        if not -self.n_classes <= k < self.n_classes:
            raise IndexError(f"class index {k} out of range for {self.n_classes} classes")
        return k % self.n_classes

    def map(self, key: int | str) -> np.ndarray:
        """The map ``(*F)`` of one class (by index or name)."""
        return self.maps[self.class_index(key)]

    def _check_loaded(self) -> None:
        if self.channels not in ("mean", "separate"):
            raise ValueError(f"channels: expected 'mean' or 'separate', got {self.channels!r}")
        if self.kind not in ("influence", "performance"):
            raise ValueError(f"kind: expected 'influence' or 'performance', got {self.kind!r}")
        k = len(self.maps)
        fshape = self.maps.shape[1:]
        if len(fshape) not in (2, 3):
            raise ValueError(f"maps: expected (k, h, w) or (k, h, w, c), got {self.maps.shape}")
        for name in ("plus", "minus"):
            check_shape(getattr(self, name), (k, *fshape), name)
        check_shape(self.base, (k,), "base")
        for name in ("taus", "lambdas", "converged"):
            check_shape(getattr(self, name), (2, *fshape), name)
        check_shape(self.mean_image, (*fshape[:2], None), "mean_image")
        if len(self.class_names) != k:
            raise ValueError(f"class_names: expected {k} names, got {len(self.class_names)}")
        self.converged = self.converged.astype(bool)
        self.alpha, self.n_samples = float(self.alpha), int(self.n_samples)

    def __repr__(self) -> str:
        return (
            f"InfluenceResult(kind={self.kind!r}, maps={self.maps.shape}, "
            f"n_samples={self.n_samples}, alpha={self.alpha}, channels={self.channels!r}, "
            f"limit={self.limit:.4g})"
        )


def pack_result(
    out: tuple[np.ndarray, ...],
    fshape: tuple[int, ...],
    x: np.ndarray,
    base: np.ndarray,
    names: list[str],
    kind: str,
    params: dict[str, Any],
    metric: str | None = None,
    *,
    mean_image: np.ndarray | None = None,
    n_samples: int | None = None,
) -> InfluenceResult:
    """InfluenceResult from :func:`tilt_features`'s output, reshaped to the feature shape.
    ``x`` the images (for their mean and count), or ``None`` with ``mean_image`` and
    ``n_samples`` given (a streamed run never holds them all)."""
    maps, plus, minus, taus, lambdas, conv = (a.reshape(len(a), *fshape) for a in out)
    return InfluenceResult(
        maps=maps.astype(np.float32),
        plus=plus,
        minus=minus,
        base=base,
        class_names=names,
        mean_image=x.mean(axis=0) if mean_image is None else mean_image,
        taus=taus,
        lambdas=lambdas,
        converged=conv,
        alpha=params["alpha"],
        channels=params["channels"],
        kind=kind,
        metric=metric,
        n_samples=len(x) if n_samples is None else n_samples,
        params=params,
    )
