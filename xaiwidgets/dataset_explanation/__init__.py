"""Whole data sets explained to disk: :func:`explain_dataset` and :class:`DatasetExplanation`.

API (stable; other modules build on it)::

    from xaiwidgets import explain_dataset, DatasetExplanation

    result = explain_dataset(
        explainer,            # any xaiwidgets explainer (PartitionExplainer, GradientExplainer...)
        images,               # NumPy / zarr / dask array (n, h, w, c) or (n, c, h, w) with layout=,
                              # a torch Dataset or DataLoader, a tf.data.Dataset, or any
                              # iterable of batches: images, or (images, labels) pairs
        store="run.zarr",     # a zarr group path (created or resumed) or an open zarr group
        batch_size=None,      # rows per chunk (default: the array's chunk rows, else what keeps
                              # one chunk's attributions under 64 MiB, at most 256)
        executor=None,        # a concurrent.futures.Executor: ProcessPoolExecutor,
                              # dask.distributed Client.get_executor(), Ray's...
        labels=None,          # (n,) true labels for array inputs (iterables give pairs)
        progress=None,        # True: one tqdm bar (or a callable progress(fraction))
        cancel=None,          # a threading.Event: stops after the chunk being written
        **call_kwargs,        # passed to every explainer call: outputs=, top_k=, layout=...
    )                         # -> DatasetExplanation (lazily opened)

    result = DatasetExplanation.open("run.zarr")
    len(result); result.class_names; result.params; result.method
    result.labels, result.predictions, result.probabilities, result.predicted  # (n,) / (n, k)
    result[10:20]; result[[3, 7]]; result[mask]  # -> an ordinary xaiwidgets.Explanation
    result.widget(page_size=20)                   # AttributionGrid paging through the rows
    result.complete, result.done_rows             # what is finished

The store (zarr v3 group; row ``i`` of every array is image ``i`` of the input, in order):

- ``values`` ``(n, h, w, c, o)`` float32 attributions, ``data`` ``(n, h, w, c)`` float32
  images (NHWC, as explained), ``base_values`` ``(n, o)`` float32, ``output_indices``
  ``(n, o)`` int64, ``predictions`` / ``probabilities`` ``(n, k)`` float32, ``labels`` ``(n,)``
  int64 (only when labels were given);
- ``chunk_rows`` ``(m, 2)`` int64: the rows ``[start, stop)`` of each chunk, ``chunk_done``
  ``(m,)`` bool: set once every array of the chunk is written (a chunk is the unit of work, of
  resume and of cancellation; rows of a chunk not done are never read as results);
- attributes ``xaiwidgets``: format, method, params (the explainer's), class names, the call
  keywords, the explainer's class and model fingerprint, ``n`` (``None`` while unknown).

Running again on the same store resumes: finished chunks are kept and not recomputed; a store
written with another explainer, other parameters, another model or other data raises
``ValueError`` naming what differs (other data: a hash of the first images of an array or
Dataset source, its length and chunk rows; an iterable's chunk bounds as they come). With ``executor=``, chunks are explained on its workers;
the explainer travels to them once per task as an :class:`~.transport.ExplainerRecipe`: its
model in the framework's own format (a torch state dict with the module's importable class
when it can be built without arguments, a Keras ``.keras`` file, Flax variables by
``flax.serialization``), and pickle only as the fallback for anything else (a NumPy callable,
a torch module whose class needs constructor arguments). The recipe says which it used
(``recipe.transport``), and so does the store (``params_run["transport"]``).
Results are identical to the local run (the same chunks, the same code, the same seeds).
"""

from __future__ import annotations

from .result import DatasetExplanation
from .run import explain_dataset

__all__ = ["DatasetExplanation", "explain_dataset"]
