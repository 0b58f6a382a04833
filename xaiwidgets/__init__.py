"""xaiwidgets: interactive explanations of image classifiers in Jupyter.

``%load_ext xaiwidgets``, then explain a PyTorch, Keras 3, JAX/Flax or NumPy model and look at
the result as a widget. Importing this package imports no ML framework.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from ._show import show
from .backends import wrap
from .explanation import Explanation

try:
    __version__ = _metadata.version("xaiwidgets")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

__all__ = ["Explanation", "show", "wrap", "__version__"]


def load_ipython_extension(ipython):  # pragma: no cover - thin shim, tested via extension
    from .extension import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython):  # pragma: no cover
    from .extension import unload_ipython_extension as _unload

    _unload(ipython)
