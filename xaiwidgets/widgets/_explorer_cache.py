"""The results a :class:`~xaiwidgets.widgets.ShapleyExplorer` computed, by setting.

A setting's key is ``(masker, algorithm, max_evals, top_k, indices, scorer)``. A key with a
``top_k`` smaller than a cached key of the same other parts is answered by cutting that result
(its first outputs are the most probable classes, the same ones a smaller run explains; the
deletion score is of the predicted class, the first output, so it is the same too): no model
call. The cut explanation says where it came from in ``params["computed_top_k"]`` (for
Partition the region tree was expanded for that larger set of outputs, as in shap).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, replace

from ..explanation import Explanation
from ..faithfulness import PerturbationCurve


@dataclass(eq=False)
class ExplorerResult:
    """One computed panel: the explanation, its deletion curve (predicted class) and cost."""

    explanation: Explanation
    deletion: PerturbationCurve
    seconds: float


class ResultCache:
    """At most ``size`` results by key, least recently used dropped first (not thread-safe:
    the explorer holds its lock around every call)."""

    def __init__(self, size: int = 64):
        self._items: OrderedDict[Hashable, ExplorerResult] = OrderedDict()
        self._size = size

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> Iterator[tuple[Hashable, ExplorerResult]]:
        return iter(list(self._items.items()))

    def clear(self) -> None:
        self._items.clear()

    def put(self, key: Hashable, result: ExplorerResult) -> None:
        self._items[key] = result
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def get(self, key: Hashable) -> ExplorerResult | None:
        """The result of ``key``: cached, or cut from the cached result of the smallest larger
        ``top_k`` of the same setting (then cached under ``key`` too); ``None`` otherwise."""
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        masker, algorithm, evals, top_k, indices, scorer = key  # type: ignore[misc]
        larger = [
            (k[3], r)
            for k, r in self._items.items()
            if k[3] > top_k and k[:3] == (masker, algorithm, evals) and k[4:] == (indices, scorer)
        ]
        if not larger:
            return None
        computed, source = min(larger, key=lambda kr: kr[0])
        e = source.explanation[:, :top_k]
        origin = source.explanation.params.get("computed_top_k", computed)
        params = {**e.params, "top_k": top_k, "computed_top_k": origin}
        result = ExplorerResult(replace(e, params=params), source.deletion, source.seconds)
        self.put(key, result)
        return result
