""":func:`explain_dataset`: explain a whole data set chunk by chunk into a zarr store.

The loop reads one chunk (:mod:`.sources`), explains it (here, or on an executor's worker),
writes it (:mod:`.store`) and marks it done. Memory stays bounded: at most one chunk is
explained at a time locally, and at most ``max_in_flight`` chunks are sent out with an
executor (their images out, their attributions back); nothing is kept after it is written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any

from .._progress import Cancelled
from ..explanation import Explanation
from .result import DatasetExplanation
from .sources import Chunk, ImageSource
from .store import ExplanationStore
from .transport import ExplainerRecipe, model_fingerprint

#: keywords explain_dataset owns (never passed on as call keywords)
_OWN = ("images", "progress", "cancel", "labels")


def _explain_chunk(
    recipe: ExplainerRecipe, images: Any, labels: Any, call_kwargs: dict[str, Any]
) -> Explanation:
    """One chunk on a worker: the explainer rebuilt from its recipe (once per process)."""
    return recipe.build()(images, labels=labels, layout="nhwc", **call_kwargs)


class _Progress:
    """One bar over the rows (tqdm, ``progress=True``) or a callable ``progress(fraction)``."""

    def __init__(self, progress: Any, total: int | None, done: int):
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise TypeError(
                "progress: expected None, True (a tqdm bar) or a callable progress(fraction), "
                f"got {type(progress).__name__} {progress!r}"
            )
        self.total, self.done = total, done
        self.callback = progress if callable(progress) and progress is not True else None
        self.bar = None
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc="explain_dataset", unit="img")

    def add(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows)
        if self.callback is not None and self.total:
            self.callback(min(1.0, self.done / self.total))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def settings_of(explainer: Any) -> dict[str, Any]:
    """The explainer's settings, ``params()`` (an explainer keeps nothing of a call: its
    diagnostics go into each result's params), without the ``None`` entries."""
    if not callable(getattr(explainer, "params", None)):
        return {}
    return {k: v for k, v in explainer.params().items() if v is not None}


def _check_explainer(explainer: Any) -> None:
    if not callable(explainer) or not hasattr(explainer, "backend"):
        raise TypeError(
            "explainer: expected an xaiwidgets explainer (PartitionExplainer, "
            f"GradientExplainer, ...), got {type(explainer).__name__}"
        )


def explain_dataset(
    explainer: Any,
    images: Any,
    *,
    store: Any,
    batch_size: int | None = None,
    executor: Executor | None = None,
    labels: Any = None,
    progress: Any = None,
    cancel: Any = None,
    max_in_flight: int | None = None,
    **call_kwargs: Any,
) -> DatasetExplanation:
    """Explain every image of ``images`` into ``store``, chunk by chunk, resumably.

    Parameters
    ----------
    explainer : an xaiwidgets explainer; called as ``explainer(chunk, labels=...,
        **call_kwargs)`` on each chunk of ``batch_size`` images (float32 NHWC).
    images : a NumPy / zarr / dask array (``(n, h, w)``, ``(n, h, w, c)``, or ``(n, c, h, w)``
        with ``layout="nchw"``), a torch ``Dataset`` or ``DataLoader``, a ``tf.data.Dataset``
        or any iterable of batches (``images`` or ``(images, labels)``); see
        :mod:`~xaiwidgets.dataset_explanation.sources`.
    store : a zarr group or its path: created, or resumed when it holds this run already.
    batch_size : images per chunk (the unit of work, of resume and of cancellation).
        Default: an array's own chunk rows (at most 1024), else as many as keep 10 outputs of
        attributions of a chunk under 64 MiB (at most 256); an iterable's batches as they come.
    executor : a :class:`concurrent.futures.Executor` (``ProcessPoolExecutor``, dask
        ``Client.get_executor()``...): chunks are explained on its workers (the explainer
        travels as an :class:`~.transport.ExplainerRecipe`), written here. Default: here.
    labels : ``(n,)`` true labels (or one-hot rows) of an array / Dataset source, stored.
    progress : ``True``: one tqdm bar over the images; a callable ``progress(fraction)``; or
        ``None`` (default) / ``False``: none (as the explainers' ``progress=``).
    cancel : a :class:`threading.Event`: when set the run stops (locally within the chunk
        being explained; with an executor, chunks not started are cancelled) and raises
        :class:`~xaiwidgets._progress.Cancelled`; every chunk written stays valid and a later
        run resumes from there.
    max_in_flight : chunks sent to the executor at once (default twice its workers, or 4).
    call_kwargs : passed to every explainer call (``outputs=``, ``top_k=``, ``layout=``).

    Returns
    -------
    :class:`DatasetExplanation`, lazily opened on ``store``.

    Raises
    ------
    ValueError
        when ``store`` holds another run (the message names what differs), when the data
        are not images, or when chunks disagree in shape.
    TypeError
        for arguments of the wrong kind (the message says what was expected).
    """
    _check_explainer(explainer)
    for key in _OWN:
        if key in call_kwargs:
            raise TypeError(f"explain_dataset() got {key!r} twice")
    if executor is not None and not isinstance(executor, Executor):
        submit = getattr(executor, "submit", None)
        if not callable(submit):
            raise TypeError(
                "executor: expected a concurrent.futures.Executor (ProcessPoolExecutor, a dask "
                f"Client.get_executor()...) or None, got {type(executor).__name__}"
            )
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise TypeError(
            "cancel: expected None or an event with is_set() (threading.Event()), got "
            f"{type(cancel).__name__}"
        )
    layout = call_kwargs.pop("layout", "auto")
    source = ImageSource(images, labels=labels, batch_size=batch_size, layout=layout)
    identity = {
        "explainer": f"{type(explainer).__module__}.{type(explainer).__qualname__}",
        "method": getattr(explainer, "method", ""),
        "params": settings_of(explainer),
        "call": call_kwargs,
        "model": model_fingerprint(explainer.backend),
        "labels": labels is not None,
        "source": {
            "kind": source.kind,
            "n": source.n,
            "batch_size": source.batch_size,
            "first_images": source.head_digest(),
        },
    }
    st = ExplanationStore.begin(store, identity, {"n": source.n, "params": identity["params"]})
    recipe = ExplainerRecipe(explainer) if executor is not None else None
    if recipe is not None:
        st.update_meta(transport=recipe.transport)
    done = st.done_chunks()
    done_rows = sum(b[1] - b[0] for b in (st.chunk_bounds(i) for i in done) if b)
    bar = _Progress(progress, source.n, done_rows)
    stop = cancel if cancel is not None else threading.Event()
    try:
        if executor is None:
            total = _run_here(explainer, source, st, done, call_kwargs, bar, stop)
        else:
            limit = max_in_flight or 2 * int(getattr(executor, "_max_workers", 2) or 2)
            total = _run_on(executor, recipe, source, st, done, call_kwargs, bar, stop, limit)
    finally:
        bar.close()
    st.update_meta(n=total)
    return DatasetExplanation(st.group)


def _check_resumed(st: ExplanationStore, chunk: Chunk) -> None:
    bounds = st.chunk_bounds(chunk.index)
    if bounds is not None and bounds != (chunk.start, chunk.stop):
        raise ValueError(
            f"store: chunk {chunk.index} held rows {bounds[0]}..{bounds[1]} in the stored run, "
            f"this run cuts rows {chunk.start}..{chunk.stop}: the data changed; use another store"
        )


class _PendingChunks:
    """The chunks of ``source`` still to explain, in order, for both loops (here and on an
    executor): every chunk's rows checked against the stored run (a resumed run must cut the
    data as before), the chunks in ``done`` skipped, and :class:`Cancelled` raised before the
    next chunk once ``stop`` is set. After the loop, :attr:`rows` is the end of the last chunk
    seen: the data set's length. :meth:`write` stores an explained chunk and counts it on the
    progress bar."""

    def __init__(
        self, source: ImageSource, st: ExplanationStore, done: set[int], bar: _Progress, stop: Any
    ):
        self.source, self.st, self.done, self.bar, self.stop = source, st, done, bar, stop
        self.rows = 0

    def __iter__(self) -> Iterator[Chunk]:
        for chunk in self.source.chunks(skip=self.done):
            _check_resumed(self.st, chunk)
            self.rows = chunk.stop
            if chunk.index in self.done:
                continue
            if self.stop.is_set():
                raise Cancelled()
            yield chunk

    def write(self, chunk: Chunk, explanation: Explanation) -> None:
        rows = int(self.source.batch_size or (chunk.stop - chunk.start))
        self.st.write(chunk, explanation, rows, self.source.n)
        self.bar.add(chunk.stop - chunk.start)


def _run_here(
    explainer: Any,
    source: ImageSource,
    st: ExplanationStore,
    done: set[int],
    call_kwargs: dict[str, Any],
    bar: _Progress,
    stop: Any,
) -> int:
    pending = _PendingChunks(source, st, done, bar, stop)
    for chunk in pending:
        e = explainer(chunk.images, labels=chunk.labels, layout="nhwc", cancel=stop, **call_kwargs)
        pending.write(chunk, e)
    return pending.rows


def _run_on(
    executor: Any,
    recipe: ExplainerRecipe,
    source: ImageSource,
    st: ExplanationStore,
    done: set[int],
    call_kwargs: dict[str, Any],
    bar: _Progress,
    stop: Any,
    limit: int,
) -> int:
    pending = _PendingChunks(source, st, done, bar, stop)
    running: dict[Future, Chunk] = {}

    def collect(block: bool) -> None:
        if not running:
            return
        finished, _ = wait(list(running), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in finished:
            pending.write(running.pop(future), future.result())

    try:
        for chunk in pending:
            while len(running) >= limit:
                collect(block=True)
                if stop.is_set():
                    raise Cancelled()
            payload = Chunk(chunk.index, chunk.start, chunk.stop, None, None)
            future = executor.submit(
                _explain_chunk, recipe, chunk.images, chunk.labels, call_kwargs
            )
            running[future] = payload
            collect(block=False)
        while running:
            collect(block=True)
            if stop.is_set() and running:
                raise Cancelled()
    finally:
        for future in running:  # cancelled or failed: chunks not started are dropped
            future.cancel()
    return pending.rows
